package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	xocsp "golang.org/x/crypto/ocsp"
	"testing"
	"time"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/api/est"
	"github.com/pncpki/pncpki/api/oauth"
	"github.com/pncpki/pncpki/api/opnc"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts/zlinttest"
)

// newDir is an initialised data directory with its OCSP responder.
func newDir(t *testing.T) (*datadir.Dir, *ocsp.Responder, *prometheus.Registry) {
	t.Helper()
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, datadir.InitConfig{}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	resp, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return d, resp, reg
}

func TestServeHealthAndCRL(t *testing.T) {
	ctx := context.Background()
	d, resp, reg := newDir(t)
	tokenKey, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	apiHandler, err := (&api.Server{CA: d.CA, Store: d.Store, Key: tokenKey, OCSP: resp, Metrics: api.NewMetrics(reg)}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(newHandler(d, resp, apiHandler, nil, reg, slog.New(slog.DiscardHandler), nil))
	defer srv.Close()
	c := srv.Client()

	get := func(path string, wantStatus int) []byte {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("GET %s = %d %s, want %d", path, resp.StatusCode, body, wantStatus)
		}
		return body
	}
	var health map[string]string
	if body := get("/healthz", 200); json.Unmarshal(body, &health) != nil || health["status"] != "ok" || health["version"] == "" {
		t.Errorf("healthz = %q", body)
	}
	if body := get("/readyz", 200); string(body) != "{\"status\":\"ready\"}\n" {
		t.Errorf("readyz = %q", body)
	}
	crlAt := func() *x509.RevocationList {
		t.Helper()
		crl, err := x509.ParseRevocationList(get("/crl/cpo-sub2.crl", 200))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := d.CA.Authority("cpo-sub2")
		if err := crl.CheckSignatureFrom(a.Cert); err != nil {
			t.Fatal(err)
		}
		return crl
	}
	first := crlAt()
	if again := crlAt(); again.Number.Cmp(first.Number) != 0 {
		t.Errorf("unchanged CRL re-signed: number %v then %v", first.Number, again.Number)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name("DE*ABC*E1", "", "", "")}, key)
	iss, err := d.CA.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CA.Revoke(ctx, "", ca.SerialHex(iss.Cert().SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	after := crlAt()
	if after.Number.Cmp(first.Number) <= 0 || len(after.RevokedCertificateEntries) != 1 ||
		after.RevokedCertificateEntries[0].SerialNumber.Cmp(iss.Cert().SerialNumber) != 0 {
		t.Errorf("CRL after revocation: number %v, entries %v", after.Number, after.RevokedCertificateEntries)
	}

	var e map[string]any
	if err := json.Unmarshal(get("/crl/nope.crl", 404), &e); err != nil || e["code"] != ca.CodeIssuerUnknown || e["details"] == nil {
		t.Errorf("unknown issuer: %v %v", e, err)
	}
	get("/crl/..%2f..%2fetc.crl", 404)
	// The API answers on the same router: an admin token lists the CAs.
	admin, _ := tokenKey.Mint("t", "", auth.RoleAdmin, time.Hour, time.Now())
	areq, _ := http.NewRequest("GET", srv.URL+"/v1/authorities", nil)
	areq.Header.Set("Authorization", "Bearer "+admin)
	if aresp, err := c.Do(areq); err != nil || aresp.StatusCode != 200 {
		t.Errorf("GET /v1/authorities: %v %v", aresp, err)
	} else {
		aresp.Body.Close()
	}
	// Every API service is routed for gRPC/Connect too, with a request ID.
	for _, svc := range []string{"CertificateService/ListCertificates", "StationService/ListStations", "OCPPService/HandleRequest", "AuditService/ListAudit"} {
		req, _ := http.NewRequest("POST", srv.URL+"/pncpki.v1."+svc, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Connect-Protocol-Version", "1")
		req.Header.Set("X-Request-ID", "trace-42")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Request-ID") != "trace-42" {
			t.Errorf("%s without a token: %d, request ID %q; want 401 from the API", svc, resp.StatusCode, resp.Header.Get("X-Request-ID"))
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/authorities", nil)
	req.Header.Set("X-Request-ID", "not a plain id; "+strings.Repeat("x", 80))
	if resp, err := c.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); len(resp.Header.Get("X-Request-ID")) != 16 {
		t.Errorf("a new request ID replaces an odd one: %q", resp.Header.Get("X-Request-ID"))
	}
	// OCSP and metrics share the router.
	a, _ := d.CA.Authority("cpo-sub2")
	der, err := ocsp.MarshalRequest(crypto.SHA256, a.Cert, iss.Cert().SerialNumber, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp2, err := c.Post(srv.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	parsed, err := xocsp.ParseResponseForCert(body, iss.Cert(), a.Cert)
	if err != nil || parsed.Status != xocsp.Revoked {
		t.Errorf("OCSP via pncd: %+v, %v", parsed, err)
	}
	if m := get("/metrics", 200); !bytes.Contains(m, []byte(`pncpki_ocsp_responses_total{result="revoked"} 1`)) ||
		!bytes.Contains(m, []byte(`pncpki_api_auth_failures_total{reason="unauthenticated"} 5`)) {
		t.Errorf("metrics lack the OCSP answer or the refused API calls:\n%s", m)
	}
	get("/crl/cpo-sub2.pem", 404)
	post, err := c.Post(srv.URL+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d", post.StatusCode)
	}
}

func TestFirstStartAdminToken(t *testing.T) {
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	created, err := auth.LoadOrCreateKey(d.Path, auth.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAdminToken(ctx, d, created, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.Path, AdminTokenFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	tok, _ := os.ReadFile(path)
	key, _ := auth.LoadOrCreateKey(d.Path)
	if c, err := key.Verify(strings.TrimSpace(string(tok)), time.Now()); err != nil || c.Role != auth.RoleAdmin || key.Algorithm() != "EdDSA" {
		t.Errorf("first-start token: %+v %v", c, err)
	}
}

// TestReadyzRedis: with Redis configured, /readyz answers 503 when it is
// gone.
func TestReadyzRedis(t *testing.T) {
	url := os.Getenv("PNCPKI_TEST_REDIS")
	if url == "" {
		t.Skip("SKIP: PNCPKI_TEST_REDIS not set (a Redis URL); .ci/run sets it")
	}
	d, resp, reg := newDir(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		want int
	}{{opt.Addr, 200}, {"127.0.0.1:1", 503}} {
		o := *opt
		o.Addr = tc.addr
		rdb := redis.NewClient(&o)
		srv := httptest.NewServer(newHandler(d, resp, http.NotFoundHandler(), rdb, reg, slog.New(slog.DiscardHandler), nil))
		r, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != tc.want {
			t.Errorf("Redis at %s: readyz %d, want %d", tc.addr, r.StatusCode, tc.want)
		}
		srv.Close()
		rdb.Close()
	}
}

// TestFirstStartLongOrganization: pncd's first start with an organization
// of 64 characters, a country and a public https URL creates its
// hierarchy and the OCSP responders of every CA, and every certificate it
// issued for itself fits its profile (pncpki's linter and zlint).
func TestFirstStartLongOrganization(t *testing.T) {
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{PublicURL: "https://pki.stadtwerke-musterstadt.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	org := strings.Repeat("Stadtwerke Musterstadt Energie GmbH ", 2)[:64]
	if err := d.Init(ctx, datadir.InitConfig{Organization: org, Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path, Registerer: prometheus.NewRegistry()}); err != nil {
		t.Fatal(err)
	}
	certs, err := d.Store.Certificates(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	responders := 0
	for _, rec := range certs {
		c, err := x509.ParseCertificate(rec.DER)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policies.Lookup(rec.Profile)
		if err != nil {
			t.Fatal(err)
		}
		if vs := p.Check(c, policies.SECCBoth); len(vs) > 0 {
			t.Errorf("%s %q: %v", rec.Profile, c.Subject.CommonName, vs)
		}
		findings, err := zlinttest.Findings(rec.DER)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range findings {
			// An https CRL distribution point is the operator's choice of
			// public URL, which pncpki warns of (datadir.HTTPSWarning).
			if !strings.HasPrefix(f, "w_distribution_point_missing_ldap_or_uri:") {
				t.Errorf("%s %q: zlint %s", rec.Profile, c.Subject.CommonName, f)
			}
		}
		if rec.Profile == policies.OCSPResponder {
			responders++
		}
	}
	if want := len(d.CA.Authorities()); responders != want {
		t.Errorf("%d OCSP responder certificates, want one for each of %d CAs", responders, want)
	}
}

// TestOneBudgetAcrossDoors: once a tenant spent its API budget on /v1,
// EST and the Open Plug&Charge interfaces refuse it too (429), as pncd
// mounts them; another tenant is not affected.
func TestOneBudgetAcrossDoors(t *testing.T) {
	ctx := context.Background()
	d, resp, reg := newDir(t)
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
	apiServer := &api.Server{CA: d.CA, Store: d.Store, Key: key, OCSP: resp, Metrics: api.NewMetrics(reg),
		RateLimit: api.RateLimit{Requests: 3, Window: time.Hour}}
	apiHandler, err := apiServer.Handler()
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("pncd", flag.ContinueOnError)
	st := defineFlags(fs)
	mount := st.mounts(apiServer, &est.Server{CA: d.CA, Store: d.Store, Verify: apiServer.VerifyToken},
		&opnc.Server{Verify: apiServer.VerifyToken, Anchors: func() ocppsec.Anchors { return nil }}, &oauth.Server{Store: d.Store, Key: key}, nil)
	srv := httptest.NewTLSServer(newHandler(d, resp, apiHandler, nil, reg, slog.New(slog.DiscardHandler), mount))
	defer srv.Close()
	tok := map[string]string{}
	for _, tn := range []string{"cpo1", "cpo2"} {
		tok[tn], _ = key.Mint(tn, tn, auth.RoleOperator, time.Hour, time.Now())
	}
	get := func(tenant, path string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok[tenant])
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 3 {
		if s := get("cpo1", "/v1/authorities"); s != 200 {
			t.Fatalf("API call %d: HTTP %d", i+1, s)
		}
	}
	for _, path := range []string{"/.well-known/est/cpo/cacerts", "/opnc/v1/rcp/rootcertificates", "/opcp/v1/root/rootCerts"} {
		if s := get("cpo1", path); s != 429 {
			t.Errorf("%s after the budget is spent: HTTP %d, want 429", path, s)
		}
		if s := get("cpo2", path); s == 429 {
			t.Errorf("%s of another tenant: 429", path)
		}
	}
}

// TestHeadersTooLarge: oversized headers get 431 in pncd's JSON error
// shape, not net/http's plain text.
func TestHeadersTooLarge(t *testing.T) {
	d, resp, reg := newDir(t)
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	apiHandler, err := (&api.Server{CA: d.CA, Store: d.Store, Key: key, OCSP: resp, Metrics: api.NewMetrics(reg)}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(newHandler(d, resp, apiHandler, nil, reg, slog.New(slog.DiscardHandler), nil))
	srv.Config.MaxHeaderBytes = serverMaxHeaderBytes
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/authorities", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", MaxHeaderBytes))
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if res.StatusCode != 431 || json.NewDecoder(res.Body).Decode(&out) != nil || out["code"] != "request.headers_too_large" {
		t.Fatalf("HTTP %d %v", res.StatusCode, out)
	}
}
