package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/api/gen/pncpki/v1/pncpkiv1connect"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/internal/redistest"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/postgres/pgtest"
	"github.com/pncpki/pncpki/testcerts"
)

type env struct {
	d      *datadir.Dir
	key    *auth.Key
	r      *ocsp.Responder
	srv    *httptest.Server
	tokens map[string]string
	dir    string
	// installer is the contract service; its OEM root is oem's.
	installer *contract.Installer
	oem       *testcerts.PKI
	bridge    *ocppsec.Bridge
}

// eachStore runs fn on an environment with the SQLite store, and with the
// PostgreSQL store when PNCPKI_TEST_POSTGRES is set.
func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newEnv(t, "")) })
	t.Run("postgres", func(t *testing.T) { fn(t, newEnv(t, pgtest.URL(t))) })
}

func newEnv(t testing.TB, storeURL string) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	d, err := datadir.OpenWith(ctx, filepath.Join(dir, "data"), storeURL, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, datadir.InitConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*policies.Tenant{
		{Name: "cpo1", Kind: policies.TenantCPO, OperatorIDs: []string{"DE*ABC"}},
		{Name: "cpo2", Kind: policies.TenantCPO, OperatorIDs: []string{"DE*XYZ"}},
		{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE-8AA"}},
		{Name: "oem1", Kind: policies.TenantOEM},
	} {
		tn.Normalize()
		if err := d.Store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path})
	if err != nil {
		t.Fatal(err)
	}
	anchors, err := ocppsec.AnchorsFrom(ctx, d.CA, d.Store, "")
	if err != nil {
		t.Fatal(err)
	}
	pool := &contract.Pool{Store: d.Store, CA: d.CA}
	oem, err := testcerts.Generate(5, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cps, err := contract.LoadCPS(ctx, d.CA, "softkms:path="+datadir.CPSLeafKey, filepath.Join(d.Path, "cps-leaf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	installer := &contract.Installer{Pool: pool, CPS: []contract.CPS{cps},
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return []*x509.Certificate{oem.Get("oem-root").Cert}, oem.Chain("oem-prov")[:2], nil
		}}
	bridge := &ocppsec.Bridge{CA: d.CA, Store: d.Store, OCSP: &ocsp.Client{Local: r}, Anchors: anchors, Contracts: pool, Installer: installer}
	h, err := (&api.Server{CA: d.CA, Store: d.Store, Key: key, OCSP: r, OCPP: bridge, Contracts: pool}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e := &env{d: d, key: key, r: r, srv: srv, dir: dir, tokens: map[string]string{}, installer: installer, oem: oem, bridge: bridge}
	now := time.Now()
	for name, tr := range map[string][2]string{"admin": {"", auth.RoleAdmin}, "cpo1": {"cpo1", auth.RoleOperator}, "cpo2": {"cpo2", auth.RoleOperator}, "emsp1": {"emsp1", auth.RoleOperator}, "oem1": {"oem1", auth.RoleOperator}} {
		tok, err := key.Mint(name, tr[0], tr[1], time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = tok
	}
	return e
}

// rest sends a JSON request and returns the status and the decoded body.
func (e *env) rest(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func opensslCSR(t *testing.T, dir, cn string) string {
	t.Helper()
	return opensslCSRSubject(t, dir, "/CN="+cn+"/DC=CPO")
}

// opensslCSRSubject makes a P-256 CSR with openssl for a subject in
// openssl's /K=V form.
func opensslCSRSubject(t *testing.T, dir, subj string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed: skipping (.ci/run installs it)")
	}
	name := strings.NewReplacer("/", "_", "*", "_", "=", "_").Replace(subj)
	key, csr := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".csr")
	for _, args := range [][]string{
		{"ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key},
		{"req", "-new", "-key", key, "-subj", subj, "-out", csr},
	} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl: %v %s", err, out)
		}
	}
	b, _ := os.ReadFile(csr)
	return string(b)
}

// TestCSMSFlow drives the API as a CSMS would: REST SignCSR with an
// openssl CSR, gRPC SignCSR, list, revoke, and OCSP turning revoked.
func TestCSMSFlow(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		status, body := e.rest(t, "POST", "/v1/certificates", e.tokens["cpo1"], map[string]any{
			"profile": policies.ISO2SECC, "csr": opensslCSR(t, e.dir, "DE*ABC*E1")})
		if status != 200 {
			t.Fatalf("REST SignCSR: %d %v", status, body)
		}
		restSerial := body["certificate"].(map[string]any)["serial"].(string)

		client := pncpkiv1connect.NewCertificateServiceClient(e.srv.Client(), e.srv.URL, connect.WithGRPC())
		req := connect.NewRequest(&pncpkiv1.SignCSRRequest{Profile: policies.ISO2SECC, Csr: opensslCSR(t, e.dir, "DE*ABC*E2"), ValidityDays: 30})
		req.Header().Set("Authorization", "Bearer "+e.tokens["cpo1"])
		resp, err := client.SignCSR(ctx, req)
		if err != nil {
			t.Fatalf("gRPC SignCSR: %v", err)
		}
		if resp.Msg.Certificate.Tenant != "cpo1" || len(resp.Msg.Chain) != 3 {
			t.Errorf("gRPC SignCSR: %+v", resp.Msg.Certificate)
		}
		if d := resp.Msg.Certificate.NotAfter.AsTime().Sub(resp.Msg.Certificate.NotBefore.AsTime()); d != 30*24*time.Hour {
			t.Errorf("validity_days 30 gave %v", d)
		}

		status, body = e.rest(t, "GET", "/v1/certificates", e.tokens["cpo1"], nil)
		if status != 200 || len(body["certificates"].([]any)) != 2 {
			t.Fatalf("list: %d %v", status, body)
		}
		if status, body = e.rest(t, "GET", "/v1/certificates", e.tokens["cpo2"], nil); status != 200 || body["certificates"] != nil {
			t.Errorf("cpo2 sees cpo1's certificates: %v", body)
		}

		status, body = e.rest(t, "POST", "/v1/certificates/"+restSerial+":revoke", e.tokens["cpo1"], map[string]any{"reason": "keyCompromise"})
		if status != 200 || body["certificate"].(map[string]any)["status"] != "revoked" {
			t.Fatalf("revoke: %d %v", status, body)
		}
		pemBlock := body["certificate"].(map[string]any)["pem"].(string)
		certs, _ := datadir.ParseCertificates([]byte(pemBlock))
		a, _ := e.d.CA.Authority("cpo-sub2")
		der, _ := ocsp.MarshalRequest(0x5, a.Cert, certs[0].SerialNumber, nil) // crypto.SHA256
		parsed, _ := ocsp.ParseRequest(der)
		ans, err := e.r.Respond(ctx, parsed)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := xocsp.ParseResponseForCert(ans.DER, certs[0], a.Cert); err != nil || r.Status != xocsp.Revoked {
			t.Errorf("OCSP after API revoke: %v %v", r, err)
		}
	})
}

