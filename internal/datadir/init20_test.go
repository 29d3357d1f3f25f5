package datadir_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/testcerts/openssltest"
	"github.com/pncpki/pncpki/testcerts/zlinttest"
)

// TestInitISO20 creates the -2 and the -20 hierarchies side by side, as a
// CPO would for both vehicle generations, then issues a -20 SECC
// certificate from an openssl P-521 CSR and has openssl verify its chain.
// A P-256 key is refused for -20, a P-521 one for -2.
func TestInitISO20(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed: skipping (.ci/run installs it)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	d, err := datadir.Open(ctx, filepath.Join(dir, "data"), ca.Options{PublicURL: "http://pki.stadtwerke-musterstadt.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE", ISO20: true}); err != nil {
		t.Fatal(err)
	}
	for _, h := range append(datadir.DefaultHierarchy, datadir.Hierarchy20...) {
		a, err := d.CA.Authority(h.Name)
		if err != nil {
			t.Fatal(err)
		}
		curve := elliptic.P256()
		if strings.HasPrefix(h.Profile, "iso15118-20/") {
			curve = elliptic.P521()
		}
		if k, ok := a.Cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != curve {
			t.Errorf("%s: key %T, want ECDSA on %s", h.Name, a.Cert.PublicKey, curve.Params().Name)
		}
		if vs := a.Profile.Check(a.Cert, 0); len(vs) > 0 {
			t.Errorf("%s: %v", h.Name, vs)
		}
		zlinttest.Check(t, h.Name, a.Cert.Raw)
	}

	csr := func(curve, cn string) []byte {
		t.Helper()
		key, out := filepath.Join(dir, curve+".key"), filepath.Join(dir, curve+".csr")
		for _, args := range [][]string{
			{"ecparam", "-name", curve, "-genkey", "-noout", "-out", key},
			{"req", "-new", "-key", key, "-sha512", "-subj", "/CN=" + cn + "/O=Stadtwerke Musterstadt Energie GmbH", "-out", out},
		} {
			if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
				t.Fatalf("openssl %v: %v %s", args, err, b)
			}
		}
		b, _ := os.ReadFile(out)
		return b
	}
	issued, err := d.CA.Issue(ctx, ca.Request{Profile: policies.ISO20SECC, CSR: csr("secp521r1", "DE*SWM*E000123*1")})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(issued.Record.DER)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := policies.Lookup(policies.ISO20SECC)
	if vs := p.Check(leaf, 0); len(vs) > 0 || leaf.SignatureAlgorithm != x509.ECDSAWithSHA512 || issued.Record.Issuer != "cpo20-sub2" {
		t.Errorf("-20 SECC from %s, %v: %v", issued.Record.Issuer, leaf.SignatureAlgorithm, vs)
	}
	zlinttest.Check(t, "secc20", leaf.Raw)
	write := func(name string, certs ...*x509.Certificate) string {
		var b []byte
		for _, c := range certs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		path := filepath.Join(dir, name)
		os.WriteFile(path, b, 0o644)
		return path
	}
	chain := issued.Chain // issuer first, root last
	out, err := exec.Command("openssl", "verify", "-x509_strict", "-CAfile", write("root.pem", chain[len(chain)-1]),
		"-untrusted", write("subs.pem", chain[:len(chain)-1]...), write("leaf.pem", leaf)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Errorf("openssl verify: %v %s", err, out)
	}

	var ce *ca.Error
	if _, err := d.CA.Issue(ctx, ca.Request{Profile: policies.ISO20SECC, CSR: csr("prime256v1", "DE*SWM*E000124*1")}); !errors.As(err, &ce) || !hasViolation(ce, policies.CodeKeyAlgorithm) {
		t.Errorf("a P-256 key for -20: %v", err)
	}
	if _, err := d.CA.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, CSR: csr("secp521r1", "DE*SWM*E000125*1")}); !errors.As(err, &ce) || !hasViolation(ce, policies.CodeKeyAlgorithm) {
		t.Errorf("a P-521 key for -2: %v", err)
	}
}

func hasViolation(e *ca.Error, code string) bool {
	for _, v := range e.Violations {
		if v.Code == code {
			return true
		}
	}
	return false
}

