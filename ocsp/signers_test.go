package ocsp

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestResponderCN: a delegated responder is named after its CA within a
// CN's 64 characters, however long the CA's name (an imported CA's CN may
// take all 64), and never ends in a cut character.
func TestResponderCN(t *testing.T) {
	for _, tc := range []struct{ ca, want string }{
		{"MO Sub-CA 2", "MO Sub-CA 2 OCSP Responder"},
		{strings.Repeat("a", 49), strings.Repeat("a", 49) + " OCSP Responder"},
		{strings.Repeat("a", 64), strings.Repeat("a", 49) + " OCSP Responder"},
		{strings.Repeat("a", 48) + " Stadtwerke", strings.Repeat("a", 48) + " OCSP Responder"},
		{strings.Repeat("ä", 32), strings.Repeat("ä", 24) + " OCSP Responder"},
		{"", "OCSP Responder"},
	} {
		got := responderCN(tc.ca)
		if got != tc.want || len(got) > 64 || !utf8.ValidString(got) {
			t.Errorf("responderCN(%q) = %q, want %q", tc.ca, got, tc.want)
		}
	}
}
