package est

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/testcerts/openssltest"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/testcerts"
)

type estEnv struct {
	srv   *httptest.Server
	token string
	other string // a token of another CPO
	dir   string
	d     *datadir.Dir
}

func newEnv(t *testing.T) *estEnv { return newEnvWith(t, datadir.InitConfig{Organization: "Test"}) }

func newEnvWith(t *testing.T, cfg datadir.InitConfig) *estEnv {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIP: openssl not installed (.ci/run installs it)")
	}
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*policies.Tenant{
		{Name: "cpo1", Kind: policies.TenantCPO, OperatorIDs: []string{"DEABC"}},
		{Name: "cpo2", Kind: policies.TenantCPO, OperatorIDs: []string{"DEXYZ"}},
	} {
		if err := d.Store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{CA: d.CA, Store: d.Store, Verify: func(tok string) (*auth.Claims, error) { return key.Verify(tok, time.Now()) }}
	r := chi.NewRouter()
	s.Mount(r, DefaultPrefix)
	s.Mount(r, "/est") // a deployed client's base path
	s.MountOPNC(r, "/opnc/v1/pki")
	srv := httptest.NewUnstartedServer(r)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tok, _ := key.Mint("csms", "cpo1", auth.RoleOperator, time.Hour, time.Now())
	other, _ := key.Mint("csms2", "cpo2", auth.RoleOperator, time.Hour, time.Now())
	return &estEnv{srv: srv, token: tok, other: other, dir: t.TempDir(), d: d}
}

// certsOf parses a base64 PKCS#7 answer with openssl, as a client would.
func (e *estEnv) certsOf(t *testing.T, body []byte) []*x509.Certificate {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
	if err != nil {
		t.Fatalf("not base64: %v", err)
	}
	f := filepath.Join(e.dir, "resp.p7")
	os.WriteFile(f, der, 0o644)
	out, err := exec.Command("openssl", "pkcs7", "-inform", "DER", "-in", f, "-print_certs").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs7: %v\n%s", err, out)
	}
	var certs []*x509.Certificate
	rest := out
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	return certs
}

func (e *estEnv) do(t *testing.T, method, path, token, ctype string, body []byte, client *http.Client) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(string(body)))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if client == nil {
		client = e.srv.Client()
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func csr(t *testing.T, k *ecdsa.PrivateKey, cn string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return b64(der)
}

// b64 is an EST body: base64 DER.
func b64(der []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(der)) }

