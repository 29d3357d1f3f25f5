package api

import (
	"encoding/pem"
	"testing"
)

func TestCertPEM(t *testing.T) {
	for n := range 200 {
		der := make([]byte, n)
		for i := range der {
			der[i] = byte(i*7 + n)
		}
		want := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		if got := certPEM(der); got != want {
			t.Fatalf("%d bytes:\n%s\nwant\n%s", n, got, want)
		}
	}
}
