package ocsp_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/testcerts"
)

type env struct {
	d    *datadir.Dir
	r    *ocsp.Responder
	srv  *httptest.Server
	url  string // base URL
	leaf *x509.Certificate
	sub2 *ca.Authority
	dir  string
}

// newEnv initialises a data directory whose certificates point at a local
// HTTP server, issues one SECC leaf and serves OCSP.
func newEnv(t testing.TB, opts ocsp.Options) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx := context.Background()
	dir := t.TempDir()
	d, err := datadir.Open(ctx, filepath.Join(dir, "data"), ca.Options{PublicURL: base})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, datadir.InitConfig{}); err != nil {
		t.Fatal(err)
	}
	opts.CA, opts.Store, opts.DataDir = d.CA, d.Store, d.Path
	r, err := ocsp.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h := r.Handler("/ocsp")
	mux.Handle("/ocsp", h)
	mux.Handle("/ocsp/", h)
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)
	e := &env{d: d, r: r, srv: srv, url: base, dir: dir}
	e.leaf = e.issue(t, "DE*ABC*E1")
	e.sub2, _ = d.CA.Authority("cpo-sub2")
	return e
}

func (e *env) issue(t testing.TB, cn string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name(cn, "", "", "")}, key)
	iss, err := e.d.CA.Issue(context.Background(), ca.Request{Profile: policies.ISO2SECC, CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})})
	if err != nil {
		t.Fatal(err)
	}
	return iss.Cert()
}