func TestEST(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/.well-known/est/cpo/cacerts", "/.well-known/est/cpo/cacerts/ISO15118-2",
		"/.well-known/est/cpo/cacerts/ISO15118-2/secp256r1/", "/est/cpo/cacerts"} {
		status, body := e.do(t, "GET", path, "", "", nil, nil)
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		certs := e.certsOf(t, body)
		if len(certs) != 3 || certs[0].Subject.CommonName != "CPO Sub-CA 2" || !certs[2].IsCA {
			t.Errorf("%s: %d certificates", path, len(certs))
		}
	}
	// Enrollment of a SECC leaf with the CSMS's token.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	status, body := e.do(t, "POST", "/.well-known/est/cpo/simpleenroll/ISO15118-2", e.token, "application/pkcs10", csr(t, k, "DE*ABC*E1"), nil)
	if status != 200 {
		t.Fatalf("simpleenroll: %d %s", status, body)
	}
	leaf := e.certsOf(t, body)[0]
	p, _ := policies.Lookup(policies.ISO2SECC)
	if vs := p.Check(leaf, policies.SECCBoth); len(vs) > 0 || leaf.Subject.CommonName != "DE*ABC*E1" {
		t.Errorf("enrolled certificate: %v", vs)
	}

	// Re-enrollment authenticated by that certificate.
	withCert := func(cert *x509.Certificate, key *ecdsa.PrivateKey) *http.Client {
		tr := e.srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}
		return &http.Client{Transport: tr}
	}
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	status, body = e.do(t, "POST", "/.well-known/est/cpo/simplereenroll/ISO15118-2", "", "application/pkcs10", csr(t, k2, "DE*ABC*E1"), withCert(leaf, k))
	if status != 200 {
		t.Fatalf("simplereenroll: %d %s", status, body)
	}
	if renewed := e.certsOf(t, body)[0]; renewed.SerialNumber.Cmp(leaf.SerialNumber) == 0 || renewed.Subject.CommonName != "DE*ABC*E1" {
		t.Errorf("re-enrolled certificate %v", renewed.Subject)
	}

	k521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	big := make([]byte, MaxBody+10)
	for i := range big {
		big[i] = 'A'
	}
	for _, tc := range []struct {
		name, path, token, ctype string
		body                     []byte
		client                   *http.Client
		want                     int
	}{
		{"no credentials", "/.well-known/est/cpo/simpleenroll/ISO15118-2", "", "application/pkcs10", []byte("AAAA"), nil, 401},
		{"bad token", "/.well-known/est/cpo/simpleenroll", "garbage", "application/pkcs10", csr(t, k, "DE*ABC*E1"), nil, 401},
		{"wrong content type", "/.well-known/est/cpo/simpleenroll", e.token, "application/json", csr(t, k, "DE*ABC*E1"), nil, 415},
		{"bad base64", "/.well-known/est/cpo/simpleenroll", e.token, "application/pkcs10", []byte("%%%"), nil, 400},
		{"not a CSR", "/.well-known/est/cpo/simpleenroll", e.token, "application/pkcs10", []byte("AAAA"), nil, 400},
		{"another CPO's EVSEID", "/.well-known/est/cpo/simpleenroll", e.token, "application/pkcs10", csr(t, k, "DE*XYZ*E1"), nil, 403},
		{"oversize", "/.well-known/est/cpo/simpleenroll", e.token, "application/pkcs10", big, nil, 413},
		{"unknown CA label", "/.well-known/est/xyz/simpleenroll", e.token, "application/pkcs10", csr(t, k, "DE*ABC*E1"), nil, 404},
		{"ISO 15118-20 without -20 CAs", "/.well-known/est/cpo/simpleenroll/ISO15118-20", e.token, "application/pkcs10", csr(t, k521, "DE*ABC*E1"), nil, 400}, // issuer.unknown
		{"reenroll without a certificate", "/.well-known/est/cpo/simplereenroll", e.token, "application/pkcs10", csr(t, k, "DE*ABC*E1"), nil, 401},
		{"reenroll with another subject", "/.well-known/est/cpo/simplereenroll", "", "application/pkcs10", csr(t, k2, "DE*ABC*E2"), withCert(leaf, k), 400},
	} {
		if status, body := e.do(t, "POST", tc.path, tc.token, tc.ctype, tc.body, tc.client); status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
		}
	}
	// A refusal is text, as RFC 7030 has it, and names its stable code in
	// a header too.
	res, err := e.srv.Client().Post(e.srv.URL+"/.well-known/est/cpo/simpleenroll/ISO15118-2", "application/pkcs10", strings.NewReader("AAAA"))
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if code := res.Header.Get(ErrorHeader); !strings.Contains(code, ".") || !strings.HasPrefix(string(text), code+": ") || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("EST refusal: %s %q %q", res.Header.Get("Content-Type"), res.Header.Get(ErrorHeader), text)
	}
}