func TestAuthTable(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		status, body := e.rest(t, "POST", "/v1/certificates", e.tokens["cpo1"], map[string]any{"profile": policies.ISO2SECC, "csr": opensslCSR(t, e.dir, "DE*ABC*E9")})
		if status != 200 {
			t.Fatalf("setup: %d %v", status, body)
		}
		serial := body["certificate"].(map[string]any)["serial"].(string)
		before, _ := e.d.Store.Certificates(ctx, store.Filter{})
		auditBefore, _ := e.d.Store.AuditLog(ctx, 0, store.MaxPage)

		priv := loadTokenKey(t, e)
		now := time.Now()
		claims := func(mod func(*auth.Claims)) *auth.Claims {
			c := &auth.Claims{Tenant: "cpo1", Role: auth.RoleOperator, RegisteredClaims: jwt.RegisteredClaims{
				Issuer: auth.Issuer, Subject: "x", Audience: jwt.ClaimStrings{auth.Audience},
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
			mod(c)
			return c
		}
		sign := func(c *auth.Claims) string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(priv)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		pubDER, _ := x509.MarshalPKIXPublicKey(priv.Public())
		hmacConfusion, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(func(*auth.Claims) {})).SignedString(pubDER)
		none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(func(*auth.Claims) {})).SignedString(jwt.UnsafeAllowNoneSignatureType)
		secc := map[string]any{"profile": policies.ISO2SECC, "csr": opensslCSR(t, e.dir, "DE*ABC*E10")}
		for _, tt := range []struct {
			name, method, path, token string
			body                      any
			want                      int
		}{
			{"missing token", "POST", "/v1/certificates", "", secc, 401},
			{"garbage token", "POST", "/v1/certificates", "abc.def.ghi", secc, 401},
			{"expired", "POST", "/v1/certificates", sign(claims(func(c *auth.Claims) {
				c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
			})), secc, 401},
			{"no expiry", "POST", "/v1/certificates", sign(claims(func(c *auth.Claims) { c.ExpiresAt = nil })), secc, 401},
			{"wrong audience", "POST", "/v1/certificates", sign(claims(func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"other"} })), secc, 401},
			{"wrong issuer", "POST", "/v1/certificates", sign(claims(func(c *auth.Claims) { c.Issuer = "evil" })), secc, 401},
			{"alg none", "POST", "/v1/certificates", none, secc, 401},
			{"HMAC with the public key", "POST", "/v1/certificates", hmacConfusion, secc, 401},
			{"unknown role", "POST", "/v1/certificates", sign(claims(func(c *auth.Claims) { c.Role = "root" })), secc, 401},
			{"issue for another tenant", "POST", "/v1/certificates", e.tokens["cpo1"], map[string]any{"profile": policies.ISO2SECC, "tenant": "cpo2", "csr": secc["csr"]}, 403},
			{"eMSP asks for an SECC leaf", "POST", "/v1/certificates", e.tokens["emsp1"], secc, 403},
			{"CPO revokes another CPO's certificate", "POST", "/v1/certificates/" + serial + ":revoke", e.tokens["cpo2"], map[string]any{}, 404},
			{"CPO reads another CPO's certificate", "GET", "/v1/certificates/" + serial, e.tokens["cpo2"], nil, 404},
			{"list another tenant", "GET", "/v1/certificates?tenant=cpo1", e.tokens["cpo2"], nil, 403},
		} {
			t.Run(tt.name, func(t *testing.T) {
				status, body := e.rest(t, tt.method, tt.path, tt.token, tt.body)
				if status != tt.want {
					t.Errorf("HTTP %d %v, want %d", status, body, tt.want)
				}
				if msg, _ := body["message"].(string); msg == "" {
					t.Errorf("error without message: %v", body)
				}
				details, _ := body["details"].([]any)
				reason := ""
				if len(details) == 1 {
					reason, _ = details[0].(map[string]any)["reason"].(string)
				}
				if !strings.Contains(reason, ".") {
					t.Errorf("error without a stable code in details: %v", body)
				}
			})
		}
		after, _ := e.d.Store.Certificates(ctx, store.Filter{})
		if len(after) != len(before) {
			t.Errorf("refused requests changed the store: %d -> %d certificates", len(before), len(after))
		}
		if c, _ := e.d.Store.Certificate(ctx, "cpo-sub2", strings.ToLower(serial)); c.Revoked() {
			t.Error("another tenant revoked the certificate")
		}
		auditAfter, _ := e.d.Store.AuditLog(ctx, int64(len(auditBefore)), store.MaxPage)
		denied := 0
		for _, a := range auditAfter {
			if a.Action == "auth.denied" {
				denied++
			}
		}
		if denied < 12 {
			t.Errorf("%d auth.denied audit entries, want one per 401/403", denied)
		}
	})
}

