package ocppsec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxFrame bounds one OCPP-J frame (a WebSocket message). The largest
// schema-conformant security payload (a 2.1 Get15118EVCertificateResponse)
// is under 20 KiB; 64 KiB leaves room for the rest of OCPP.
const MaxFrame = 64 << 10

// MaxMessageID is the longest message ID OCPP-J allows (36 characters).
const MaxMessageID = 36

// Message types of OCPP-J (RPC framework, section 4).
const (
	TypeCall       = 2
	TypeCallResult = 3
	TypeCallError  = 4
)

// Frame is one OCPP-J message: a CALL [2, id, action, payload], a
// CALLRESULT [3, id, payload] or a CALLERROR [4, id, code, description,
// details].
type Frame struct {
	Type        int
	ID          string
	Action      string          // CALL only
	Payload     json.RawMessage // CALL and CALLRESULT
	ErrorCode   string          // CALLERROR only
	Description string          // CALLERROR only
	Details     json.RawMessage // CALLERROR only
}

// FrameError says why a frame cannot be used. ID is the message ID when it
// could be read, so that a CALLERROR can answer it.
type FrameError struct {
	ID     string
	Code   string // RPC framework error code to answer with
	Reason string
}

func (e *FrameError) Error() string { return "OCPP-J frame: " + e.Reason }

// ParseFrame reads one OCPP-J frame of at most MaxFrame bytes. The payload
// is checked to be a JSON object but not against any schema: that is the
// handler's job, so that unknown actions can still be forwarded unchanged.
func ParseFrame(d Dialect, data []byte) (*Frame, error) {
	bad := func(id, code, format string, args ...any) (*Frame, error) {
		return nil, &FrameError{ID: id, Code: code, Reason: fmt.Sprintf(format, args...)}
	}
	if len(data) > MaxFrame {
		return bad("", FormatViolation(d), "%d bytes, limit %d", len(data), MaxFrame)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil {
		return bad("", FormatViolation(d), "not a JSON array: %v", err)
	}
	if len(parts) < 3 {
		return bad("", FormatViolation(d), "%d elements, at least 3", len(parts))
	}
	var f Frame
	if err := json.Unmarshal(parts[0], &f.Type); err != nil {
		return bad("", FormatViolation(d), "message type is not a number")
	}
	if err := json.Unmarshal(parts[1], &f.ID); err != nil {
		return bad("", FormatViolation(d), "message ID is not a string")
	}
	if f.ID == "" || utf8.RuneCountInString(f.ID) > MaxMessageID {
		return bad("", FormatViolation(d), "message ID of %d characters, want 1 to %d", utf8.RuneCountInString(f.ID), MaxMessageID)
	}
	object := func(raw json.RawMessage) bool {
		raw = bytes.TrimLeft(raw, " \t\r\n")
		return len(raw) > 0 && raw[0] == '{'
	}
	switch f.Type {
	case TypeCall:
		if len(parts) != 4 {
			return bad(f.ID, FormatViolation(d), "CALL has %d elements, want 4", len(parts))
		}
		if err := json.Unmarshal(parts[2], &f.Action); err != nil || f.Action == "" || len(f.Action) > 64 {
			return bad(f.ID, FormatViolation(d), "CALL action is not a short string")
		}
		if !object(parts[3]) {
			return bad(f.ID, FormatViolation(d), "CALL payload is not an object")
		}
		f.Payload = parts[3]
	case TypeCallResult:
		if len(parts) != 3 {
			return bad(f.ID, FormatViolation(d), "CALLRESULT has %d elements, want 3", len(parts))
		}
		if !object(parts[2]) {
			return bad(f.ID, FormatViolation(d), "CALLRESULT payload is not an object")
		}
		f.Payload = parts[2]
	case TypeCallError:
		if len(parts) != 5 {
			return bad(f.ID, FormatViolation(d), "CALLERROR has %d elements, want 5", len(parts))
		}
		if json.Unmarshal(parts[2], &f.ErrorCode) != nil || json.Unmarshal(parts[3], &f.Description) != nil {
			return bad(f.ID, FormatViolation(d), "CALLERROR code and description must be strings")
		}
		if !object(parts[4]) {
			return bad(f.ID, FormatViolation(d), "CALLERROR details are not an object")
		}
		f.Details = parts[4]
	default:
		return bad(f.ID, MessageTypeError(d), "message type %d", f.Type)
	}
	return &f, nil
}

// Encode returns the frame as OCPP-J JSON.
func (f *Frame) Encode() ([]byte, error) {
	var v []any
	switch f.Type {
	case TypeCall:
		v = []any{f.Type, f.ID, f.Action, payloadOrEmpty(f.Payload)}
	case TypeCallResult:
		v = []any{f.Type, f.ID, payloadOrEmpty(f.Payload)}
	case TypeCallError:
		v = []any{f.Type, f.ID, f.ErrorCode, f.Description, payloadOrEmpty(f.Details)}
	default:
		return nil, fmt.Errorf("ocppsec: cannot encode message type %d", f.Type)
	}
	return json.Marshal(v)
}

func payloadOrEmpty(p json.RawMessage) json.RawMessage {
	if len(p) == 0 {
		return json.RawMessage("{}")
	}
	return p
}

// CallError returns the CALLERROR frame answering message id.
func CallError(id, code, description string) *Frame {
	if len(description) > 255 {
		description = strings.ToValidUTF8(description[:255], "")
	}
	return &Frame{Type: TypeCallError, ID: id, ErrorCode: code, Description: description}
}
