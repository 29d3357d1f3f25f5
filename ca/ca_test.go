package ca_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
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
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/sqlite"
	"github.com/pncpki/pncpki/testcerts/zlinttest"
)

type env struct {
	dir string
	st  store.Store
	svc *ca.Service
}

// newEnv opens a SQLite store in a temporary data directory and creates the
// V2G/CPO, MO and OCPP hierarchies plus a CPO and an eMSP tenant.
func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "pncpki.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := ca.New(context.Background(), ca.Options{Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	ctx := context.Background()
	for _, c := range []ca.CAConfig{
		{Name: "v2g-root", Profile: policies.ISO2V2GRoot, CommonName: "Test V2G Root", Organization: "Test"},
		{Name: "cpo-sub1", Profile: policies.ISO2CPOSub1, Parent: "v2g-root"},
		{Name: "cpo-sub2", Profile: policies.ISO2CPOSub2, Parent: "cpo-sub1"},
		{Name: "mo-root", Profile: policies.ISO2MORoot},
		{Name: "mo-sub1", Profile: policies.ISO2MOSub1, Parent: "mo-root"},
		{Name: "mo-sub2", Profile: policies.ISO2MOSub2, Parent: "mo-sub1"},
		{Name: "csms-root", Profile: policies.OCPPCSMSRoot},
	} {
		if _, err := svc.CreateCA(ctx, c); err != nil {
			t.Fatalf("CreateCA %s: %v", c.Name, err)
		}
	}
	for _, tn := range []*policies.Tenant{
		{Name: "cpo1", Kind: policies.TenantCPO, Organization: "Example CPO", OperatorIDs: []string{"DE*ABC"}, DNSDomains: []string{"cpo1.example"}},
		{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE-8AA"}},
	} {
		if err := tn.Normalize(); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	return &env{dir: dir, st: st, svc: svc}
}

func (e *env) count(t testing.TB) int {
	t.Helper()
	cs, err := e.st.Certificates(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(cs)
}

func csrFor(t testing.TB, key any, subj pkix.Name, dns ...string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj, DNSNames: dns}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func p256(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed: skipping interop test (.ci/run installs it)")
	}
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func writePEM(t *testing.T, path string, certs ...*x509.Certificate) {
	t.Helper()
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestIssueSECCFromOpenSSLCSR is the foundation issue's interop check: an
// openssl-made CSR becomes an SECC leaf that lints clean (ours and zlint),
// is at most 800 bytes, has at least 64 random serial bits, is stored, and
// verifies with openssl.
func TestIssueSECCFromOpenSSLCSR(t *testing.T) {
	needOpenSSL(t)
	e := newEnv(t)
	dir := t.TempDir()
	key, csr := filepath.Join(dir, "k.pem"), filepath.Join(dir, "csr.pem")
	run(t, "openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
	run(t, "openssl", "req", "-new", "-key", key, "-subj", "/CN=DE*ABC*E123456*1/O=Example CPO/DC=CPO", "-out", csr)
	csrPEM, _ := os.ReadFile(csr)

	iss, err := e.svc.Issue(context.Background(), ca.Request{Profile: policies.ISO2SECC, CSR: csrPEM, Tenant: "cpo1"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := policies.Lookup(policies.ISO2SECC)
	if vs := p.Check(iss.Cert(), policies.SECCBoth); len(vs) > 0 {
		t.Errorf("issued SECC leaf does not lint clean: %v", vs)
	}
	zlinttest.Check(t, "secc", iss.Cert().Raw)
	if n := len(iss.Cert().Raw); n > 800 {
		t.Errorf("DER is %d bytes, want <= 800", n)
	}
	if bits := iss.Cert().SerialNumber.BitLen(); bits < 64 || len(iss.Cert().SerialNumber.Bytes()) > 20 {
		t.Errorf("serial has %d bits", bits)
	}
	got, err := e.st.Certificate(context.Background(), "cpo-sub2", ca.SerialHex(iss.Cert().SerialNumber))
	if err != nil || !bytes.Equal(got.DER, iss.Cert().Raw) || got.Tenant != "cpo1" {
		t.Fatalf("stored certificate = %+v, %v", got, err)
	}
	if len(iss.Chain) != 3 || iss.Chain[2].Subject.CommonName != "Test V2G Root" {
		t.Fatalf("chain has %d certificates", len(iss.Chain))
	}
	writePEM(t, filepath.Join(dir, "leaf.pem"), iss.Cert())
	writePEM(t, filepath.Join(dir, "subs.pem"), iss.Chain[:2]...)
	writePEM(t, filepath.Join(dir, "root.pem"), iss.Chain[2])
	out := run(t, "openssl", "verify", "-CAfile", filepath.Join(dir, "root.pem"), "-untrusted", filepath.Join(dir, "subs.pem"), filepath.Join(dir, "leaf.pem"))
	if !strings.Contains(string(out), "OK") {
		t.Errorf("openssl verify: %s", out)
	}
}

func TestIssueProfiles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	seccID := "DEABCS0123456789ABCDEF0123456789ABCDEF7"
	for _, tt := range []struct {
		name, profile, tenant string
		key                   any
		subj                  pkix.Name
		dns                   []string
	}{
		{"SECC with SECC ID", policies.ISO2SECC, "cpo1", p256(t), ca.Name(seccID, "Example CPO", "DE", "CPO"), nil},
		{"SECC by admin", policies.ISO2SECC, "", p256(t), ca.Name("DE*XYZ*E1", "", "", ""), nil},
		{"contract", policies.ISO2Contract, "emsp1", p256(t), ca.Name("DE8AACA2B3C4D5L", "", "", "MO"), nil},
		{"station RSA", policies.OCPPChargingStation, "cpo1", rsaKey, ca.Name("CS-0001", "Example CPO", "", ""), nil},
		{"station O from tenant", policies.OCPPChargingStation, "cpo1", p256(t), ca.Name("CS-0002", "", "", ""), nil},
		{"CSMS server", policies.OCPPCSMSServer, "cpo1", p256(t), ca.Name("csms.cpo1.example", "", "", ""), []string{"ocpp.cpo1.example"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			iss, err := e.svc.Issue(ctx, ca.Request{Profile: tt.profile, Tenant: tt.tenant, CSR: csrFor(t, tt.key, tt.subj, tt.dns...)})
			if err != nil {
				t.Fatal(err)
			}
			p, _ := policies.Lookup(tt.profile)
			if vs := p.Check(iss.Cert(), policies.SECCBoth); len(vs) > 0 {
				t.Errorf("lint: %v", vs)
			}
			zlinttest.Check(t, tt.name, iss.Cert().Raw)
			// The record is filled from the template, not the parsed
			// certificate: both must say the same.
			if c, r := iss.Cert(), iss.Record; r.Serial != ca.SerialHex(c.SerialNumber) || r.CommonName != c.Subject.CommonName ||
				!r.NotBefore.Equal(c.NotBefore) || !r.NotAfter.Equal(c.NotAfter) {
				t.Errorf("record %s %q %s..%s, certificate %s %q %s..%s", r.Serial, r.CommonName, r.NotBefore, r.NotAfter,
					ca.SerialHex(c.SerialNumber), c.Subject.CommonName, c.NotBefore, c.NotAfter)
			}
			if !iss.Cert().NotAfter.Before(iss.Chain[0].NotAfter.Add(time.Second)) {
				t.Errorf("notAfter %s beyond issuer's %s", iss.Cert().NotAfter, iss.Chain[0].NotAfter)
			}
		})
	}
}

// TestRefusals: each bad request gets its code and stores nothing.
func TestRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	good := csrFor(t, p256(t), ca.Name("DE*ABC*E1", "", "", "CPO"))
	block, _ := pem.Decode(good)
	badSig := bytes.Clone(block.Bytes)
	badSig[len(badSig)-3] ^= 0xff
	oversized := append(bytes.Repeat([]byte(" "), ca.MaxCSRSize), good...)
	// A CSR claiming a 16384-bit RSA key (its signature is never checked).
	hugeRSA := func() []byte {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name("DE*ABC*E1", "", "", "")}, k)
		n := new(big.Int).Lsh(big.NewInt(1), 16383)
		n.Add(n, big.NewInt(1))
		spki, _ := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
		old, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: patchDER(der, old, spki)})
	}()

	for _, tt := range []struct {
		name, profile, tenant string
		csr                   []byte
		code                  string
	}{
		{"P-384 key", policies.ISO2SECC, "cpo1", csrFor(t, p384, ca.Name("DE*ABC*E1", "", "", "")), ca.CodeCSRProfile},
		{"RSA key", policies.ISO2SECC, "cpo1", csrFor(t, rsaKey, ca.Name("DE*ABC*E1", "", "", "")), ca.CodeCSRProfile},
		{"bad self-signature", policies.ISO2SECC, "cpo1", badSig, ca.CodeCSRSignature},
		{"CN neither SECC ID nor EVSEID", policies.ISO2SECC, "cpo1", csrFor(t, p256(t), ca.Name("charger 1", "", "", "")), ca.CodeCSRProfile},
		{"CN neither, by admin", policies.ISO2SECC, "", csrFor(t, p256(t), ca.Name("charger 1", "", "", "")), ca.CodeCSRProfile},
		{"EVSEID of another operator", policies.ISO2SECC, "cpo1", csrFor(t, p256(t), ca.Name("DE*XYZ*E1", "", "", "")), ca.CodePolicyDenied},
		{"wrong DC", policies.ISO2SECC, "cpo1", csrFor(t, p256(t), ca.Name("DE*ABC*E1", "", "", "MO")), ca.CodeCSRProfile},
		{"eMSP asks for SECC", policies.ISO2SECC, "emsp1", good, ca.CodePolicyDenied},
		{"EMAID of another provider", policies.ISO2Contract, "emsp1", csrFor(t, p256(t), ca.Name("DE83DUIEN83QGZD", "", "", "")), ca.CodePolicyDenied},
		{"EMAID with wrong check digit", policies.ISO2Contract, "emsp1", csrFor(t, p256(t), ca.Name("DE8AACA2B3C4D5X", "", "", "")), ca.CodeCSRProfile},
		{"station of another organization", policies.OCPPChargingStation, "cpo1", csrFor(t, p256(t), ca.Name("CS-1", "Other", "", "")), ca.CodePolicyDenied},
		{"server name outside the tenant's domains", policies.OCPPCSMSServer, "cpo1", csrFor(t, p256(t), ca.Name("csms.evil.example", "", "", "")), ca.CodePolicyDenied},
		{"unknown tenant", policies.ISO2SECC, "ghost", good, ca.CodeTenantUnknown},
		{"unknown profile", "iso15118-2/nope", "", good, ca.CodeProfileUnknown},
		{"root profile", policies.ISO2V2GRoot, "", good, ca.CodeProfileNotIssue},
		{"garbage", policies.ISO2SECC, "cpo1", []byte("not a CSR"), ca.CodeCSRMalformed},
		{"PEM of the wrong type", policies.ISO2SECC, "cpo1", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}), ca.CodeCSRMalformed},
		{"two CSRs in one PEM", policies.ISO2SECC, "cpo1", append(append([]byte{}, good...), good...), ca.CodeCSRMalformed},
		{"data after the PEM block", policies.ISO2SECC, "cpo1", append(append([]byte{}, good...), "trailing"...), ca.CodeCSRMalformed},
		{"oversized", policies.ISO2SECC, "cpo1", oversized, ca.CodeCSRTooLarge},
		{"16384-bit RSA key", policies.OCPPChargingStation, "cpo1", hugeRSA, ca.CodeCSRProfile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.count(t)
			_, err := e.svc.Issue(ctx, ca.Request{Profile: tt.profile, Tenant: tt.tenant, CSR: tt.csr})
			if code := ca.CodeOf(err); code != tt.code {
				t.Fatalf("error %v has code %q, want %q", err, code, tt.code)
			}
			if after := e.count(t); after != before {
				t.Errorf("%d certificates stored by a refused request", after-before)
			}
		})
	}
}

