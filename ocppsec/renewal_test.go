package ocppsec

import (
	"slices"
	"testing"
)

// TestSECCCNForms: every form a SECC CN may take normalises to the
// compact name it was made from, and the forms are what the CN index is
// asked for.
func TestSECCCNForms(t *testing.T) {
	for _, compact := range []string{"DEABCE9", "DESWME000123", "DEABCS0123456789ABCDEF0123456789ABCDEF1"} {
		forms := seccCNForms(compact)
		if len(forms) != 8 || !slices.Contains(forms, compact) {
			t.Errorf("%s: %q", compact, forms)
		}
		for _, f := range forms {
			if n, ok := NormalizeSECCName(f); !ok || n != compact {
				t.Errorf("%s: form %q normalises to %q %v", compact, f, n, ok)
			}
		}
	}
	if !slices.Contains(seccCNForms("DEABCE9"), "DE*ABC*E9") {
		t.Error("no starred EVSEID form")
	}
}
