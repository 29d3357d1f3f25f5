package zlinttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestFindsProblems proves the registry is not empty: a leaf with
// keyCertSign must be reported.
func TestFindsProblems(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1234567), Subject: pkix.Name{CommonName: "bad"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Findings(der)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(fs, " "), "e_ext_key_usage_cert_sign_without_ca") {
		t.Errorf("zlint did not report keyCertSign on a non-CA: %v", fs)
	}
}
