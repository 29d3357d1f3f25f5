package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"go.step.sm/crypto/kms/apiv1"

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

// TestPKCS11SoftHSMP521: an ISO 15118-20 CPO Sub-CA 2 whose P-521 key
// lives in SoftHSM2 signs -20 SECC leaves (ecdsa-with-SHA512) and CRLs.
// SoftHSM2 keeps P-256, P-384 and P-521 keys; Ed448 it has not, so the
// -20 Ed448 variant cannot be held there.
func TestPKCS11SoftHSMP521(t *testing.T) {
	keyURI := softhsmtest.Token(t) + ";id=%02%01;object=cpo20-sub2-hsm?pin-value=1234"
	softhsmtest.KeyFor(t, keyURI, apiv1.ECDSAWithSHA512)

	e := newEnv(t)
	ctx := context.Background()
	for _, c := range []ca.CAConfig{
		{Name: "v2g20-root", Profile: policies.ISO20V2GRoot},
		{Name: "cpo20-sub1", Profile: policies.ISO20CPOSub1, Parent: "v2g20-root"},
	} {
		if _, err := e.svc.CreateCA(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	a, err := e.svc.CreateCA(ctx, ca.CAConfig{Name: "cpo20-sub2-hsm", Profile: policies.ISO20CPOSub2, Parent: "cpo20-sub1", KeyURI: keyURI})
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := a.Cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P521() {
		t.Fatalf("HSM key %T", a.Cert.PublicKey)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	iss, err := e.svc.Issue(ctx, ca.Request{Profile: policies.ISO20SECC, Issuer: "cpo20-sub2-hsm", Tenant: "cpo1", CSR: csrFor(t, key, ca.Name("DE*ABC*E78", "", "", ""))})
	if err != nil {
		t.Fatal(err)
	}
	if c := iss.Cert(); c.CheckSignatureFrom(a.Cert) != nil || c.SignatureAlgorithm != x509.ECDSAWithSHA512 {
		t.Fatalf("leaf not signed by the HSM key with SHA-512: %v", c.SignatureAlgorithm)
	}
	crl, err := x509.ParseRevocationList(mustCRL(t, e, "cpo20-sub2-hsm"))
	if err != nil || crl.CheckSignatureFrom(a.Cert) != nil {
		t.Fatalf("CRL: %v", err)
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