func TestRevokeAndCRL(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var serials []string
	for _, cn := range []string{"DE*ABC*E1", "DE*ABC*E2"} {
		iss, err := e.svc.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, Tenant: "cpo1", CSR: csrFor(t, p256(t), ca.Name(cn, "", "", ""))})
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, strings.ToUpper(ca.SerialHex(iss.Cert().SerialNumber)))
	}
	if _, err := e.svc.Revoke(ctx, "", "00"+serials[0], 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Revoke(ctx, "", serials[0], 4); ca.CodeOf(err) != ca.CodeAlreadyRevoked {
		t.Errorf("second revoke: %v", err)
	}
	if _, err := e.svc.Revoke(ctx, "", "abcdef", 1); ca.CodeOf(err) != ca.CodeNotFound {
		t.Errorf("unknown serial: %v", err)
	}
	if _, err := e.svc.Revoke(ctx, "", serials[1], 7); ca.CodeOf(err) != ca.CodeBadReason {
		t.Errorf("reason 7: %v", err)
	}
	a, _ := e.svc.Authority("cpo-sub2")
	var numbers []int64
	for range 2 {
		der, err := e.svc.CRL(ctx, "cpo-sub2", 0)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(a.Cert); err != nil {
			t.Fatal(err)
		}
		if len(crl.RevokedCertificateEntries) != 1 || strings.ToUpper(crl.RevokedCertificateEntries[0].SerialNumber.Text(16)) != serials[0] || crl.RevokedCertificateEntries[0].ReasonCode != 1 {
			t.Fatalf("CRL entries = %+v", crl.RevokedCertificateEntries)
		}
		numbers = append(numbers, crl.Number.Int64())
		if _, err := exec.LookPath("openssl"); err == nil {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "crl.der"), der, 0o644)
			writePEM(t, filepath.Join(dir, "ca.pem"), a.Chain...)
			out := run(t, "openssl", "crl", "-inform", "DER", "-in", filepath.Join(dir, "crl.der"), "-CAfile", filepath.Join(dir, "ca.pem"), "-noout", "-text")
			if !strings.Contains(string(out), serials[0]) {
				t.Errorf("openssl crl does not list %s:\n%s", serials[0], out)
			}
		}
	}
	if numbers[1] <= numbers[0] {
		t.Errorf("CRL numbers %v do not increase", numbers)
	}
}

