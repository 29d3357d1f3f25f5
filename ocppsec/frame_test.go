package ocppsec

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseFrame(t *testing.T) {
	big := `[2,"1","Heartbeat",{"x":"` + strings.Repeat("a", MaxFrame) + `"}]`
	tests := []struct {
		name, in string
		d        Dialect
		code     string // "" = valid
		id       string
	}{
		{"call", `[2,"19223201","SignCertificate",{"csr":"x"}]`, OCPP201, "", "19223201"},
		{"result", `[3,"19223201",{"status":"Accepted"}]`, OCPP201, "", "19223201"},
		{"error", `[4,"19223201","NotImplemented","no",{}]`, OCPP201, "", "19223201"},
		{"not json", `[2,"1","A",{`, OCPP201, "FormatViolation", ""},
		{"not an array", `{"a":1}`, OCPP201, "FormatViolation", ""},
		{"1.6 spelling", `{"a":1}`, OCPP16, "FormationViolation", ""},
		{"short", `[2,"1"]`, OCPP201, "FormatViolation", ""},
		{"id not string", `[2,1,"A",{}]`, OCPP201, "FormatViolation", ""},
		{"empty id", `[2,"","A",{}]`, OCPP201, "FormatViolation", ""},
		{"long id", `[2,"` + strings.Repeat("1", 37) + `","A",{}]`, OCPP201, "FormatViolation", ""},
		{"call 3 elements", `[2,"7","A"]`, OCPP201, "FormatViolation", "7"},
		{"call payload array", `[2,"7","A",[]]`, OCPP201, "FormatViolation", "7"},
		{"call empty action", `[2,"7","",{}]`, OCPP201, "FormatViolation", "7"},
		{"result extra", `[3,"7",{},{}]`, OCPP201, "FormatViolation", "7"},
		{"error code number", `[4,"7",5,"x",{}]`, OCPP201, "FormatViolation", "7"},
		{"type 5", `[5,"7","A",{}]`, OCPP201, "MessageTypeNotSupported", "7"},
		{"1.6 type 5", `[5,"7","A",{}]`, OCPP16, "ProtocolError", "7"},
		{"oversize", big, OCPP201, "FormatViolation", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFrame(tt.d, []byte(tt.in))
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if f.ID != tt.id {
					t.Errorf("id %q, want %q", f.ID, tt.id)
				}
				out, err := f.Encode()
				if err != nil {
					t.Fatal(err)
				}
				if g, err := ParseFrame(tt.d, out); err != nil || g.ID != f.ID || !bytes.Equal(g.Payload, f.Payload) {
					t.Errorf("round trip: %s: %v", out, err)
				}
				return
			}
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FrameError", err)
			}
			if fe.Code != tt.code || fe.ID != tt.id {
				t.Errorf("code %q id %q, want %q %q (%v)", fe.Code, fe.ID, tt.code, tt.id, err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in string
		d        Dialect
		code     string
		path     string
	}{
		{"missing csr", `{}`, OCPP201, CodeOccurrenceViolation, "csr"},
		{"csr too long", `{"csr":"` + strings.Repeat("a", 5501) + `"}`, OCPP201, CodePropertyConstraint, "csr"},
		{"bad type", `{"csr":"a","certificateType":"Foo"}`, OCPP201, CodePropertyConstraint, "certificateType"},
		{"2.1 type in 2.0.1", `{"csr":"a","certificateType":"V2G20Certificate"}`, OCPP201, CodePropertyConstraint, "certificateType"},
		{"2.1 field in 2.0.1", `{"csr":"a","requestId":1}`, OCPP201, CodeOccurrenceViolation, "requestId"},
		{"unknown", `{"csr":"a","x":1}`, OCPP201, CodeOccurrenceViolation, "x"},
		{"csr number", `{"csr":1}`, OCPP201, CodeTypeConstraint, "csr"},
		{"null", `{"csr":null}`, OCPP201, CodeTypeConstraint, "csr"},
		{"not json", `{"csr":`, OCPP201, CodeFormatViolation, ""},
		{"trailing", `{"csr":"a"} {}`, OCPP201, CodeFormatViolation, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req SignCertificateRequest
			err := Decode(tt.d, []byte(tt.in), &req)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			if ve.Code != tt.code || ve.Path != tt.path {
				t.Errorf("code %q path %q, want %q %q (%v)", ve.Code, ve.Path, tt.code, tt.path, err)
			}
		})
	}
	var req SignCertificateRequest
	if err := Decode(OCPP21, []byte(`{"csr":"a","certificateType":"V2G20Certificate","requestId":7}`), &req); err != nil || *req.RequestID != 7 {
		t.Errorf("2.1 request: %v %+v", err, req)
	}
}

// FuzzParseFrame feeds arbitrary frames to the frame parser and the payload
// decoder of every message: neither may panic, and a parsed frame must
// encode to a frame that parses the same.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`[2,"1","SignCertificate",{"csr":"x","certificateType":"V2GCertificate"}]`,
		`[2,"2","Authorize",{"idToken":{"idToken":"DEABCC12345678","type":"eMAID"},"iso15118CertificateHashData":[{"hashAlgorithm":"SHA256","issuerNameHash":"a","issuerKeyHash":"b","serialNumber":"1","responderURL":"http://x"}]}]`,
		`[3,"1",{"status":"Accepted"}]`,
		`[4,"1","FormatViolation","x",{}]`,
		`[2,"3","DataTransfer",{"vendorId":"iso15118","messageId":"Authorize","data":"{}"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseFrame(OCPP201, data)
		if err != nil {
			return
		}
		out, err := fr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseFrame(OCPP201, out)
		if err != nil || again.ID != fr.ID || again.Type != fr.Type || again.Action != fr.Action {
			t.Fatalf("re-encoded frame differs: %s: %v", out, err)
		}
		if fr.Type != TypeCall {
			return
		}
		for _, d := range []Dialect{OCPP16, OCPP201, OCPP21, Has2be} {
			if m, ok := Lookup(d, fr.Action); ok {
				req := newValue(m.Request)
				if err := Decode(d, fr.Payload, req); err == nil {
					if _, err := json.Marshal(req); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	})
}