func (e *env) post(t testing.TB, der []byte, contentType string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(e.url+"/ocsp", contentType, bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func (e *env) get(t testing.TB, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(e.url + "/ocsp/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func (e *env) request(t testing.TB, h crypto.Hash, cert *x509.Certificate, nonce []byte) []byte {
	t.Helper()
	der, err := ocsp.MarshalRequest(h, e.sub2.Cert, cert.SerialNumber, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func (e *env) status(t testing.TB, cert *x509.Certificate) *xocsp.Response {
	t.Helper()
	_, body := e.post(t, e.request(t, crypto.SHA256, cert, nil), "application/ocsp-request")
	resp, err := xocsp.ParseResponseForCert(body, cert, e.sub2.Cert)
	if err != nil {
		t.Fatalf("parse response: %v", err)
	}
	return resp
}

func TestIssuedCertificatesPointHere(t *testing.T) {
	e := newEnv(t, ocsp.Options{})
	if !slices.Equal(e.leaf.OCSPServer, []string{e.url + "/ocsp"}) {
		t.Errorf("AIA OCSP = %v", e.leaf.OCSPServer)
	}
	if !slices.Equal(e.leaf.CRLDistributionPoints, []string{e.url + "/crl/cpo-sub2.crl"}) {
		t.Errorf("SECC leaf CRL DP = %v", e.leaf.CRLDistributionPoints)
	}
	if len(e.leaf.Raw) > 800 {
		t.Errorf("SECC leaf with AIA and CRL DP is %d bytes", len(e.leaf.Raw))
	}
	if !slices.Equal(e.sub2.Cert.CRLDistributionPoints, []string{e.url + "/crl/cpo-sub1.crl"}) {
		t.Errorf("CPO Sub-CA 2 CRL DP = %v", e.sub2.Cert.CRLDistributionPoints)
	}
}

func TestStatusesAndHashes(t *testing.T) {
	e := newEnv(t, ocsp.Options{})
	ctx := context.Background()
	revoked := e.issue(t, "DE*ABC*E2")
	if _, err := e.d.CA.Revoke(ctx, "", ca.SerialHex(revoked.SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	unknown := *e.leaf
	unknown.SerialNumber = new(big.Int).Add(e.leaf.SerialNumber, big.NewInt(1))
	for _, h := range ocsp.Hashes {
		for _, tt := range []struct {
			cert *x509.Certificate
			want int
		}{{e.leaf, xocsp.Good}, {revoked, xocsp.Revoked}, {&unknown, xocsp.Unknown}} {
			_, body := e.post(t, e.request(t, h, tt.cert, nil), "application/ocsp-request")
			resp, err := xocsp.ParseResponseForCert(body, tt.cert, e.sub2.Cert)
			if err != nil {
				t.Fatalf("%v: %v", h, err)
			}
			if resp.Status != tt.want || resp.IssuerHash != h {
				t.Errorf("%v: status %d hash %v, want %d", h, resp.Status, resp.IssuerHash, tt.want)
			}
			if tt.want == xocsp.Revoked && resp.RevocationReason != xocsp.KeyCompromise {
				t.Errorf("reason %d", resp.RevocationReason)
			}
			if tt.want == xocsp.Revoked && resp.ThisUpdate.Before(resp.RevokedAt.Truncate(time.Second)) {
				t.Errorf("thisUpdate %s before the revocation at %s", resp.ThisUpdate, resp.RevokedAt)
			}
			if resp.Certificate == nil || !slices.Contains(resp.Certificate.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
				t.Errorf("response not signed by a delegated OCSP responder")
			}
			if d := resp.NextUpdate.Sub(resp.ThisUpdate); d != 24*time.Hour {
				t.Errorf("validity %v", d)
			}
		}
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, ocsp.Options{})
	good := e.request(t, crypto.SHA1, e.leaf, nil)
	pki, _ := testcerts.Generate(1, time.Now())
	foreign, _ := ocsp.MarshalRequest(crypto.SHA256, pki.Get("cpo-sub2").Cert, pki.Get("secc").Cert.SerialNumber, nil)
	ocspStatus := func(body []byte) int {
		if len(body) == 5 && body[0] == 0x30 {
			return int(body[4])
		}
		return 0
	}
	for _, tt := range []struct {
		name       string
		body       []byte
		ct         string
		httpStatus int
		ocsp       int
	}{
		{"empty body", nil, "application/ocsp-request", 200, ocsp.StatusMalformedRequest},
		{"truncated DER", good[:len(good)-5], "application/ocsp-request", 200, ocsp.StatusMalformedRequest},
		{"garbage", []byte("hello"), "application/ocsp-request", 200, ocsp.StatusMalformedRequest},
		{"1 MiB body", make([]byte, 1<<20), "application/ocsp-request", 413, 0},
		{"wrong content type", good, "text/plain", 415, 0},
		{"unknown issuer", foreign, "application/ocsp-request", 200, ocsp.StatusUnauthorized},
	} {
		resp, body := e.post(t, tt.body, tt.ct)
		if resp.StatusCode != tt.httpStatus || (tt.ocsp != 0 && ocspStatus(body) != tt.ocsp) {
			t.Errorf("%s: HTTP %d body %x; want HTTP %d OCSP status %d", tt.name, resp.StatusCode, body, tt.httpStatus, tt.ocsp)
		}
	}
	for _, path := range []string{"not*base64", "", "AAAA", strings.Repeat("A", 40000)} {
		resp, body := e.get(t, path)
		if resp.StatusCode == 200 && ocspStatus(body) != ocsp.StatusMalformedRequest {
			t.Errorf("GET %.20q: %x", path, body)
		} else if resp.StatusCode != 200 && resp.StatusCode != http.StatusRequestURITooLong {
			t.Errorf("GET %.20q: HTTP %d", path, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, e.url+"/ocsp", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 {
		t.Errorf("PUT: %v %v", resp, err)
	}
}

func TestGETEncodingsAndCaching(t *testing.T) {
	e := newEnv(t, ocsp.Options{})
	der := e.request(t, crypto.SHA256, e.leaf, nil)
	std := base64.StdEncoding.EncodeToString(der)
	var etag string
	for name, path := range map[string]string{
		"percent-encoded standard": url.PathEscape(std),
		"raw standard":             std,
		"base64url":                base64.RawURLEncoding.EncodeToString(der),
	} {
		resp, body := e.get(t, path)
		r, err := xocsp.ParseResponseForCert(body, e.leaf, e.sub2.Cert)
		if err != nil || r.Status != xocsp.Good {
			t.Fatalf("%s: %v %v", name, r, err)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=60") {
			t.Errorf("%s: Cache-Control %q", name, cc)
		}
		for _, h := range []string{"Last-Modified", "Expires", "ETag"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s: no %s", name, h)
			}
		}
		if etag != "" && resp.Header.Get("ETag") != etag {
			t.Errorf("%s: cached response changed: ETag %s, was %s", name, resp.Header.Get("ETag"), etag)
		}
		etag = resp.Header.Get("ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/ocsp/"+url.PathEscape(std), nil)
	req.Header.Set("If-None-Match", etag)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %v %v", resp, err)
	}
	// A nonce is echoed and the answer is not cached.
	nonce := []byte("0123456789abcdef")
	resp, body := e.post(t, e.request(t, crypto.SHA256, e.leaf, nonce), "application/ocsp-request")
	if resp.Header.Get("Cache-Control") != "no-store" || !bytes.Contains(body, nonce) {
		t.Errorf("nonce response: Cache-Control %q, nonce echoed %v", resp.Header.Get("Cache-Control"), bytes.Contains(body, nonce))
	}
}

// TestRevocationBound: a revocation made elsewhere (another process, straight
// into the store) shows once StatusTTL has passed, without any signal.
func TestRevocationBound(t *testing.T) {
	e := newEnv(t, ocsp.Options{StatusTTL: 100 * time.Millisecond})
	if s := e.status(t, e.leaf).Status; s != xocsp.Good {
		t.Fatalf("status %d", s)
	}
	if _, err := e.d.Store.Revoke(context.Background(), "cpo-sub2", ca.SerialHex(e.leaf.SerialNumber), 4, time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.status(t, e.leaf).Status != xocsp.Revoked {
		if time.Now().After(deadline) {
			t.Fatal("revocation not visible after 10 s with StatusTTL 100 ms")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Invalidate makes it immediate.
	other := e.issue(t, "DE*ABC*E3")
	e.status(t, other)
	if _, err := e.d.Store.Revoke(context.Background(), "cpo-sub2", ca.SerialHex(other.SerialNumber), 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.r.Invalidate("cpo-sub2", ca.SerialHex(other.SerialNumber))
	if s := e.status(t, other).Status; s != xocsp.Revoked {
		t.Errorf("after Invalidate: status %d", s)
	}
}

func TestDelegatedSignerLifecycle(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t, ocsp.Options{Now: clock})
	first := e.status(t, e.leaf).Certificate
	if first == nil {
		t.Fatal("no responder certificate in the response")
	}
	keys, _ := filepath.Glob(filepath.Join(e.d.Path, "ocsp", "cpo-sub2-*.key"))
	if len(keys) != 1 {
		t.Fatalf("responder keys: %v", keys)
	}
	if fi, _ := os.Stat(keys[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("responder key mode %v", fi.Mode().Perm())
	}
	// A restart reuses it.
	r2, err := ocsp.New(context.Background(), ocsp.Options{CA: e.d.CA, Store: e.d.Store, DataDir: e.d.Path, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ans, err := r2.Respond(context.Background(), mustParse(t, e.request(t, crypto.SHA256, e.leaf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := xocsp.ParseResponse(ans.DER, e.sub2.Cert); r == nil || !bytes.Equal(r.Certificate.Raw, first.Raw) {
		t.Error("restart issued a new responder certificate")
	}
	// Two thirds into its 30 days it is rotated.
	now = now.Add(21 * 24 * time.Hour)
	if err := e.r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.r.Invalidate("cpo-sub2", ca.SerialHex(e.leaf.SerialNumber))
	rotated := e.status(t, e.leaf).Certificate
	if rotated == nil || bytes.Equal(rotated.Raw, first.Raw) {
		t.Error("responder certificate not rotated")
	}
}

func TestCAKeySigns(t *testing.T) {
	e := newEnv(t, ocsp.Options{UseCAKey: true})
	r := e.status(t, e.leaf)
	if r.Certificate != nil || r.Status != xocsp.Good {
		t.Errorf("UseCAKey response carries certificate %v, status %d", r.Certificate, r.Status)
	}
	if err := r.CheckSignatureFrom(e.sub2.Cert); err != nil {
		t.Errorf("not signed by the CA key: %v", err)
	}
}

func mustParse(t testing.TB, der []byte) *ocsp.Request {
	t.Helper()
	r, err := ocsp.ParseRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOpenSSLInterop: openssl ocsp as the client, POST with a nonce and
// GET without, good then revoked, verifying against the chain.
func TestOpenSSLInterop(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed: skipping interop test (.ci/run installs it)")
	}
	e := newEnv(t, ocsp.Options{})
	dir := t.TempDir()
	write := func(name string, certs ...*x509.Certificate) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, datadir.EncodePEM(certs...), 0o644)
		return p
	}
	leaf, issuer := write("leaf.pem", e.leaf), write("issuer.pem", e.sub2.Cert)
	chain := write("chain.pem", e.sub2.Chain...)
	run := func(args ...string) string {
		out, err := exec.Command("openssl", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	check := func(out, want string) {
		t.Helper()
		if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, leaf+": "+want) {
			t.Errorf("want %s, verified:\n%s", want, out)
		}
	}
	// POST, with openssl's default nonce.
	check(run("ocsp", "-issuer", issuer, "-cert", leaf, "-url", e.url+"/ocsp", "-CAfile", chain, "-resp_text"), "good")
	// GET: openssl builds the request, Go fetches it, openssl verifies.
	reqFile, respFile := filepath.Join(dir, "req.der"), filepath.Join(dir, "resp.der")
	run("ocsp", "-issuer", issuer, "-cert", leaf, "-no_nonce", "-reqout", reqFile)
	get := func() {
		der, _ := os.ReadFile(reqFile)
		_, body := e.get(t, url.PathEscape(base64.StdEncoding.EncodeToString(der)))
		os.WriteFile(respFile, body, 0o644)
	}
	get()
	check(run("ocsp", "-issuer", issuer, "-cert", leaf, "-respin", respFile, "-CAfile", chain, "-resp_text"), "good")

	if _, err := e.d.CA.Revoke(context.Background(), "", ca.SerialHex(e.leaf.SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	e.r.Invalidate("cpo-sub2", ca.SerialHex(e.leaf.SerialNumber))
	out := run("ocsp", "-issuer", issuer, "-cert", leaf, "-url", e.url+"/ocsp", "-CAfile", chain, "-resp_text")
	check(out, "revoked")
	if !strings.Contains(out, "Reason: keyCompromise") {
		t.Errorf("revocation reason missing:\n%s", out)
	}
	get()
	check(run("ocsp", "-issuer", issuer, "-cert", leaf, "-respin", respFile, "-CAfile", chain, "-resp_text"), "revoked")
}

// TestRevocationFeed: a revocation written by another process reaches a
// responder through the store's feed, without Redis, though its cached
// status would be trusted for an hour.
func TestRevocationFeed(t *testing.T) {
	e := newEnv(t, ocsp.Options{StatusTTL: time.Hour, RevocationPoll: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if s := e.status(t, e.leaf).Status; s != xocsp.Good {
		t.Fatalf("status %d", s)
	}
	go e.r.Run(ctx)
	if _, err := e.d.Store.Revoke(ctx, "cpo-sub2", ca.SerialHex(e.leaf.SerialNumber), 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for e.status(t, e.leaf).Status != xocsp.Revoked {
		if time.Since(start) > 10*time.Second {
			t.Fatal("revocation not applied from the feed within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revocation visible after %v (poll every 50 ms)", time.Since(start))
}

func TestValidityByProfile(t *testing.T) {
	e := newEnv(t, ocsp.Options{ValidityByProfile: map[string]time.Duration{policies.ISO2SECC: 4 * time.Hour}})
	r := e.status(t, e.leaf)
	if d := r.NextUpdate.Sub(r.ThisUpdate); d != 4*time.Hour {
		t.Errorf("SECC response valid %v, want 4h", d)
	}
}
