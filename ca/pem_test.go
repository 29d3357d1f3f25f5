package ca

import (
	"encoding/pem"
	"testing"
)

func TestCertificatePEM(t *testing.T) {
	for n := range 200 {
		der := make([]byte, n)
		for i := range der {
			der[i] = byte(i*7 + n)
		}
		want := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		if got := CertificatePEM(der); got != want {
			t.Fatalf("%d bytes:\n%s\nwant\n%s", n, got, want)
		}
	}
}