// TestEST20: with the ISO 15118-20 CAs, the ISO15118-20 paths and OPNC's
// iso15118Version=ISO15118-20 (secp521r1) enroll -20 SECC leaves from
// P-521 CSRs, and algorithm=ed448 Ed448 ones from openssl's Ed448 CSRs; a
// key of the other variant, or a P-256 key, is refused.
func TestEST20(t *testing.T) {
	e := newEnvWith(t, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE", ISO20: true})
	for _, path := range []string{"/.well-known/est/cpo/cacerts/ISO15118-20", "/.well-known/est/cpo/cacerts/ISO15118-20/secp521r1",
		"/opnc/v1/pki/est/cacerts?caDomain=cpo&iso15118Version=ISO15118-20&algorithm=secp521r1"} {
		status, body := e.do(t, "GET", path, "", "", nil, nil)
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		if certs := e.certsOf(t, body); len(certs) != 3 || certs[0].Subject.CommonName != "CPO Sub-CA 2 20" {
			t.Errorf("%s: %d certificates", path, len(certs))
		}
	}
	p, _ := policies.Lookup(policies.ISO20SECC)
	if status, body := e.do(t, "GET", "/.well-known/est/cpo/cacerts/ISO15118-2/secp521r1", "", "", nil, nil); status != 404 {
		t.Errorf("ISO15118-2 with secp521r1: %d %s", status, body)
	}
	for i, path := range []string{"/.well-known/est/cpo/simpleenroll/ISO15118-20",
		"/opnc/v1/pki/est/simpleenroll?caDomain=cpo&iso15118Version=ISO15118-20&algorithm=secp521r1"} {
		k, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		cn := fmt.Sprintf("DE*ABC*E2%d", i)
		status, body := e.do(t, "POST", path, e.token, "application/pkcs10", csr(t, k, cn), nil)
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		if leaf := e.certsOf(t, body)[0]; leaf.Subject.CommonName != cn || len(p.Check(leaf, policies.SECCBoth)) > 0 || leaf.SignatureAlgorithm != x509.ECDSAWithSHA512 {
			t.Errorf("%s: %v %v", path, leaf.Subject, p.Check(leaf, policies.SECCBoth))
		}
	}
	// The Ed448 variant, from a CSR openssl makes.
	edP, _ := policies.Lookup(policies.ISO20EdSECC)
	status, body := e.do(t, "POST", "/opnc/v1/pki/est/simpleenroll?caDomain=cpo&iso15118Version=ISO15118-20&algorithm=ed448", e.token,
		"application/pkcs10", b64(openssltest.CSR(t, "ed448", "/CN=DE*ABC*E30")), nil)
	if status != 200 {
		t.Fatalf("Ed448 enrollment: %d %s", status, body)
	}
	if leaf := e.certsOf(t, body)[0]; leaf.Subject.CommonName != "DE*ABC*E30" || len(edP.Check(leaf, policies.SECCBoth)) > 0 || !ed448x509.SignedWithEd448(leaf) {
		t.Errorf("Ed448 enrollment: %v %v", leaf.Subject, edP.Check(leaf, policies.SECCBoth))
	}
	if status, body := e.do(t, "GET", "/opnc/v1/pki/est/cacerts?caDomain=cpo&iso15118Version=ISO15118-20&algorithm=ed448", "", "", nil, nil); status != 200 ||
		e.certsOf(t, body)[0].Subject.CommonName != "CPO Sub-CA 2 20 Ed448" {
		t.Errorf("Ed448 cacerts: %d %s", status, body)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	for _, tc := range []struct {
		name, path string
		body       []byte
		want       int
	}{
		{"a P-521 key for Ed448", "/opnc/v1/pki/est/simpleenroll?caDomain=cpo&iso15118Version=ISO15118-20&algorithm=ed448", csr(t, p521, "DE*ABC*E31"), 400},
		{"an Ed448 key for secp521r1", "/opnc/v1/pki/est/simpleenroll?caDomain=cpo&iso15118Version=ISO15118-20&algorithm=secp521r1",
			b64(openssltest.CSR(t, "ed448", "/CN=DE*ABC*E33")), 400},
		{"a P-256 key for -20", "/.well-known/est/cpo/simpleenroll/ISO15118-20", csr(t, p256, "DE*ABC*E32"), 400},
	} {
		if status, body := e.do(t, "POST", tc.path, e.token, "application/pkcs10", tc.body, nil); status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
		}
	}
}

// TestOPNC: the OPNC PKI API shapes: EST with the CA domain in the query,
// and revokeCertificate with its request body checked against OPNC's
// OpenAPI document.
func TestOPNC(t *testing.T) {
	e := newEnv(t)
	status, body := e.do(t, "GET", "/opnc/v1/pki/est/cacerts?caDomain=cpo&iso15118Version=ISO15118-2", "", "", nil, nil)
	if status != 200 || len(e.certsOf(t, body)) != 3 {
		t.Fatalf("OPNC cacerts: %d %s", status, body)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	status, body = e.do(t, "POST", "/opnc/v1/pki/est/simpleenroll?caDomain=cpo&iso15118Version=ISO15118-2", e.token, "application/pkcs10", csr(t, k, "DE*ABC*E1"), nil)
	if status != 200 {
		t.Fatalf("OPNC simpleenroll: %d %s", status, body)
	}
	leaf := e.certsOf(t, body)[0]
	if status, _ := e.do(t, "POST", "/opnc/v1/pki/est/simpleenroll?caDomain=veh", e.token, "application/pkcs10", csr(t, k, "DE*ABC*E1"), nil); status != 404 {
		t.Errorf("caDomain veh: %d", status)
	}

	sch := opncSchema(t, "pki.api.consolidated.v1.json", "revokeCertificateReq.v1")
	req := func(reason string) []byte {
		b, _ := json.Marshal(map[string]string{"certificate": base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})),
			"revocationReason": reason})
		return b
	}
	inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(string(req("keyCompromise"))))
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("our request body does not fit OPNC's schema: %v", err)
	}
	for _, tc := range []struct {
		name, token string
		body        []byte
		want        int
	}{
		{"no credentials", "", req("keyCompromise"), 401},
		{"another CPO's certificate", e.other, req("keyCompromise"), 403},
		{"not an OPNC reason", e.token, req("certificateHold"), 400},
		{"not JSON", e.token, []byte("{"), 400},
		{"unknown field", e.token, []byte(`{"certificate":"x","revocationReason":"unspecified","extra":1}`), 400},
		{"not base64", e.token, []byte(`{"certificate":"%%%","revocationReason":"unspecified"}`), 400},
		{"revoked", e.token, req("keyCompromise"), 200},
		{"revoked twice", e.token, req("keyCompromise"), 400},
	} {
		status, body := e.do(t, "POST", "/opnc/v1/pki/pki/revokeCertificate", tc.token, "application/json", tc.body, nil)
		if status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
		}
		// Refusals in OPNC's error shape, as the rest of OPNC answers.
		var oe struct {
			Messages []string `json:"errorMessages"`
			TraceID  string   `json:"traceId"`
		}
		if status != 200 && (json.Unmarshal(body, &oe) != nil || len(oe.Messages) != 1 || oe.TraceID == "") {
			t.Errorf("%s: not {errorMessages, traceId}: %s", tc.name, body)
		}
	}
	rec, err := e.d.Store.Certificate(context.Background(), "cpo-sub2", ca.SerialHex(leaf.SerialNumber))
	if err != nil || !rec.Revoked() || rec.Reason != 1 {
		t.Errorf("stored record after revokeCertificate: revoked %v reason %d, %v", rec.Revoked(), rec.Reason, err)
	}
}

