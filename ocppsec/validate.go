package ocppsec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Dialect names one family of OCPP payload schemas. OCPP 1.6 Plug and Charge
// over DataTransfer with vendorId org.openchargealliance.iso15118pnc carries
// 2.0.1 payloads, so it has no dialect of its own.
type Dialect string

// The dialects pncpki understands.
const (
	OCPP16  Dialect = "1.6"    // OCPP 1.6 with the security extension
	OCPP201 Dialect = "2.0.1"  // OCPP 2.0.1
	OCPP21  Dialect = "2.1"    // OCPP 2.1
	Has2be  Dialect = "has2be" // has.to.be's ISO 15118 extension of 1.6 (DataTransfer vendorId "iso15118")
)

// MaxPayload bounds one payload; a whole OCPP-J frame is bounded by
// MaxFrame.
const MaxPayload = MaxFrame

// ValidationError says why a payload does not fit its schema, where, and
// which OCPP-J CallError code answers it.
type ValidationError struct {
	Code   string // OCPP-J error code, e.g. "PropertyConstraintViolation"
	Path   string // JSON path of the offending value, e.g. "ocspRequestData.serialNumber"
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// CallError codes used for payloads (OCPP-J 2.0.1 section 4.3; 1.6 spells
// the format error "FormationViolation", see FormatViolation).
const (
	CodeFormatViolation     = "FormatViolation"
	CodePropertyConstraint  = "PropertyConstraintViolation"
	CodeOccurrenceViolation = "OccurrenceConstraintViolation"
	CodeTypeConstraint      = "TypeConstraintViolation"
)

// FormatViolation is the CallError code for a malformed payload in dialect
// d: OCPP 1.6 spells it "FormationViolation".
func FormatViolation(d Dialect) string {
	if d == OCPP16 || d == Has2be {
		return "FormationViolation"
	}
	return CodeFormatViolation
}

// MessageTypeError is the CALLERROR code for a frame of an unknown message
// type: 2.0.1 and 2.1 have MessageTypeNotSupported; OCPP-J 1.6 has no such
// code, and a message type outside 2, 3 and 4 breaks its protocol.
func MessageTypeError(d Dialect) string {
	if d == OCPP16 || d == Has2be {
		return "ProtocolError"
	}
	return "MessageTypeNotSupported"
}

func violation(code, path, format string, args ...any) *ValidationError {
	return &ValidationError{Code: code, Path: path, Reason: fmt.Sprintf(format, args...)}
}

// Decode checks data against the schema of out's type in dialect d and, if
// it fits, decodes it into out. The checks are those of the official JSON
// schemas: required and unknown properties, JSON types, string lengths in
// characters, enumerations, integer minimums, array sizes and date-times.
// The payload is checked as JSON before it is decoded, so a property that
// is present but empty is told apart from one that is absent.
func Decode(d Dialect, data []byte, out any) error {
	if len(data) > MaxPayload {
		return violation(FormatViolation(d), "", "payload is %d bytes, limit %d", len(data), MaxPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return violation(FormatViolation(d), "", "invalid JSON: %v", err)
	}
	if dec.More() {
		return violation(FormatViolation(d), "", "data after the JSON value")
	}
	t := reflect.TypeOf(out)
	if t.Kind() != reflect.Pointer {
		return errors.New("ocppsec: Decode needs a pointer")
	}
	if err := check(d, "", t.Elem(), &rule{}, v); err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return violation(CodeTypeConstraint, "", "%v", err)
	}
	return nil
}

// Validate checks a value pncpki is about to send against the schema of its
// type in dialect d, so that nothing leaves that a peer would refuse.
func Validate(d Dialect, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	return Decode(d, data, newValue(reflect.TypeOf(payload)))
}

// rule is the constraint of one field, from its `ocpp` struct tag:
//
//	req          the property is required
//	max=N        maximum length in characters (of each element for []string)
//	items=A:B    minimum and maximum number of array items (B empty: no limit)
//	enum=Name    one of the values of enumeration Name in the dialect
//	min=N        integer minimum
//	datetime     an RFC 3339 date-time
//	in=D1|D2     the property exists only in these dialects
//	raw          any JSON value; passed through, not checked (a CSMS's part)
//	open         an object that admits properties beyond its fields
//
// Any key but req, in and raw may be suffixed with @dialect to override it
// for that dialect, e.g. max@2.1=10000.
type rule struct {
	req, datetime, raw, open bool
	max                      int // 0: unbounded
	minItems, maxItems       int
	enum                     string
	min                      *int64
	in                       []Dialect
}

type field struct {
	name  string
	index int
	typ   reflect.Type
	tag   string
}

var fieldCache sync.Map // reflect.Type -> []field

func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fs = append(fs, field{name: name, index: i, typ: f.Type, tag: f.Tag.Get("ocpp")})
	}
	fieldCache.Store(t, fs)
	return fs
}

