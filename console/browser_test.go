package console_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/api/oauth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/console"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/browsertest"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
)

var screenshots = flag.String("screenshots", "", "write the console's screenshots (PNG) to this directory, e.g. docs/")

// server is a pncd's API and console on one test server, for an operator
// named as a real one is.
type server struct {
	srv    *httptest.Server
	key    *auth.Key
	tokens map[string]string
	d      *datadir.Dir
	// installer answers vehicles as pncd's does, for a contract of
	// Musterstrom's with a vehicle of Musterauto's (oem's hierarchy).
	installer *contract.Installer
	oem       *testcerts.PKI
}

func newServer(t *testing.T) *server {
	t.Helper()
	ctx := context.Background()
	d, err := datadir.Open(ctx, filepath.Join(t.TempDir(), "data"), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*policies.Tenant{
		{Name: "stadtwerke-cpo", Kind: policies.TenantCPO, OperatorIDs: []string{"DE*SWM"}},
		{Name: "other-cpo", Kind: policies.TenantCPO, OperatorIDs: []string{"DE*XYZ"}},
		{Name: "musterstrom-emsp", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE-8AA"}},
		{Name: "musterauto-oem", Kind: policies.TenantOEM},
	} {
		if err := tn.Normalize(); err != nil {
			t.Fatal(err)
		}
		if err := d.Store.CreateTenant(store.WithActor(ctx, "test"), tn); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path})
	if err != nil {
		t.Fatal(err)
	}
	bridge, installer, oem := newBridge(t, d, resp)
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	apiServer := &api.Server{CA: d.CA, Store: d.Store, Key: key, OCSP: resp, OCPP: bridge, Contracts: installer.Pool}
	apiHandler, err := apiServer.Handler()
	if err != nil {
		t.Fatal(err)
	}
	sessionKey, err := console.LoadOrCreateSessionKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(console.SessionKeyFile(d.Path)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("session key file: %v %v", fi.Mode(), err)
	}
	cons, err := console.New(console.Options{API: apiHandler, Verify: apiServer.VerifyToken, OAuth: &oauth.Server{Store: d.Store, Key: key},
		OCSP: &ocsp.Client{Local: resp}, SessionKey: sessionKey, Log: slog.New(slog.DiscardHandler),
		Health: func(ctx context.Context) []console.HealthCheck {
			_, err := d.Store.CAs(ctx)
			return []console.HealthCheck{{Name: "store", OK: err == nil, Detail: "answers"}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, cons)
	mux.Handle("/", apiHandler)
	s := &server{srv: httptest.NewServer(mux), key: key, tokens: map[string]string{}, d: d, installer: installer, oem: oem}
	t.Cleanup(s.srv.Close)
	for _, tk := range []struct{ name, tenant, role string }{{"admin", "", auth.RoleAdmin}, {"stadtwerke-cpo", "stadtwerke-cpo", auth.RoleOperator}, {"other-cpo", "other-cpo", auth.RoleOperator}} {
		if s.tokens[tk.name], err = key.Mint(tk.name, tk.tenant, tk.role, time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// newBridge sets up the OCPP bridge and installations as pncd and an
// operator would: the OEM's root is a stored trust anchor, its sub-CAs are
// registered by the OEM, and the eMSP has a contract for the vehicle.
func newBridge(t *testing.T, d *datadir.Dir, resp *ocsp.Responder) (*ocppsec.Bridge, *contract.Installer, *testcerts.PKI) {
	t.Helper()
	ctx := store.WithActor(context.Background(), "test")
	oem, err := testcerts.Generate(7, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	root := oem.Get("oem-root").Cert
	if err := d.Store.AddTrustAnchor(ctx, &store.TrustAnchor{Use: "OEMRootCertificate", SHA256: ca.Fingerprint(root), DER: root.Raw, Source: "admin", AddedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"oem-sub1", "oem-sub2"} {
		c := oem.Get(name).Cert
		if err := d.Store.PutOEMSubCA(ctx, &store.OEMSubCA{SHA256: ca.Fingerprint(c), Tenant: "musterauto-oem", DER: c.Raw, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	pool := &contract.Pool{Store: d.Store, CA: d.CA}
	if _, err := pool.Put(ctx, "musterstrom-emsp", store.Contract{EMAID: "DE-8AA-C12345678-D", PCID: testcerts.PCID, Default: true}); err != nil {
		t.Fatal(err)
	}
	cps, err := contract.LoadCPS(ctx, d.CA, "softkms:path="+datadir.CPSLeafKey, filepath.Join(d.Path, "cps-leaf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	anchors, err := ocppsec.AnchorsFrom(ctx, d.CA, d.Store, "")
	if err != nil {
		t.Fatal(err)
	}
	b := &ocppsec.Bridge{CA: d.CA, Store: d.Store, OCSP: &ocsp.Client{Local: resp}, Anchors: anchors, Contracts: pool, Log: slog.New(slog.DiscardHandler)}
	if err := b.RefreshAnchors(ctx); err != nil {
		t.Fatal(err)
	}
	in := &contract.Installer{Pool: pool, CPS: []contract.CPS{cps}, Log: slog.New(slog.DiscardHandler),
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return b.TrustAnchors()[ocppsec.UseOEM], nil, nil
		}}
	b.Installer = in
	return b, in, oem
}

func csrPEM(t *testing.T, cn string) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name(cn, "", "", "")}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestConsoleInBrowser drives the console in headless Chromium as a CPO's
// operator and another CPO's would: sign in, issue from a CSR, search,
// open the certificate, revoke it and see OCSP answer revoked, be refused
// another tenant's certificate and the administrators' pages, have a
// forged form refused, and sign out.
func TestConsoleInBrowser(t *testing.T) {
	b := browsertest.New(t)
	s := newServer(t)
	base := s.srv.URL
	ctx, cancel := context.WithTimeout(b.Ctx, 2*time.Minute)
	defer cancel()
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	location := func() string {
		l, _ := chromedp.Run(ctx, chromedp.Location())
		return l
	}
	signIn := func(token string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/console/"),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SetValue(chromedp.CSS("#token"), token),
			chromedp.Click(chromedp.CSS("#signin")),
			chromedp.WaitVisible(chromedp.CSS("#cas")),
		); err != nil {
			t.Fatalf("sign in: %v", err)
		}
	}
	shot := func(name string) {
		if *screenshots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*screenshots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A wrong token is refused on the sign-in page.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SetValue(chromedp.CSS("#token"), s.tokens["admin"]+"x"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS(".error")),
	); err != nil {
		t.Fatal(err)
	}
	if e := text(".error"); !strings.Contains(e, "auth.invalid") {
		t.Errorf("bad token: %q", e)
	}

	// The CPO's operator signs in and sees the hierarchy.
	signIn(s.tokens["stadtwerke-cpo"])
	if tree := text("#cas"); !strings.Contains(tree, "v2g-root") || !strings.Contains(tree, "cpo-sub2") || strings.Contains(tree, "softkms") ||
		!strings.Contains(tree, "OCSP responder until") {
		t.Errorf("overview tree: %q", tree)
	}
	if hl := text("#health"); hl != "store answers" {
		t.Errorf("health: %q", hl)
	}
	if c := text("#counts tbody"); c != "no certificates" {
		t.Errorf("a new tenant's counts: %q", c)
	}
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	cookies := got.Cookies
	if err != nil || len(cookies) != 1 || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict ||
		strings.Contains(cookies[0].Value, s.tokens["stadtwerke-cpo"][:20]) {
		t.Fatalf("session cookie: %+v %v", cookies, err)
	}
	cookie := &http.Cookie{Name: cookies[0].Name, Value: cookies[0].Value}

	// Issue from a CSR: the certificate's page follows, OCSP says good.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/issue"),
		chromedp.WaitVisible(chromedp.CSS("#issue")),
		chromedp.SetValue(chromedp.CSS(`#issue select[name="profile"]`), policies.ISO2SECC),
		chromedp.SetValue(chromedp.CSS(`#issue textarea[name="csr"]`), csrPEM(t, "DE*SWM*E000123")),
		chromedp.Click(chromedp.CSS(`#issue button`)),
		chromedp.WaitVisible(chromedp.CSS("#status, .error")),
	); err != nil {
		t.Fatal(err)
	}
	if m := text("main"); !strings.Contains(m, "Download PEM") {
		t.Fatalf("issue: %s", m)
	}
	certURL := location()
	if st, o, l := text("#status"), text("#ocsp"), text("#lint"); st != "valid" || o != "good" || !strings.Contains(l, "no violation") {
		t.Errorf("issued certificate: status %q, OCSP %q, lint %q", st, o, l)
	}
	serial := certURL[strings.LastIndexByte(certURL, '/')+1:]
	shot("console-certificate.png")

	// A CSR the profile refuses: the code is shown.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/issue"),
		chromedp.SetValue(chromedp.CSS(`#issue select[name="profile"]`), policies.ISO2SECC),
		chromedp.SetValue(chromedp.CSS(`#issue textarea[name="csr"]`), csrPEM(t, "DE*XYZ*E000001")),
		chromedp.Click(chromedp.CSS(`#issue button`)),
		chromedp.WaitVisible(chromedp.CSS(".error")),
	); err != nil {
		t.Fatal(err)
	}
	if e := text(".error"); !strings.Contains(e, "policy.denied") && !strings.Contains(e, "csr.") {
		t.Errorf("another operator's EVSEID: %q", e)
	}

	// Search by the EVSEID as a station lists it, without separators,
	// finds it under its CN, and opens it.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/certificates?cn=none"), // a page without results to click
		chromedp.SetValue(chromedp.CSS(`#search input[name="cn"]`), "deswme000123"),
		chromedp.Click(chromedp.CSS(`#search button`)),
		chromedp.WaitVisible(chromedp.CSS("#results a")),
	); err != nil {
		t.Fatal(err)
	}
	if r := text("#results"); !strings.Contains(r, "DE*SWM*E000123") || !strings.Contains(r, serial) {
		t.Errorf("search by CN: %q", r)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#results a`)), chromedp.WaitVisible(chromedp.CSS("#status"))); err != nil {
		t.Fatal(err)
	}

	// Revoke, confirmed by typing the serial: OCSP answers revoked.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#revoke select[name="reason"]`), "keyCompromise"),
		chromedp.SetValue(chromedp.CSS(`#revoke input[name="confirm"]`), serial),
		chromedp.Click(chromedp.CSS(`#revoke button`)),
		chromedp.WaitVisible(chromedp.CSS("#status.status-revoked, .error")),
	); err != nil {
		t.Fatal(err)
	}
	if st, o := text("#status"), text("#ocsp"); st != "revoked" || !strings.HasPrefix(o, "revoked at") || !strings.Contains(o, "keyCompromise") {
		t.Errorf("after revocation: status %q, OCSP %q", st, o)
	}

	// Forged forms: without the session's CSRF token, and from another
	// origin with the session cookie, nothing is issued.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/console/issue", {method: "POST", body: new URLSearchParams({profile: "iso15118-2/secc", csr: "x"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusForbidden {
		t.Errorf("POST without the CSRF token: %d %v", status, err)
	}
	req, _ := http.NewRequest("POST", base+"/console/logout", strings.NewReader(url.Values{"csrf": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.AddCookie(cookie)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("POST from another origin: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	// An operator has no audit or access page.
	for _, p := range []string{"/console/audit", "/console/access"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS(".error"))); err != nil {
			t.Fatal(err)
		}
		if e := text(".error"); !strings.Contains(e, "auth.forbidden") {
			t.Errorf("operator on %s: %q", p, e)
		}
	}

	// Its station, registered through the API, with its details.
	req, _ = http.NewRequest("PUT", base+"/v1/stations/CS-SWM-1", strings.NewReader(`{"ocppVersion": "2.0.1", "evseIds": ["DE*SWM*E000123"], "exiResponseLimit": 7500}`))
	req.Header.Set("Authorization", "Bearer "+s.tokens["stadtwerke-cpo"])
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("register station: %v %v", res, err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/stations"), chromedp.Click(chromedp.CSS(`#stations a`)), chromedp.WaitVisible(chromedp.CSS("#installed"))); err != nil {
		t.Fatal(err)
	}
	if m := text("main"); !strings.Contains(m, "7500 characters") || !strings.Contains(m, "DESWME000123") || !strings.Contains(m, "never through pncd's OCPP proxy") {
		t.Errorf("station page: %q", m)
	}
	// The trust anchors, and the contracts page (a CPO has neither
	// contracts nor provisioning certificates).
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/anchors"), chromedp.WaitVisible(chromedp.CSS("#anchors"))); err != nil {
		t.Fatal(err)
	}
	if a := text("#anchors"); !strings.Contains(a, "V2G Root CA") {
		t.Errorf("anchors: %q", a)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/contracts"), chromedp.WaitVisible(chromedp.CSS("#contracts"))); err != nil {
		t.Fatal(err)
	}

	// Sign out: the console asks for a token again.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/"), chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/certificates"), chromedp.WaitVisible(chromedp.CSS("#token"))); err != nil {
		t.Errorf("after sign-out: %v", err)
	}

	// The other CPO sees neither the certificate in a search nor its page.
	signIn(s.tokens["other-cpo"])
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/certificates?cn="+url.QueryEscape("DE*SWM*E000123")), chromedp.WaitVisible(chromedp.CSS("#results"))); err != nil {
		t.Fatal(err)
	}
	if r := text("#results"); !strings.Contains(r, "no certificate matches") {
		t.Errorf("another tenant's search: %q", r)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(certURL), chromedp.WaitVisible(chromedp.CSS(".error"))); err != nil {
		t.Fatal(err)
	}
	if e := text(".error"); !strings.Contains(e, "not_found") {
		t.Errorf("another tenant's certificate page: %q", e)
	}

	// The administrator sees every tenant's, the audit log, and keys.
	chromedp.Do(ctx, chromedp.Navigate(base+"/console/"), chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	signIn(s.tokens["admin"])
	if tree := text("#cas"); !strings.Contains(tree, "file") {
		t.Errorf("admin overview shows no key location: %q", tree)
	}
	// Counted now: the CPO's SECC certificate is revoked.
	counts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#counts tbody tr")].map(r => r.innerText.replace(/\s+/g, " ").trim())`))
	if err != nil || !slices.Contains(counts, policies.ISO2SECC+" 0 0 1") {
		t.Errorf("admin counts: %q %v", counts, err)
	}
	shot("console-overview.png")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/audit"), chromedp.WaitVisible(chromedp.CSS("#audit"))); err != nil {
		t.Fatal(err)
	}
	if a := text("#audit"); !strings.Contains(a, "certificate.revoke") {
		t.Errorf("audit page: %q", a)
	}
	// Filtered by action, and the chain verified.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#audit-filter input[name="action"]`), "certificate.revoke"),
		chromedp.Click(chromedp.CSS(`#audit-filter button`)),
		chromedp.WaitVisible(chromedp.CSS(`#audit-filter input[value="certificate.revoke"]`)),
	); err != nil {
		t.Fatal(err)
	}
	if a := text("#audit tbody"); strings.Count(a, "certificate.revoke") != 1 || strings.Contains(a, "certificate.issue") {
		t.Errorf("audit filtered by action: %q", a)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#audit-verify button`)), chromedp.WaitVisible(chromedp.CSS("#verified"))); err != nil {
		t.Fatal(err)
	}
	if v := text("#verified"); !strings.HasPrefix(v, "Chain intact") {
		t.Errorf("audit verification: %q", v)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/access"), chromedp.WaitVisible(chromedp.CSS("#tokens"))); err != nil {
		t.Fatal(err)
	}
	if a := text("#tenants"); !strings.Contains(a, "stadtwerke-cpo") || !strings.Contains(a, "other-cpo") {
		t.Errorf("access page: %q", a)
	}

	// Charts: the certificates issued this hour are bars, per CA.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/charts"), chromedp.WaitVisible(chromedp.CSS("svg.chart"))); err != nil {
		t.Fatal(err)
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("svg.chart rect title")].map(t => t.textContent)`))
	if err != nil || !slices.ContainsFunc(bars, func(b string) bool { return strings.HasPrefix(b, "cpo-sub2, ") }) {
		t.Errorf("chart bars: %q %v", bars, err)
	}
	shot("console-charts.png")

	// Two vehicles ask through station CS-SWM-1: Musterauto's gets its
	// contract certificate; one whose provisioning certificate is
	// self-signed is refused. The contracts page shows both, with
	// ResponseCode, reason and answer size against the station's limit.
	v2g, _ := s.d.CA.Authority("v2g-root")
	mo, _ := s.d.CA.Authority("mo-root")
	vehicle := &contract.EV{ProvisioningCert: s.oem.Get("oem-prov").Cert, ProvisioningKey: s.oem.Get("oem-prov").Key, Roots: []*x509.Certificate{v2g.Cert, mo.Cert}}
	exiReq, err := vehicle.InstallationRequest()
	if err != nil {
		t.Fatal(err)
	}
	atStation := contract.ForStation(context.Background(), "CS-SWM-1", "station")
	installed, err := s.installer.Handle(atStation, contract.ActionInstall, exiReq, 7500)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: ca.Name(testcerts.PCID, "Musterauto AG", "DE", "OEM"),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	provDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &pk.PublicKey, pk)
	prov, _ := x509.ParseCertificate(provDER)
	forged, err := (&contract.EV{ProvisioningCert: prov, ProvisioningKey: pk, Roots: []*x509.Certificate{v2g.Cert}}).InstallationRequest()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.installer.Handle(atStation, contract.ActionInstall, forged, 7500); err == nil {
		t.Fatal("a self-signed provisioning certificate was answered")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/contracts?pcid="+testcerts.PCID), chromedp.WaitVisible(chromedp.CSS("#installations"))); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#installations tbody tr")].map(r => r.innerText.replace(/\s+/g, " ").trim())`))
	wantOK := fmt.Sprintf("CS-SWM-1 Install %s DE8AAC12345678D OK issued %d / 7500", testcerts.PCID, base64.StdEncoding.EncodedLen(len(installed.EXI)))
	if err != nil || len(rows) != 2 || !strings.Contains(rows[1], wantOK) ||
		!strings.Contains(rows[0], "FAILED_CertChainError "+contract.ReasonCertChain) || !strings.Contains(rows[0], "CS-SWM-1 Install "+testcerts.PCID) {
		t.Errorf("installations: %q %v, want the refusal and then %q", rows, err, wantOK)
	}

	// The EXI inspector: the vehicle's request decodes, its signature and
	// OEM chain verify; the answer's CPS signature and chain verify; the
	// forged request's chain does not; a failure answer shows its
	// ResponseCode; garbage is refused.
	failed, err := contract.FailureAnswer(contract.ActionInstall, "FAILED_NoCertificateAvailable", "504e43504b494556", "")
	if err != nil {
		t.Fatal(err)
	}
	inspect := func(input string) string {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/console/exi"),
			chromedp.SetValue(chromedp.CSS(`#exi textarea`), input),
			chromedp.Click(chromedp.CSS(`#exi button`)),
			chromedp.WaitVisible(chromedp.CSS("#exi-summary, .error")),
		); err != nil {
			t.Fatal(err)
		}
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main"))) // the tree is in a <pre>
		return html
	}
	if m := inspect(base64.StdEncoding.EncodeToString(exiReq)); !strings.Contains(m, "CertificateInstallationReq") || !strings.Contains(m, "OEMProvisioningCert") ||
		!strings.Contains(m, "vehicle's signature ("+ca.FormatName(vehicle.ProvisioningCert.RawSubject)+")</dt><dd class=\"ok wrap\">verified</dd>") ||
		!strings.Contains(m, "OEM provisioning chain</dt><dd class=\"ok wrap\">leads to "+ca.FormatName(s.oem.Get("oem-root").Cert.RawSubject)+"</dd>") {
		t.Errorf("inspecting a request: %s", m)
	}
	shot("console-exi.png")
	if m := inspect(base64.StdEncoding.EncodeToString(installed.EXI)); !strings.Contains(m, "CPS signature and chain</dt><dd class=\"ok wrap\">verified") {
		t.Errorf("inspecting the answer: %s", m)
	}
	if m := inspect(base64.StdEncoding.EncodeToString(forged)); !strings.Contains(m, "vehicle's signature") || !strings.Contains(m, "OEM provisioning chain</dt><dd class=\"bad wrap\">PCID "+testcerts.PCID+" is registered") &&
		!strings.Contains(m, "OEM provisioning chain</dt><dd class=\"bad wrap\">x509: ") {
		t.Errorf("inspecting the forged request: %s", m)
	}
	if m := inspect(base64.StdEncoding.EncodeToString(failed)); !strings.Contains(m, "FAILED_NoCertificateAvailable") {
		t.Errorf("inspecting a failure answer: %s", m)
	}
	// ISO 15118-20 (libcbv2g's P-521 vectors, where the spec data is):
	// the answer's CPS signature and the request's signature verify, a
	// bad request signature does not.
	if raw, err := os.ReadFile(filepath.Join(os.Getenv("PNCPKI_SPEC"), "exi-vectors", "iso15118-20_oracle-libcbv2g-p521.json")); err == nil {
		var vs struct {
			Vectors []struct {
				Name   string `json:"name"`
				Base64 string `json:"exi_base64"`
			} `json:"vectors"`
		}
		if err := json.Unmarshal(raw, &vs); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"CertificateInstallationRes_signed":                  `CPS signature (DC=CPS,C=DE,O=pncpki test,CN=PNC-A CPS Leaf)</dt><dd class="ok wrap">verified`,
			"CertificateInstallationReq_signed_bodyfragment":     `vehicle's signature (DC=OEM,C=DE,O=pncpki OEM,CN=PNCA1B2C3D4E5F6G70)</dt><dd class="ok wrap">verified`,
			"CertificateInstallationReq_signed_oemchainfragment": `vehicle's signature (DC=OEM,C=DE,O=pncpki OEM,CN=PNCA1B2C3D4E5F6G70)</dt><dd class="ok wrap">verified`,
			"NEG_CertificateInstallationReq_bad_signature_value": `vehicle's signature (DC=OEM,C=DE,O=pncpki OEM,CN=PNCA1B2C3D4E5F6G70)</dt><dd class="bad wrap">signature does not verify`,
		}
		for _, v := range vs.Vectors {
			if w, ok := want[v.Name]; ok {
				if m := inspect(v.Base64); !strings.Contains(m, "(ISO 15118-20)") || !strings.Contains(m, w) {
					t.Errorf("inspecting the -20 vector %s: %s", v.Name, m[:min(len(m), 1500)])
				}
				delete(want, v.Name)
			}
		}
		if len(want) > 0 {
			t.Errorf("vectors not found: %v", want)
		}
	}
	if m := inspect("not EXI at all"); !strings.Contains(m, "exi.invalid") {
		t.Errorf("inspecting garbage: %s", m)
	}

	// At a phone's width nothing runs off the side, and the keyboard
	// reaches the navigation first.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/console/certificates"), chromedp.WaitVisible(chromedp.CSS("#results"))); err != nil {
		t.Fatal(err)
	}
	if over, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); err != nil || over {
		t.Errorf("the certificates page is wider than a phone: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
		t.Fatal(err)
	}
	if f, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent.trim()`)); err != nil || f != "pncpki" {
		t.Errorf("the first Tab focuses %q, want the home link: %v", f, err)
	}

	// The refusals above are pages answered with 4xx, which the browser
	// logs; anything else (a CSP violation, a script error, a static file
	// that failed) is a defect.
	for _, p := range b.Problems() {
		if !strings.Contains(p, "Failed to load resource") || strings.Contains(p, "/console/static/") {
			t.Errorf("console error: %s", p)
		}
	}
}
