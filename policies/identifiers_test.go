package policies

import (
	"errors"
	"testing"
)

func TestEMAIDCheckDigit(t *testing.T) {
	// Published examples (eMI3 "Check digit calculation for Contract-IDs",
	// DIN SPEC 91286) as used by independent implementations.
	tests := []struct {
		in   string
		want byte
	}{
		{"NN123ABCDEFGHI", 'T'},
		{"FRXYZ123456789", '2'},
		{"ITA1B2C3E4F5G6", '4'},
		{"ESZU8WOX834H1D", 'R'},
		{"PT73902837ABCZ", 'Z'},
		{"DE83DUIEN83QGZ", 'D'},
		{"DE83DUIEN83ZGQ", 'M'},
		{"DE8AA001234567", '0'},
		{"DE8AACA2B3C4D5", 'L'},
		{"GBTWK012345678", 'V'},
	}
	for _, tt := range tests {
		got, err := EMAIDCheckDigit(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("EMAIDCheckDigit(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseEMAID(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"DE-8AA-CA2B3C4D5-L", "DE8AACA2B3C4D5L", true},
		{"de8aaca2b3c4d5", "DE8AACA2B3C4D5L", true},
		{"DE83DUIEN83QGZD", "DE83DUIEN83QGZD", true},
		{"UKSWI123456791A", "", false}, // wrong check digit in common test PKIs
		{"DE8AACA2B3C4D5X", "", false},
		{"D18AACA2B3C4D5L", "", false},
		{"DE8AACA2B3C4", "", false},
		{"DE8AA_A2B3C4D5", "", false},
	}
	for _, tt := range tests {
		e, err := ParseEMAID(tt.in)
		if tt.ok != (err == nil) || (tt.ok && e.String() != tt.want) {
			t.Errorf("ParseEMAID(%q) = %v, %v; want %q ok=%v", tt.in, e, err, tt.want, tt.ok)
		}
		var ie *IdentifierError
		if err != nil && !errors.As(err, &ie) {
			t.Errorf("ParseEMAID(%q) error %T is not an IdentifierError", tt.in, err)
		}
	}
}

func TestParseEVSEID(t *testing.T) {
	tests := []struct {
		in, op, compact string
		ok              bool
	}{
		{"DE*ABC*E123456*1", "DEABC", "DEABCE1234561", true},
		{"DEABCE1234561", "DEABC", "DEABCE1234561", true},
		{"de*abc*e45b*78c", "DEABC", "DEABCE45B78C", true},
		{"DE*ICE*E45B*78C", "DEICE", "DEICEE45B78C", true},
		{"DE*ABC*S123456", "", "", false},  // wrong ID type
		{"DE*ABC*E", "", "", false},        // empty outlet
		{"DE*ABC*E12**3", "", "", false},   // double separator
		{"+49*810*000*438", "", "", false}, // phone form has no operator ID
		{"DE*AB*E1234", "", "", false},     // short operator
		{"1E*ABC*E1234", "", "", false},    // country
		{"DE*ABC*E1234567890123456789012345678901", "DEABC", "DEABCE1234567890123456789012345678901", true}, // 37 without separators
		{"DE*ABC*E12345678901234567890123456789012", "", "", false},                                         // 38
	}
	for _, tt := range tests {
		e, err := ParseEVSEID(tt.in)
		if tt.ok != (err == nil) {
			t.Errorf("ParseEVSEID(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && (e.OperatorID() != tt.op || e.Compact() != tt.compact) {
			t.Errorf("ParseEVSEID(%q) = %s/%s, want %s/%s", tt.in, e.OperatorID(), e.Compact(), tt.op, tt.compact)
		}
	}
}

func TestParseSECCID(t *testing.T) {
	ctrl := "0123456789ABCDEF0123456789ABCDEF" // 32 characters
	tests := []struct {
		in string
		ok bool
	}{
		{"DEABCS" + ctrl + "7", true},
		{"DE*ABC*S" + ctrl + "7", true},
		{"DEABCS" + ctrl[:31] + "7", false},                   // 38 characters
		{"DEABCS" + ctrl + ctrl[:25] + "7", true},             // 64
		{"DEABCS" + ctrl + ctrl[:26] + "7", false},            // 65
		{"DEABCE" + ctrl + "7", false},                        // not 'S'
		{"DEABCS" + ctrl[:20] + "-" + ctrl[21:] + "7", false}, // bad character
	}
	for _, tt := range tests {
		id, err := ParseSECCID(tt.in)
		if tt.ok != (err == nil) {
			t.Errorf("ParseSECCID(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err == nil && id.OperatorID() != "DEABC" {
			t.Errorf("ParseSECCID(%q) operator %s", tt.in, id.OperatorID())
		}
	}
}

func TestSECCForms(t *testing.T) {
	seccID := "DEABCS0123456789ABCDEF0123456789ABCDEF7"
	evse := "DE*ABC*E1"
	for _, tt := range []struct {
		cn    string
		forms SECCForms
		ok    bool
	}{
		{seccID, SECCBoth, true}, {evse, SECCBoth, true},
		{seccID, SECCOnlyID, true}, {evse, SECCOnlyID, false},
		{seccID, SECCOnlyEVSEID, false}, {evse, SECCOnlyEVSEID, true},
		{"SECCCert", SECCBoth, true}, // SE*CCC*ERT: odd but well-formed
		{"SECC Cert", SECCBoth, false},
	} {
		op, err := SECCOperatorID(tt.cn, tt.forms)
		if tt.ok != (err == nil) || (err == nil && op != "DEABC" && tt.cn != "SECCCert") {
			t.Errorf("SECCOperatorID(%q, %d) = %q, %v; want ok=%v", tt.cn, tt.forms, op, err, tt.ok)
		}
	}
}

func TestPCIDAndPartyIDs(t *testing.T) {
	if got, err := NormalizePCID("wmi1234567890abcd"); err != nil || got != "WMI1234567890ABCD" {
		t.Errorf("NormalizePCID = %q, %v", got, err)
	}
	for _, bad := range []string{"WMI123", "WMI1234567890ABCD-", "WMI1234567890ABCDEF"} {
		if _, err := NormalizePCID(bad); err == nil {
			t.Errorf("NormalizePCID(%q) accepted", bad)
		}
	}
	if got, err := NormalizeOperatorID("de*abc"); err != nil || got != "DEABC" {
		t.Errorf("NormalizeOperatorID = %q, %v", got, err)
	}
	if got, err := NormalizeProviderID("DE-8AA"); err != nil || got != "DE8AA" {
		t.Errorf("NormalizeProviderID = %q, %v", got, err)
	}
	if _, err := NormalizeOperatorID("D1ABC"); err == nil {
		t.Error("NormalizeOperatorID accepted a digit in the country code")
	}
}

func FuzzIdentifiers(f *testing.F) {
	for _, s := range []string{"DE*ABC*E123456*1", "DE-8AA-CA2B3C4D5-L", "DEABCS0123456789ABCDEF0123456789ABCDEF7", "WMI1234567890ABCD", "+49*810*000*438"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if e, err := ParseEVSEID(s); err == nil {
			if e2, err := ParseEVSEID(e.String()); err != nil || e2 != e {
				t.Fatalf("EVSEID %q does not round-trip: %v", s, err)
			}
		}
		if e, err := ParseEMAID(s); err == nil {
			if e2, err := ParseEMAID(e.String()); err != nil || e2 != e {
				t.Fatalf("EMAID %q does not round-trip: %v", s, err)
			}
		}
		if id, err := ParseSECCID(s); err == nil {
			if id2, err := ParseSECCID(id.String()); err != nil || id2 != id {
				t.Fatalf("SECC ID %q does not round-trip: %v", s, err)
			}
		}
		_, _ = NormalizePCID(s)
		_, _ = NormalizeOperatorID(s)
	})
}