func TestSubCAFromOutsideRoot(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// The "outside root" is another service's V2G root.
	other := newEnv(t)
	csrDER, err := e.svc.RequestCA(ctx, ca.CAConfig{Name: "ext-sub1", Profile: policies.ISO2CPOSub1, CommonName: "External CPO Sub-CA 1"})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := e.st.CA(ctx, "ext-sub1")
	if !rec.Pending() {
		t.Fatal("CA not pending after RequestCA")
	}
	if _, err := e.svc.Authority("ext-sub1"); err == nil {
		t.Fatal("pending CA is usable")
	}
	signed, err := other.svc.Issue(ctx, ca.Request{Profile: policies.ISO2CPOSub1, CSR: csrDER})
	if err != nil {
		t.Fatal(err)
	}
	// A certificate for another key is refused.
	wrong, _ := other.svc.Issue(ctx, ca.Request{Profile: policies.ISO2CPOSub1, CSR: csrFor(t, p256(t), ca.Name("x", "", "", "V2G"))})
	if _, err := e.svc.ImportCACertificate(ctx, "", wrong.Cert().Raw); ca.CodeOf(err) != ca.CodeBadRequest {
		t.Fatalf("import of a certificate for another key: %v", err)
	}
	a, err := e.svc.ImportCACertificate(ctx, "", signed.Cert().Raw)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "ext-sub1" {
		t.Fatalf("imported as %s", a.Name)
	}
	if _, err := e.svc.CreateCA(ctx, ca.CAConfig{Name: "ext-sub2", Profile: policies.ISO2CPOSub2, Parent: "ext-sub1"}); err != nil {
		t.Fatal(err)
	}
	iss, err := e.svc.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, Issuer: "ext-sub2", CSR: csrFor(t, p256(t), ca.Name("DE*ABC*E9", "", "", ""))})
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	root, _ := other.svc.Authority("v2g-root")
	roots.AddCert(root.Cert)
	for _, c := range iss.Chain {
		inter.AddCert(c)
	}
	if _, err := iss.Cert().Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("SECC under the outside root does not verify: %v", err)
	}
	// Two CPO Sub-CA 2 now exist: the issuer must be named.
	if _, err := e.svc.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, CSR: csrFor(t, p256(t), ca.Name("DE*ABC*E8", "", "", ""))}); ca.CodeOf(err) != ca.CodeIssuerAmbiguous {
		t.Errorf("ambiguous issuer: %v", err)
	}
}

