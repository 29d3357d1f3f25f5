package ca_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/testcerts"
)

func crlTemplate(now time.Time) *x509.RevocationList {
	return &x509.RevocationList{
		Number:     big.NewInt(4711),
		ThisUpdate: now,
		NextUpdate: now.Add(7 * 24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: big.NewInt(0x4abcdef), RevocationTime: now.Add(-time.Hour), ReasonCode: 1},
			{SerialNumber: new(big.Int).Lsh(big.NewInt(1), 126), RevocationTime: now.Add(-time.Minute)},
		},
	}
}

// TestEd448CRLMatchesCreateRevocationList: the TBSCertList pncpki encodes
// for Ed448 CAs is byte for byte what x509.CreateRevocationList encodes
// for an ECDSA CA, with and without entries.
func TestEd448CRLMatchesCreateRevocationList(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	pki, err := testcerts.Generate(5, now)
	if err != nil {
		t.Fatal(err)
	}
	issuer := pki.Get("cpo-sub2")
	for _, tmpl := range []*x509.RevocationList{crlTemplate(now), {Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}} {
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.Cert, issuer.Key)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		tbs, err := ca.EncodeTBSCertList(tmpl, issuer.Cert, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tbs, crl.RawTBSRevocationList) {
			t.Errorf("%d entries: TBSCertList differs from x509's\n got %x\nwant %x", len(tmpl.RevokedCertificateEntries), tbs, crl.RawTBSRevocationList)
		}
	}
}

// TestEd448CRL signs a CRL with an Ed448 CA and has it checked by this
// package and by openssl.
func TestEd448CRL(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	pki, err := testcerts.Generate20Ed448(5, now)
	if err != nil {
		t.Fatal(err)
	}
	issuer := pki.Get("mo-sub2")
	der, err := ca.CreateEd448CRL(crlTemplate(now), issuer.Cert, issuer.Ed448Key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := ed448x509.CheckCRLSignature(crl, issuer.Cert); err != nil {
		t.Fatal(err)
	}
	if len(crl.RevokedCertificateEntries) != 2 || crl.RevokedCertificateEntries[0].ReasonCode != 1 || crl.Number.Int64() != 4711 {
		t.Errorf("CRL reads back as %+v", crl)
	}
	if err := ed448x509.CheckCRLSignature(crl, pki.Get("mo-sub1").Cert); err == nil {
		t.Error("the CRL verified with another CA's key")
	}
	if _, err := ca.CreateEd448CRL(crlTemplate(now), pki.Get("mo-sub1").Cert, issuer.Ed448Key); err == nil {
		t.Error("signed a CRL for a certificate of another key")
	}

	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIP: openssl not installed (.ci/run installs it)")
	}
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out, err := exec.Command("openssl", "crl", "-noout", "-in", write("ed448.crl", "X509 CRL", der),
		"-CAfile", write("ca.pem", "CERTIFICATE", issuer.Cert.Raw)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify OK") {
		t.Errorf("openssl crl: %v %s", err, out)
	}
}