func loadTokenKey(t *testing.T, e *env) *ecdsa.PrivateKey {
	t.Helper()
	s, err := (&ca.Signers{}).Load(context.Background(), "softkms:path="+auth.KeyFile(e.d.Path))
	if err != nil {
		t.Fatal(err)
	}
	return s.(*ecdsa.PrivateKey)
}

func TestAdminServices(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		status, body := e.rest(t, "POST", "/v1/tenants", e.tokens["admin"], map[string]any{"tenant": map[string]any{
			"name": "emsp2", "kind": "emsp", "providerIds": []string{"de-9bb"}}})
		if status != 200 || body["tenant"].(map[string]any)["providerIds"].([]any)[0] != "DE9BB" {
			t.Fatalf("create tenant: %d %v", status, body)
		}
		if status, _ := e.rest(t, "POST", "/v1/tenants", e.tokens["admin"], map[string]any{"tenant": map[string]any{"name": "emsp2", "kind": "emsp"}}); status != 409 {
			t.Errorf("duplicate tenant: HTTP %d", status)
		}
		if status, _ := e.rest(t, "POST", "/v1/tenants", e.tokens["admin"], map[string]any{"tenant": map[string]any{"name": "bad name", "kind": "emsp"}}); status != 400 {
			t.Errorf("invalid tenant: HTTP %d", status)
		}
		status, body = e.rest(t, "POST", "/v1/tokens", e.tokens["admin"], map[string]any{"subject": "emsp2-backend", "tenant": "emsp2", "role": "operator", "ttlSeconds": 600})
		if status != 200 {
			t.Fatalf("create token: %d %v", status, body)
		}
		tok := body["token"].(string)
		if status, body = e.rest(t, "GET", "/v1/certificates", tok, nil); status != 200 {
			t.Errorf("minted token refused: %d %v", status, body)
		}
		for _, path := range []string{"/v1/tenants", "/v1/tokens"} {
			method, body := "POST", any(map[string]any{"subject": "x", "role": "admin", "ttlSeconds": 60})
			if path == "/v1/tenants" {
				method, body = "GET", nil
			}
			if status, _ := e.rest(t, method, path, e.tokens["cpo1"], body); status != 403 {
				t.Errorf("operator %s %s: HTTP %d, want 403", method, path, status)
			}
		}
		if status, _ := e.rest(t, "GET", "/v1/tenants", e.tokens["admin"], nil); status != 200 {
			t.Errorf("list tenants: HTTP %d", status)
		}
		status, body = e.rest(t, "GET", "/v1/audit?pageSize=1000", e.tokens["admin"], nil)
		entries, _ := body["entries"].([]any)
		if status != 200 || len(entries) == 0 {
			t.Fatalf("audit: %d %v", status, body)
		}
		found := false
		for _, x := range entries {
			m := x.(map[string]any)
			found = found || (m["action"] == "token.create" && m["actor"] == "token:admin" && m["object"] == "emsp2-backend")
		}
		if !found {
			t.Errorf("audit log lacks the token minted above: %v", entries)
		}
		if status, _ := e.rest(t, "GET", "/v1/audit", e.tokens["cpo1"], nil); status != 403 {
			t.Errorf("operator reads the audit log: HTTP %d", status)
		}
	})
}

