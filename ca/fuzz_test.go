package ca_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
)

// FuzzParseCSR: any input is either refused with a code or yields a CSR
// whose signature verified; the profile check never panics on it.
func FuzzParseCSR(f *testing.F) {
	key := p256(f)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name("DE*ABC*E1", "O", "DE", "CPO")}, key)
	f.Add(der)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	p, _ := policies.Lookup(policies.ISO2SECC)
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ca.ParseCSR(data)
		if err != nil {
			if ca.CodeOf(err) == "" {
				t.Fatalf("error without code: %v", err)
			}
			return
		}
		if csr.CheckSignature() != nil {
			t.Fatal("accepted a CSR whose signature does not verify")
		}
		_ = p.CheckCSR(csr, policies.SECCBoth)
	})
}

// FuzzDetect: linting any parsable certificate never panics and always
// names a profile.
func FuzzDetect(f *testing.F) {
	e := newEnv(f)
	for _, a := range e.svc.Authorities() {
		f.Add(a.Cert.Raw)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		if p, _ := policies.Detect(c, policies.SECCBoth); p == nil {
			t.Fatal("Detect returned no profile")
		}
	})
}