// TestInitISO20Ed448: the Ed448 hierarchy Init creates beside the P-521
// one has Ed448 keys in 0600 files, lints clean (ours and zlint), leads
// openssl to verify its CPS leaf, issues and revokes with Ed448, and signs
// a CRL openssl verifies; reopened, the data directory loads the Ed448
// keys and issues again.
func TestInitISO20Ed448(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed: skipping (.ci/run installs it)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "data")
	opts := ca.Options{PublicURL: "http://pki.stadtwerke-musterstadt.example"}
	d, err := datadir.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Close() }()
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE", ISO20: true}); err != nil {
		t.Fatal(err)
	}
	for _, h := range datadir.Hierarchy20Ed448 {
		a, err := d.CA.Authority(h.Name)
		if err != nil {
			t.Fatal(err)
		}
		if ed448x509.PublicKey(a.Cert) == nil || !ed448x509.SignedWithEd448(a.Cert) {
			t.Errorf("%s: not an Ed448 CA", h.Name)
		}
		if vs := a.Profile.Check(a.Cert, 0); len(vs) > 0 {
			t.Errorf("%s: %v", h.Name, vs)
		}
		zlinttest.Check(t, h.Name, a.Cert.Raw)
	}
	keyInfo, err := os.Stat(filepath.Join(path, datadir.CPS20EdLeafKey))
	if err != nil || keyInfo.Mode().Perm() != 0o600 {
		t.Fatalf("CPS leaf key: %v %v", keyInfo, err)
	}
	data, err := os.ReadFile(filepath.Join(path, datadir.CPS20EdLeafCert))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	cpsLeaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := d.CA.Authority("v2g20ed-root")
	sub1, _ := d.CA.Authority("cps20ed-sub1")
	sub2, _ := d.CA.Authority("cps20ed-sub2")
	openssltest.Verify(t, root.Cert, []*x509.Certificate{cpsLeaf, sub2.Cert, sub1.Cert})

	pub, _, _ := ed448.GenerateKey(nil)
	issued, err := d.CA.IssueForKey(ctx, policies.ISO20EdSECC, "cpo20ed-sub2", pub, policies.Subject{CommonName: "DE*SWM*E000123*1"}, policies.Period{})
	if err != nil {
		t.Fatal(err)
	}
	secc := issued.Cert()
	if p, _ := policies.Lookup(policies.ISO20EdSECC); len(p.Check(secc, 0)) > 0 {
		t.Errorf("SECC: %v", p.Check(secc, 0))
	}
	zlinttest.Check(t, "secc20ed", secc.Raw)
	openssltest.Verify(t, root.Cert, append([]*x509.Certificate{secc}, issued.Chain[:len(issued.Chain)-1]...))
	if _, err := d.CA.Revoke(ctx, "cpo20ed-sub2", issued.Record.Serial, 1); err != nil {
		t.Fatal(err)
	}
	crlDER, err := d.CA.CRL(ctx, "cpo20ed-sub2", 0)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(crlDER)
	if err != nil {
		t.Fatal(err)
	}
	cpo2, _ := d.CA.Authority("cpo20ed-sub2")
	if err := ed448x509.CheckCRLSignature(crl, cpo2.Cert); err != nil || len(crl.RevokedCertificateEntries) != 1 ||
		crl.RevokedCertificateEntries[0].SerialNumber.Cmp(secc.SerialNumber) != 0 {
		t.Errorf("CRL: %v, %d entries", err, len(crl.RevokedCertificateEntries))
	}
	crlPath := filepath.Join(dir, "cpo20ed-sub2.crl")
	os.WriteFile(crlPath, crlDER, 0o644)
	caPath := filepath.Join(dir, "cpo20ed-sub2.pem")
	os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cpo2.Cert.Raw}), 0o644)
	if out, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", crlPath, "-noout", "-CAfile", caPath).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "verify OK") {
		t.Errorf("openssl crl: %v %s", err, out)
	}

	d.Close()
	if d, err = datadir.Open(ctx, path, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CA.IssueForKey(ctx, policies.ISO20EdSECC, "cpo20ed-sub2", pub, policies.Subject{CommonName: "DE*SWM*E000124*1"}, policies.Period{}); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
}