func TestBadRequests(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		for _, tt := range []struct {
			name, method, path string
			body               any
			want               int
		}{
			{"GET with a body", "GET", "/v1/authorities", map[string]any{"x": 1}, 400},
			{"unknown field", "POST", "/v1/certificates", map[string]any{"bogus": 1}, 400},
			{"huge body", "POST", "/v1/certificates", map[string]any{"csr": strings.Repeat("A", 300<<10)}, 413},
			{"garbage CSR", "POST", "/v1/certificates", map[string]any{"profile": policies.ISO2SECC, "csr": "hello"}, 400},
			{"unknown profile", "POST", "/v1/certificates", map[string]any{"profile": "x/y", "csr": "hello"}, 400},
			{"bad serial", "GET", "/v1/certificates/xyz", nil, 400},
			{"unknown serial", "GET", "/v1/certificates/abcdef", nil, 404},
			{"bad reason", "POST", "/v1/certificates/abcdef:revoke", map[string]any{"reason": "bored"}, 400},
			{"unknown route", "GET", "/v1/nothing", nil, 404},
		} {
			t.Run(tt.name, func(t *testing.T) {
				status, body := e.rest(t, tt.method, tt.path, e.tokens["admin"], tt.body)
				if status != tt.want {
					t.Errorf("HTTP %d %v, want %d", status, body, tt.want)
				}
			})
		}
	})
}