// ruleFor parses tag for dialect d; a malformed tag is a programming error
// that the schema tests find.
func ruleFor(d Dialect, tag string) *rule {
	r := &rule{}
	vals := map[string]string{}
	for _, part := range strings.Split(tag, ",") {
		if part == "" {
			continue
		}
		key, val, _ := strings.Cut(part, "=")
		base, dia, hasDia := strings.Cut(key, "@")
		if hasDia && Dialect(dia) != d {
			continue
		}
		if _, seen := vals[base]; seen && !hasDia {
			continue // a dialect override came first
		}
		vals[base] = val
	}
	for key, val := range vals {
		switch key {
		case "req":
			r.req = true
		case "raw":
			r.raw = true
		case "open":
			r.open = true
		case "datetime":
			r.datetime = true
		case "max":
			r.max, _ = strconv.Atoi(val)
		case "items":
			a, b, _ := strings.Cut(val, ":")
			r.minItems, _ = strconv.Atoi(a)
			r.maxItems, _ = strconv.Atoi(b)
		case "enum":
			r.enum = val
		case "min":
			n, _ := strconv.ParseInt(val, 10, 64)
			r.min = &n
		case "in":
			for _, x := range strings.Split(val, "|") {
				r.in = append(r.in, Dialect(x))
			}
		}
	}
	return r
}

func (r *rule) exists(d Dialect) bool {
	if len(r.in) == 0 {
		return true
	}
	for _, x := range r.in {
		if x == d {
			return true
		}
	}
	return false
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

var rawMessage = reflect.TypeOf(json.RawMessage(nil))

func check(d Dialect, path string, t reflect.Type, r *rule, v any) error {
	if r.raw {
		return nil
	}
	if v == nil {
		return violation(CodeTypeConstraint, path, "null is not allowed")
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(time.Time{}) {
			return checkString(d, path, &rule{datetime: true}, v)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return violation(CodeTypeConstraint, path, "want an object")
		}
		if t == reflect.TypeOf(CustomData{}) {
			vendor, ok := m["vendorId"].(string)
			if !ok || utf8.RuneCountInString(vendor) > 255 {
				return violation(CodeOccurrenceViolation, join(path, "vendorId"), "customData needs a vendorId string of at most 255 characters")
			}
			return nil // customData admits any further property
		}
		fs := fieldsOf(t)
		known := 0
		for _, f := range fs {
			fr := ruleFor(d, f.tag)
			fv, present := m[f.name]
			if !fr.exists(d) {
				if present {
					return violation(CodeOccurrenceViolation, join(path, f.name), "not a property in OCPP %s", d)
				}
				continue
			}
			if !present {
				if fr.req {
					return violation(CodeOccurrenceViolation, join(path, f.name), "required property is missing")
				}
				continue
			}
			known++
			if err := check(d, join(path, f.name), f.typ, fr, fv); err != nil {
				return err
			}
		}
		if known != len(m) && !r.open {
			for k := range m {
				if !hasField(d, fs, k) {
					return violation(CodeOccurrenceViolation, join(path, k), "unknown property")
				}
			}
		}
		return nil
	case reflect.Slice:
		if t == rawMessage {
			return nil
		}
		a, ok := v.([]any)
		if !ok {
			return violation(CodeTypeConstraint, path, "want an array")
		}
		if len(a) < r.minItems {
			return violation(CodeOccurrenceViolation, path, "%d items, at least %d", len(a), r.minItems)
		}
		if r.maxItems > 0 && len(a) > r.maxItems {
			return violation(CodeOccurrenceViolation, path, "%d items, at most %d", len(a), r.maxItems)
		}
		er := *r // element rule: lengths and enums apply to each item
		er.minItems, er.maxItems = 0, 0
		for i, x := range a {
			if err := check(d, fmt.Sprintf("%s[%d]", path, i), t.Elem(), &er, x); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		return checkString(d, path, r, v)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return violation(CodeTypeConstraint, path, "want an integer")
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return violation(CodeTypeConstraint, path, "want an integer, got %s", n)
		}
		if r.min != nil && i < *r.min {
			return violation(CodePropertyConstraint, path, "%d is below the minimum %d", i, *r.min)
		}
		if t.Kind() == reflect.Int32 && int64(int32(i)) != i {
			return violation(CodePropertyConstraint, path, "%d is out of range", i)
		}
		return nil
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return violation(CodeTypeConstraint, path, "want a boolean")
		}
		return nil
	}
	return fmt.Errorf("ocppsec: no check for %s at %s", t, path)
}

func hasField(d Dialect, fs []field, name string) bool {
	for _, f := range fs {
		if f.name == name {
			return ruleFor(d, f.tag).exists(d)
		}
	}
	return false
}

func checkString(d Dialect, path string, r *rule, v any) error {
	s, ok := v.(string)
	if !ok {
		return violation(CodeTypeConstraint, path, "want a string")
	}
	if r.max > 0 {
		if n := utf8.RuneCountInString(s); n > r.max {
			return violation(CodePropertyConstraint, path, "%d characters, at most %d", n, r.max)
		}
	}
	if r.enum != "" && !enumHas(d, r.enum, s) {
		return violation(CodePropertyConstraint, path, "%q is not a %s value in OCPP %s", s, r.enum, d)
	}
	if r.datetime {
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return violation(CodePropertyConstraint, path, "not an RFC 3339 date-time: %q", s)
		}
	}
	return nil
}