func TestRestartKeepsCAs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(e.dir, "pncpki.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := ca.New(ctx, ca.Options{Store: st, DataDir: e.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if n := len(svc.Authorities()); n != 7 {
		t.Fatalf("%d CAs after restart, want 7", n)
	}
	// A key file readable by others is refused.
	os.Chmod(filepath.Join(e.dir, "keys", "v2g-root.key"), 0o644)
	if _, err := ca.New(ctx, ca.Options{Store: st, DataDir: e.dir}); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("world-readable key accepted: %v", err)
	}
}

func TestParseReasonAndSerial(t *testing.T) {
	for in, want := range map[string]int{"keyCompromise": 1, "KEYCOMPROMISE": 1, "4": 4, "aACompromise": 10} {
		if got, err := ca.ParseReason(in); err != nil || got != want {
			t.Errorf("ParseReason(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"removeFromCRL", "8", "nope"} {
		if _, err := ca.ParseReason(bad); err == nil {
			t.Errorf("ParseReason(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{"0A:1B": "a1b", "0x00FF": "ff", "7f": "7f"} {
		if got, err := ca.NormalizeSerial(in); err != nil || got != want {
			t.Errorf("NormalizeSerial(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0", "xyz", strings.Repeat("f", 41)} {
		if _, err := ca.NormalizeSerial(bad); err == nil {
			t.Errorf("NormalizeSerial(%q) accepted", bad)
		}
	}
}

// patchDER replaces the SubjectPublicKeyInfo old by new inside a CSR's DER,
// fixing the enclosing lengths by re-encoding the certificationRequestInfo.
func patchDER(csrDER, old, new []byte) []byte {
	var req struct {
		Raw  asn1.RawContent
		Info struct {
			Raw       asn1.RawContent
			Version   int
			Subject   asn1.RawValue
			PublicKey asn1.RawValue
			Attrs     asn1.RawValue `asn1:"optional,tag:0"`
		}
		Alg asn1.RawValue
		Sig asn1.BitString
	}
	if _, err := asn1.Unmarshal(csrDER, &req); err != nil {
		panic(err)
	}
	if !bytes.Equal(req.Info.PublicKey.FullBytes, old) {
		panic("public key not found")
	}
	info, err := asn1.Marshal(struct {
		Version   int
		Subject   asn1.RawValue
		PublicKey asn1.RawValue
		Attrs     asn1.RawValue `asn1:"optional,tag:0"`
	}{req.Info.Version, req.Info.Subject, asn1.RawValue{FullBytes: new}, req.Info.Attrs})
	if err != nil {
		panic(err)
	}
	out, err := asn1.Marshal(struct {
		Info asn1.RawValue
		Alg  asn1.RawValue
		Sig  asn1.BitString
	}{asn1.RawValue{FullBytes: info}, req.Alg, req.Sig})
	if err != nil {
		panic(err)
	}
	return out
}

// TestNewSerial checks the serial layout: always 16 octets and positive,
// the issuance millisecond in front (so serials sort by time), 80 bits of
// randomness behind it.
func TestNewSerial(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	var prev *big.Int
	for i := range 1000 {
		now := t0.Add(time.Duration(i/10) * time.Millisecond)
		s, err := ca.NewSerial(now, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b := s.Bytes()
		if len(b) != 16 || b[0]>>6 != 1 {
			t.Fatalf("serial %x: want 16 octets starting with the bits 01", b)
		}
		if ms := new(big.Int).Rsh(s, 80).Int64() &^ (1 << 46); ms != now.UnixMilli() {
			t.Fatalf("serial %x carries millisecond %d, want %d", b, ms, now.UnixMilli())
		}
		if i%10 == 0 && prev != nil && s.Cmp(prev) <= 0 {
			t.Fatalf("serial %x of a later millisecond sorts before %x", b, prev.Bytes())
		}
		if seen[s.String()] {
			t.Fatalf("serial %x repeated", b)
		}
		seen[s.String()], prev = true, s
	}
	if _, err := ca.NewSerial(t0, bytes.NewReader(make([]byte, 9))); err == nil {
		t.Error("NewSerial accepted 72 bits of randomness")
	}
}

// TestAPIClientRules: api/client certificates are an administrator's to
// issue, for 30 days unless the operator's bound (Options.MaxValidity,
// the data directory's api_client_days) says otherwise.
func TestAPIClientRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	csr := csrFor(t, p256(t), pkix.Name{CommonName: "csms-backend"})
	if _, err := e.svc.Issue(ctx, ca.Request{Profile: policies.APIClient, CSR: csr, Tenant: "cpo1"}); err == nil {
		t.Fatal("a tenant's own api/client request was issued")
	}
	iss, err := e.svc.Issue(ctx, ca.Request{Profile: policies.APIClient, CSR: csr, Tenant: "cpo1", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := iss.Cert().NotAfter.Sub(iss.Cert().NotBefore); d != 30*24*time.Hour {
		t.Errorf("default lifetime %v, want 30 days", d)
	}
	if _, err := e.svc.Issue(ctx, ca.Request{Profile: policies.APIClient, CSR: csr, Tenant: "cpo1", Admin: true, Validity: policies.Period{Days: 31}}); err == nil {
		t.Error("31 days issued over the 30-day bound")
	}
	svc, err := ca.New(ctx, ca.Options{Store: e.st, DataDir: e.dir, MaxValidity: map[string]policies.Period{policies.APIClient: {Days: 7}}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	iss, err = svc.Issue(ctx, ca.Request{Profile: policies.APIClient, CSR: csr, Tenant: "cpo1", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := iss.Cert().NotAfter.Sub(iss.Cert().NotBefore); d != 7*24*time.Hour {
		t.Errorf("bounded lifetime %v, want 7 days", d)
	}
}

// TestParseCSRCertificate: a certificate chain where a CSR belongs is
// named for what it is, not as data after the CSR.
func TestParseCSRCertificate(t *testing.T) {
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}})
	_, err := ca.ParseCSR(append(append([]byte{}, cert...), cert...))
	if ca.CodeOf(err) != ca.CodeCSRMalformed || !strings.Contains(err.Error(), "certificate, not a CSR") {
		t.Errorf("ParseCSR(certificate chain) = %v", err)
	}
}