// opncSchema compiles one component schema of an OPNC OpenAPI document
// from ../shared/spec (never copied into the repository).
func opncSchema(t *testing.T, file, name string) *jsonschema.Schema {
	t.Helper()
	dir := os.Getenv("PNCPKI_SPEC")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "spec")
	}
	data, err := os.ReadFile(filepath.Join(dir, "opnc", "consolidated", file))
	if err != nil {
		t.Skipf("SKIP: OPNC OpenAPI documents not found (set PNCPKI_SPEC): %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///"+file, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("file:///" + file + "#/components/schemas/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// FuzzParsePKCS7: a PKCS#7 from an upstream either parses into
// certificates that encode back to the same bytes, or is refused.
func FuzzParsePKCS7(f *testing.F) {
	pki, err := testcerts.Generate(1, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	good, _ := PKCS7(append([]*x509.Certificate{pki.Get("secc").Cert}, pki.Chain("secc")...))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		certs, err := ParsePKCS7(in)
		if err != nil {
			return
		}
		again, err := PKCS7(certs)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePKCS7(again)
		if err != nil || len(back) != len(certs) {
			t.Fatalf("re-encoded PKCS#7 does not parse: %v", err)
		}
	})
}

func TestParsePKCS7(t *testing.T) {
	pki, err := testcerts.Generate(1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	chain := append([]*x509.Certificate{pki.Get("secc").Cert}, pki.Chain("secc")...)
	der, err := PKCS7(chain)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePKCS7(der)
	if err != nil || len(got) != len(chain) {
		t.Fatalf("%d certificates, %v", len(got), err)
	}
	for i := range chain {
		if !got[i].Equal(chain[i]) {
			t.Errorf("certificate %d differs", i)
		}
	}
	for _, bad := range [][]byte{nil, {0x30, 0x00}, der[:len(der)-1], append(der, 0)} {
		if _, err := ParsePKCS7(bad); err == nil {
			t.Errorf("accepted %x", bad)
		}
	}
}