// TestTwoReplicasOnPostgres: two pncd stacks (own store connections, CA
// services and API servers) on one PostgreSQL issue concurrently: every
// returned certificate is in the store, no serial repeats, and the audit
// chain stays intact.
func TestTwoReplicasOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	a := newEnv(t, url)
	ctx := context.Background()
	d2, err := datadir.OpenWith(ctx, a.d.Path, url, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	h2, err := (&api.Server{CA: d2.CA, Store: d2.Store, Key: a.key}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	b := httptest.NewTLSServer(h2)
	defer b.Close()
	csr := opensslCSR(t, a.dir, "DE*ABC*E77")
	const n = 40
	serials := make(chan string, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			srv := a.srv
			if i%2 == 1 {
				srv = b
			}
			body, _ := json.Marshal(map[string]any{"profile": policies.ISO2SECC, "csr": csr})
			req, _ := http.NewRequest("POST", srv.URL+"/v1/certificates", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+a.tokens["cpo1"])
			resp, err := srv.Client().Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var out struct{ Certificate struct{ Serial string } }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
				errs <- fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
				return
			}
			serials <- out.Certificate.Serial
		}()
	}
	seen := map[string]bool{}
	for range n {
		select {
		case err := <-errs:
			t.Fatal(err)
		case s := <-serials:
			if seen[s] {
				t.Fatalf("serial %s returned twice", s)
			}
			seen[s] = true
			if _, err := a.d.Store.Certificate(ctx, "cpo-sub2", strings.ToLower(s)); err != nil {
				t.Errorf("returned certificate %s not in the store: %v", s, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("timeout")
		}
	}
	if _, _, err := store.WalkAudit(ctx, a.d.Store, store.MaxPage, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRateLimitPerTenant(t *testing.T) {
	e := newEnv(t, "")
	newServer := func(rl api.RateLimit) *httptest.Server {
		h, err := (&api.Server{CA: e.d.CA, Store: e.d.Store, Key: e.key, RateLimit: rl}).Handler()
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewTLSServer(h)
		t.Cleanup(srv.Close)
		return srv
	}
	get := func(srv *httptest.Server, token string) int {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/authorities", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	run := func(t *testing.T, a, b *httptest.Server, tokA, tokB string) {
		for i := range 5 {
			srv := a
			if i%2 == 1 {
				srv = b
			}
			if s := get(srv, tokA); s != 200 {
				t.Fatalf("request %d: HTTP %d", i+1, s)
			}
		}
		if s := get(a, tokA); s != 429 {
			t.Errorf("6th request of the tenant: HTTP %d, want 429", s)
		}
		if s := get(b, tokB); s != 200 {
			t.Errorf("another tenant limited by the first one's traffic: HTTP %d", s)
		}
	}
	t.Run("one replica", func(t *testing.T) {
		srv := newServer(api.RateLimit{Requests: 5, Window: time.Hour})
		run(t, srv, srv, e.tokens["cpo1"], e.tokens["cpo2"])
	})
	t.Run("two replicas sharing Redis", func(t *testing.T) {
		rdb := redistest.Client(t)
		// Tenants of their own, so counters of earlier runs do not count.
		var toks []string
		for i := range 2 {
			name := fmt.Sprintf("rate%d-%d", time.Now().UnixNano(), i)
			if err := e.d.Store.CreateTenant(context.Background(), &policies.Tenant{Name: name, Kind: policies.TenantCPO}); err != nil {
				t.Fatal(err)
			}
			tok, _ := e.key.Mint(name, name, auth.RoleOperator, time.Hour, time.Now())
			toks = append(toks, tok)
		}
		rl := api.RateLimit{Requests: 5, Window: time.Hour, Redis: rdb}
		run(t, newServer(rl), newServer(rl), toks[0], toks[1])
	})
	t.Run("Redis gone", func(t *testing.T) {
		// Redis does not answer: each replica counts alone, and the API
		// keeps answering (it refused every call with 428 before).
		dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
		defer dead.Close()
		reg := prometheus.NewRegistry()
		h, err := (&api.Server{CA: e.d.CA, Store: e.d.Store, Key: e.key, Metrics: api.NewMetrics(reg),
			RateLimit: api.RateLimit{Requests: 5, Window: time.Hour, Redis: dead}}).Handler()
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewTLSServer(h)
		defer srv.Close()
		run(t, srv, srv, e.tokens["cpo1"], e.tokens["cpo2"])
		mfs, _ := reg.Gather()
		counted := false
		for _, mf := range mfs {
			counted = counted || mf.GetName() == "pncpki_api_rate_limit_redis_errors_total" && mf.GetMetric()[0].GetCounter().GetValue() > 0
		}
		if !counted {
			t.Error("the Redis failures were not counted")
		}
	})
}

// TestMalformedRESTRequests: a malformed body on a route with a path
// parameter and an unknown query parameter are the client's mistakes: 400
// with request.invalid, never 500, and nothing changes.
func TestMalformedRESTRequests(t *testing.T) {
	e := newEnv(t, "")
	before, _ := e.d.Store.ListStations(context.Background(), "")
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/v1/stations/CS-9", "{bad"},
		{"PUT", "/v1/contracts/DE8AAC12345678", "{bad"},
		{"PUT", "/v1/provisioning-certificates/WMI00000000000001", "{bad"},
		{"PUT", "/v1/contract-deposits/WMI00000000000001", "{bad"},
		{"POST", "/v1/certificates/abc:revoke", "{bad"},
		{"POST", "/v1/contracts/DE8AAC12345678:cancel", "{bad"},
		{"POST", "/v1/ocpp/CS-1/requests", "{bad"},
		{"POST", "/v1/certificates", "{bad"},
		{"GET", "/v1/certificates?foo=bar", ""},
		{"GET", "/v1/stations?pageSize=x", ""},
	} {
		req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
		if tc.body == "" {
			req.Body = nil
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Message string `json:"message"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.HasPrefix(body.Message, "request.invalid") && !strings.HasPrefix(body.Message, "unmarshal") {
			t.Errorf("%s %s: %d %q, want 400 request.invalid", tc.method, tc.path, resp.StatusCode, body.Message)
		}
	}
	if after, _ := e.d.Store.ListStations(context.Background(), ""); len(after) != len(before) {
		t.Errorf("%d stations after malformed requests, %d before", len(after), len(before))
	}
}

// TestRESTRefusalsAreJSON: every REST refusal, the transcoder's own
// (no route, wrong method, a body that is not JSON) as much as the
// handlers', comes in the API's one error shape with its HTTP status:
// {"code": "stable.code", "message": "stable.code: ...", "details":
// [ErrorInfo]}. A gzip-compressed Connect request is read.
func TestRESTRefusalsAreJSON(t *testing.T) {
	e := newEnv(t, "")
	do := func(method, path, contentType string, body io.Reader, header map[string]string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, e.srv.URL+path, body)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	for _, tc := range []struct {
		name, method, path, contentType, body, token string
		status                                       int
		code                                         string
	}{
		{"unknown route", "GET", "/v1/no-such-route", "", "", "", 404, "route.not_found"},
		{"wrong content type", "POST", "/v1/certificates", "text/plain", "x", "", 415, "request.unsupported_media_type"},
		{"wrong method", "DELETE", "/v1/certificates", "", "", "", 405, "route.method_not_allowed"},
		{"malformed JSON", "POST", "/v1/certificates", "application/json", `{"profile":`, "", 400, "request.invalid"},
		{"oversize body", "POST", "/v1/certificates", "application/json", `{"csr":"` + strings.Repeat("A", 300<<10) + `"}`, "", 413, "request.too_large"},
		{"unknown CA", "GET", "/v1/crls/no-such-ca", "", "", "", 404, ca.CodeIssuerUnknown},
		{"unknown certificate", "GET", "/v1/certificates/deadbeef", "", "", "", 404, ca.CodeNotFound},
		{"forbidden", "GET", "/v1/certificates?tenant=cpo1", "", "", e.tokens["cpo2"], 403, ""},
		{"no token", "GET", "/v1/certificates", "", "", "-", 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := map[string]string{}
			if tc.token != "" {
				header["Authorization"] = "Bearer " + tc.token
			}
			if tc.token == "-" {
				header["Authorization"] = ""
			}
			resp, out := do(tc.method, tc.path, tc.contentType, strings.NewReader(tc.body), header)
			code, _ := out["code"].(string)
			msg, _ := out["message"].(string)
			details, _ := out["details"].([]any)
			if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
				!strings.Contains(code, ".") || tc.code != "" && code != tc.code || !strings.HasPrefix(msg, code) || len(details) == 0 {
				t.Errorf("%s %s: %d %s %v, want %d %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), out, tc.status, tc.code)
			}
		})
	}
	// A Connect call without Connect-Protocol-Version is still one; an
	// unknown procedure is a Connect error in JSON, not text.
	if resp, out := do("POST", "/pncpki.v1.AuthorityService/ListAuthorities", "application/json", strings.NewReader("{}"), nil); resp.StatusCode != 200 || out["authorities"] == nil {
		t.Errorf("Connect call without the protocol header: %d %v", resp.StatusCode, out)
	}
	if resp, out := do("POST", "/pncpki.v1.AuthorityService/NoSuchProcedure", "application/json", strings.NewReader("{}"), map[string]string{"Connect-Protocol-Version": "1"}); resp.StatusCode != 404 ||
		out["code"] != "unimplemented" || !strings.HasPrefix(fmt.Sprint(out["message"]), api.CodeRouteNotFound) {
		t.Errorf("unknown procedure: %d %v", resp.StatusCode, out)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{}`))
	w.Close()
	resp, out := do("POST", "/pncpki.v1.AuthorityService/ListAuthorities", "application/json", &gz,
		map[string]string{"Content-Encoding": "gzip", "Connect-Protocol-Version": "1"})
	if resp.StatusCode != 200 || out["authorities"] == nil {
		t.Errorf("gzip Connect request: %d %v", resp.StatusCode, out)
	}
}

// TestListCertificatesPages: a CN-prefix search walked with page tokens
// gives each of the tenant's matches once, counted; a forged token is
// refused.
func TestListCertificatesPages(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		for i := range 7 {
			cn := fmt.Sprintf("DE*ABC*E%03d", i)
			if status, body := e.rest(t, "POST", "/v1/certificates", e.tokens["cpo1"], map[string]any{"profile": policies.ISO2SECC, "csr": opensslCSR(t, e.dir, cn)}); status != 200 {
				t.Fatalf("issue %s: %d %v", cn, status, body)
			}
		}
		seen := map[string]bool{}
		path := "/v1/certificates?commonNamePrefix=" + url.QueryEscape("DE*ABC*E00") + "&pageSize=3&count=true"
		for pages := 0; ; pages++ {
			status, body := e.rest(t, "GET", path, e.tokens["cpo1"], nil)
			if status != 200 || body["count"] != "7" && pages == 0 {
				t.Fatalf("page %d: %d %v", pages, status, body)
			}
			certs, _ := body["certificates"].([]any)
			for _, c := range certs {
				cn := c.(map[string]any)["commonName"].(string)
				if seen[cn] || !strings.HasPrefix(cn, "DE*ABC*E00") {
					t.Errorf("page %d: %s again or not a match", pages, cn)
				}
				seen[cn] = true
			}
			next, _ := body["nextPageToken"].(string)
			if next == "" {
				break
			}
			path = "/v1/certificates?commonNamePrefix=" + url.QueryEscape("DE*ABC*E00") + "&pageSize=3&pageToken=" + next
		}
		if len(seen) != 7 {
			t.Errorf("walked %d certificates, want 7", len(seen))
		}
		// Another tenant's prefix search sees none of them.
		if status, body := e.rest(t, "GET", "/v1/certificates?commonNamePrefix=DE&count=true", e.tokens["cpo2"], nil); status != 200 || body["count"] != nil || body["certificates"] != nil { // zero values are left out
			t.Errorf("cpo2: %d %v", status, body)
		}
		if status, body := e.rest(t, "GET", "/v1/certificates?pageToken=Zm9vL2Jhcg", e.tokens["cpo1"], nil); status != 400 || body["code"] != "request.invalid" {
			t.Errorf("forged page token: %d %v", status, body)
		}
		// Soonest expiry first, in pages of its own order.
		var notAfters []string
		path = "/v1/certificates?orderBy=expiry&pageSize=3"
		for {
			status, body := e.rest(t, "GET", path, e.tokens["cpo1"], nil)
			if status != 200 {
				t.Fatalf("by expiry: %d %v", status, body)
			}
			certs, _ := body["certificates"].([]any)
			for _, c := range certs {
				notAfters = append(notAfters, c.(map[string]any)["notAfter"].(string))
			}
			next, _ := body["nextPageToken"].(string)
			if next == "" {
				break
			}
			if status, body := e.rest(t, "GET", "/v1/certificates?pageToken="+next, e.tokens["cpo1"], nil); status != 400 {
				t.Errorf("an expiry-order token in the default order: %d %v", status, body)
			}
			path = "/v1/certificates?orderBy=expiry&pageSize=3&pageToken=" + next
		}
		if len(notAfters) != 7 || !slices.IsSorted(notAfters) {
			t.Errorf("by expiry: %v", notAfters)
		}
		if status, body := e.rest(t, "GET", "/v1/certificates?orderBy=serial", e.tokens["cpo1"], nil); status != 400 || body["code"] != "request.invalid" {
			t.Errorf("order by serial: %d %v", status, body)
		}
	})
}

// TestAuthorityUsage: live certificates are counted past one store page.
func TestAuthorityUsage(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	usage := func() (int, time.Time) {
		t.Helper()
		status, body := e.rest(t, "GET", "/v1/authorities?usage=true", e.tokens["admin"], nil)
		if status != 200 {
			t.Fatalf("%d %v", status, body)
		}
		for _, a := range body["authorities"].([]any) {
			if au := a.(map[string]any); au["name"] == "cpo-sub2" {
				n, _ := strconv.Atoi(fmt.Sprint(au["liveCertificates"]))
				last, _ := time.Parse(time.RFC3339, fmt.Sprint(au["lastExpiry"]))
				return n, last
			}
		}
		t.Fatal("no cpo-sub2")
		return 0, time.Time{}
	}
	before, _ := usage()
	now := time.Now().UTC().Truncate(time.Millisecond)
	const n = store.MaxPage + 5
	for i := range n {
		c := &store.Certificate{Issuer: "cpo-sub2", Serial: fmt.Sprintf("7f%06x", i), Profile: policies.ISO2SECC, Tenant: "cpo1",
			CommonName: fmt.Sprintf("DE*ABC*E%d", i), NotBefore: now, NotAfter: now.Add(time.Duration(i+1) * 24 * time.Hour), DER: []byte{0x30, 0}, CreatedAt: now}
		if err := e.d.Store.PutCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if live, last := usage(); live != before+n || !last.Equal(now.Add(n*24*time.Hour)) {
		t.Errorf("cpo-sub2 usage: %d live (want %d), last expiry %v (want %v)", live, before+n, last, now.Add(n*24*time.Hour))
	}
}

// TestListInstallations: the installation log is paged newest first, and
// a tenant sees only the installations of its contracts and vehicles.
func TestListInstallations(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for i, r := range []store.InstallationRecord{
			{EMSP: "emsp1", OEM: "oem1", ResponseCode: "OK", Source: "issued", Size: 7412},
			{EMSP: "emsp1", ResponseCode: "FAILED", Reason: "too_large", Size: 24},
			{EMSP: "emsp2", ResponseCode: "OK", Source: "issued", Size: 7400},
			{ResponseCode: "FAILED_CertChainError", Reason: "cert_chain", Size: 24},
		} {
			r.At, r.Action, r.PCID, r.Limit = time.Now(), "Install", fmt.Sprintf("WMI0000000000000%d", i), 7500
			if err := e.d.Store.PutInstallation(ctx, &r); err != nil {
				t.Fatal(err)
			}
		}
		pcids := func(body map[string]any) (out []string) {
			list, _ := body["installations"].([]any)
			for _, r := range list {
				out = append(out, r.(map[string]any)["pcid"].(string))
			}
			return out
		}
		for _, tt := range []struct {
			token, query string
			status       int
			want         []string
		}{
			{"admin", "", 200, []string{"WMI00000000000003", "WMI00000000000002", "WMI00000000000001", "WMI00000000000000"}},
			{"emsp1", "", 200, []string{"WMI00000000000001", "WMI00000000000000"}},
			{"oem1", "", 200, []string{"WMI00000000000000"}},
			{"cpo1", "", 200, nil},
			{"admin", "?tenant=emsp2", 200, []string{"WMI00000000000002"}},
			{"emsp1", "?tenant=emsp2", 403, nil},
			{"admin", "?pageSize=501", 400, nil},
			{"admin", "?pageToken=-3", 400, nil},
		} {
			status, body := e.rest(t, "GET", "/v1/installations"+tt.query, e.tokens[tt.token], nil)
			if status != tt.status || !slices.Equal(pcids(body), tt.want) {
				t.Errorf("%s %s: %d %v, want %d %v", tt.token, tt.query, status, pcids(body), tt.status, tt.want)
			}
		}
		// Two pages of two.
		status, body := e.rest(t, "GET", "/v1/installations?pageSize=2", e.tokens["admin"], nil)
		next, _ := body["nextPageToken"].(string)
		if status != 200 || next == "" {
			t.Fatalf("first page: %d %v", status, body)
		}
		status, body = e.rest(t, "GET", "/v1/installations?pageSize=2&pageToken="+next, e.tokens["admin"], nil)
		if got := pcids(body); status != 200 || !slices.Equal(got, []string{"WMI00000000000001", "WMI00000000000000"}) {
			t.Errorf("second page: %d %v", status, got)
		}
	})
}

// TestCertificateCounts: a tenant counts its own certificates only.
func TestCertificateCounts(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		if status, body := e.rest(t, "POST", "/v1/certificates", e.tokens["cpo1"], map[string]any{"profile": policies.ISO2SECC, "csr": opensslCSR(t, e.dir, "DE*ABC*E000001")}); status != 200 {
			t.Fatalf("issue: %d %v", status, body)
		}
		counts := func(token, query string) (int, string) {
			status, body := e.rest(t, "GET", "/v1/certificate-counts"+query, e.tokens[token], nil)
			b, _ := json.Marshal(body["counts"])
			return status, string(b)
		}
		secc := `[{"profile":"` + policies.ISO2SECC + `","valid":"1"}]`
		for _, tt := range []struct {
			token, query string
			status       int
			want         string
		}{
			{"cpo1", "", 200, secc},
			{"cpo2", "", 200, "null"},
			{"admin", "?tenant=cpo1", 200, secc},
			{"cpo2", "?tenant=cpo1", 403, "null"},
		} {
			if status, got := counts(tt.token, tt.query); status != tt.status || got != tt.want {
				t.Errorf("%s %s: %d %s, want %d %s", tt.token, tt.query, status, got, tt.status, tt.want)
			}
		}
	})
}
