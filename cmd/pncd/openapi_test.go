package main

import (
	"flag"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/api/est"
	"github.com/pncpki/pncpki/api/oauth"
	"github.com/pncpki/pncpki/api/opnc"
	"github.com/pncpki/pncpki/console"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/openapicheck"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/ocsp"
)

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

// normalPath makes chi routes and OpenAPI paths comparable: every
// parameter is {}, and a trailing wildcard is a parameter too.
func normalPath(p string) string {
	p = pathParam.ReplaceAllString(p, "{}")
	if s, ok := strings.CutSuffix(p, "/*"); ok {
		p = s + "/{}"
	}
	return p
}

// TestOpenAPIRoutes walks pncd's router (every family mounted, the
// contract pools too) and fails for any route the served /openapi.json
// does not document, and for any documented path pncd does not route.
// The /v1 API and its gRPC/Connect paths are transcoded from one proto
// definition: api's tests hold api/openapi.json to it. Then it asks
// routes that need no token and checks each answer against the
// document: a documented status, and the documented media type.
// allRoutes is pncd's router with every family mounted at its default
// prefix, the contract pools included, on a new data directory.
func allRoutes(t *testing.T) *chi.Mux {
	t.Helper()
	r, _ := allRoutesAdmin(t)
	return r
}

// allRoutesAdmin is allRoutes with an administrator token.
func allRoutesAdmin(t *testing.T) (*chi.Mux, string) {
	t.Helper()
	d, resp, reg := newDir(t)
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	apiServer := &api.Server{CA: d.CA, Store: d.Store, Key: key, OCSP: resp, Metrics: api.NewMetrics(reg)}
	apiHandler, err := apiServer.Handler()
	if err != nil {
		t.Fatal(err)
	}
	st := defineFlags(flag.NewFlagSet("pncd", flag.ContinueOnError))
	tokens := &oauth.Server{Store: d.Store, Key: key}
	sessionKey, err := console.LoadOrCreateSessionKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := console.New(console.Options{API: apiHandler, Verify: apiServer.VerifyToken, OAuth: tokens,
		OCSP: &ocsp.Client{Local: resp}, SessionKey: sessionKey, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mount := st.mounts(apiServer, &est.Server{CA: d.CA, Store: d.Store, Verify: apiServer.VerifyToken},
		&opnc.Server{Verify: apiServer.VerifyToken, Anchors: func() ocppsec.Anchors { return nil }, Pool: &contract.Pool{Store: d.Store, CA: d.CA}},
		tokens, cons)
	admin, err := key.Mint("admin", "", auth.RoleAdmin, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return newRoutes(d, resp, apiHandler, nil, reg, slog.New(slog.DiscardHandler), mount), admin
}

func TestOpenAPIRoutes(t *testing.T) {
	routes, admin := allRoutesAdmin(t)
	srv := httptest.NewServer(limitHeaders(routes))
	defer srv.Close()

	res, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	doc, err := openapicheck.Parse(body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/openapi.json: %d %v", res.StatusCode, err)
	}
	documented := map[string][]string{} // normalised path: methods
	for p, item := range doc.Paths {
		for m := range item {
			documented[normalPath(p)] = append(documented[normalPath(p)], strings.ToUpper(m))
		}
	}
	if len(documented) < 60 {
		t.Errorf("the document has %d paths: the /v1 API's are missing", len(documented))
	}
	byRoute := map[string][]string{} // route: methods routed
	err = chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route != "/v1/*" && !strings.HasPrefix(route, "/{service:pncpki") { // the transcoded API: api/openapi.json
			byRoute[route] = append(byRoute[route], method)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	routed := map[string]bool{}
	for route, methods := range byRoute {
		n := normalPath(route)
		routed[n] = true
		doc, ok := documented[n]
		if !ok {
			t.Errorf("%v %s is not in /openapi.json", methods, route)
			continue
		}
		if slices.Contains(methods, "TRACE") {
			continue // a handler for every method, which answers those it serves: one documented is enough
		}
		for _, m := range methods {
			if !slices.Contains(doc, m) {
				t.Errorf("%s %s: /openapi.json documents only %v", m, route, doc)
			}
		}
	}
	for p := range documented {
		if !strings.HasPrefix(p, "/v1/") && !routed[p] {
			t.Errorf("/openapi.json documents %s, which pncd does not route", p)
		}
	}

	// Answers against the document: the status and media type, and a
	// JSON answer against the schema documented for it.
	// Every documented operation outside /v1 (api/openapi_test.go walks
	// those), as an administrator with an empty body, and a few chosen
	// answers besides.
	type call struct{ method, path, spec string }
	params := strings.NewReplacer("{file}", "cpo-sub2.crl", "{ca}", "cpo", "{iso}", "ISO15118-2", "{page}", "login",
		"{emaid}", "DE8AAC12345678D", "{pcid}", "WMI00000000000001", "{id}", "x", "{sha256}", "x", "{service}", "grpc.health.v1.Health")
	var calls []call
	for p, item := range doc.Paths {
		if strings.HasPrefix(p, "/v1/") {
			continue
		}
		for m := range item {
			calls = append(calls, call{strings.ToUpper(m), pathParam.ReplaceAllStringFunc(params.Replace(p), func(string) string { return "x" }), p})
		}
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].method != "DELETE" && calls[j].method == "DELETE" })
	calls = append(calls, call{"GET", "/crl/nope.crl", "/crl/{file}"}, call{"GET", "/openapi/", "/openapi/{file}"})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	validated := 0
	for _, tc := range calls {
		var body io.Reader
		if tc.method == "POST" || tc.method == "PUT" {
			body = strings.NewReader("{}")
		}
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, body)
		req.Header.Set("Authorization", "Bearer "+admin)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable && res.StatusCode != http.StatusHTTPVersionNotSupported {
			t.Errorf("%s %s: HTTP %d %s", tc.method, tc.path, res.StatusCode, answer)
		}
		mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
		ok, err := doc.Check(strings.ToLower(tc.method), tc.spec, res.StatusCode, mt, answer)
		if err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.path, err)
		}
		if ok {
			validated++
		}
	}
	if validated < 40 {
		t.Errorf("%d JSON answers validated, want those of health, readiness, the document, CRL refusals and the OPNC/OPCP pools", validated)
	}

	// The page renders the document from files pncd holds: nothing from
	// elsewhere, and no inline script.
	for _, f := range []string{"/openapi/", "/openapi/app.js", "/openapi/style.css"} {
		res, err := http.Get(srv.URL + f)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		csp := res.Header.Get("Content-Security-Policy")
		if res.StatusCode != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
			regexp.MustCompile(`(src|href)="https?://`).Match(page) || regexp.MustCompile(`<script>`).Match(page) {
			t.Errorf("GET %s: %d, CSP %q", f, res.StatusCode, csp)
		}
	}
}
