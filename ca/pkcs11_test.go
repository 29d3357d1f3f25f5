package ca_test

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/softhsmtest"
	"github.com/pncpki/pncpki/policies"
)

// TestPKCS11SoftHSM runs a CPO Sub-CA 2 whose key lives in SoftHSM2: the
// key is generated on the token, the sub-CA is certified by the file-key
// CPO Sub-CA 1, and SECC leaves are signed through the pkcs11: URI.
func TestPKCS11SoftHSM(t *testing.T) {
	keyURI := softhsmtest.Token(t) + ";id=%01%02;object=cpo-sub2-hsm?pin-value=1234"
	softhsmtest.Key(t, keyURI)

	e := newEnv(t)
	ctx := context.Background()
	a, err := e.svc.CreateCA(ctx, ca.CAConfig{Name: "cpo-sub2-hsm", Profile: policies.ISO2CPOSub2, Parent: "cpo-sub1", KeyURI: keyURI})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := e.st.CA(ctx, "cpo-sub2-hsm")
	if rec.KeyURI != keyURI {
		t.Errorf("stored key URI %q", rec.KeyURI)
	}
	iss, err := e.svc.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, Issuer: "cpo-sub2-hsm", Tenant: "cpo1", CSR: csrFor(t, p256(t), ca.Name("DE*ABC*E77", "", "", ""))})
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.Cert().CheckSignatureFrom(a.Cert); err != nil {
		t.Fatalf("leaf not signed by the HSM key: %v", err)
	}
	if _, err := x509.ParseRevocationList(mustCRL(t, e, "cpo-sub2-hsm")); err != nil {
		t.Fatal(err)
	}
}

func mustCRL(t *testing.T, e *env, issuer string) []byte {
	t.Helper()
	der, err := e.svc.CRL(context.Background(), issuer, 0)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
