// Command console measures certificate search and the console's pages on a
// store of a million certificates, on SQLite and on PostgreSQL, as server
// time (the handlers called in process, no network), and prints a table.
//
// The certificates are written straight into the certificates table
// (one real certificate's DER under a million serials, CNs and dates), as
// pncd's own issuance would take hours for that many; every query the
// measured requests make runs on them as on issued ones.
//
//	go run ./bench/console [-n 1000000] [-postgres URL] [-runs 30]
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/console"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

func main() {
	n := flag.Int("n", 1_000_000, "certificates in the store")
	pg := flag.String("postgres", os.Getenv("PNCPKI_TEST_POSTGRES"), "PostgreSQL URL (empty: SQLite only)")
	runs := flag.Int("runs", 30, "runs of each request")
	flag.BoolVar(&keep, "keep", false, "keep the SQLite data directory (its path goes to stderr), for a look at the query plans")
	flag.Parse()
	ctx := context.Background()
	stores := []string{""}
	if *pg != "" {
		stores = append(stores, *pg)
	}
	fmt.Printf("%-10s %-44s %9s %9s %9s\n", "store", "request", "median", "p95", "max")
	for _, s := range stores {
		if err := run(ctx, s, *n, *runs); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("targets: a search by CN prefix or serial under 50 ms, any page under 200 ms (server time)")
}

var keep bool

// tenants are the CPOs the certificates belong to; tenant 3 is measured.
const tenants = 10

func run(ctx context.Context, storeURL string, n, runs int) error {
	dir, err := os.MkdirTemp("", "pncpki-bench-console-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "data directory kept:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	name := "sqlite"
	if storeURL != "" {
		name = "postgres"
		var drop func()
		if storeURL, drop, err = benchSchema(ctx, storeURL); err != nil {
			return err
		}
		defer drop()
	}
	d, err := datadir.OpenWith(ctx, filepath.Join(dir, "data"), storeURL, ca.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE"}); err != nil {
		return err
	}
	// One certificate issued for real: its DER fills every row.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name("DE*SW3*E0000001", "", "", "")}, k)
	issued, err := d.CA.Issue(store.WithActor(ctx, "bench"), ca.Request{Profile: policies.ISO2SECC, CSR: csr})
	if err != nil {
		return fmt.Errorf("issue: %w", err)
	}
	start := time.Now()
	if storeURL == "" {
		err = fillSQLite(ctx, filepath.Join(d.Path, "pncpki.db"), n, issued.Record.DER)
	} else {
		err = fillPostgres(ctx, storeURL, n, issued.Record.DER)
	}
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	fmt.Fprintf(os.Stderr, "%s: %d certificates written in %s\n", name, n, time.Since(start).Round(time.Second))

	resp, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path})
	if err != nil {
		return err
	}
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		return err
	}
	// A station of tenant 3 with two EVSEIDs among the certificates' CNs:
	// its page looks up their renewals among 100,000 of the tenant's.
	t3 := &policies.Tenant{Name: "cpo-3", Kind: policies.TenantCPO, OperatorIDs: []string{"DE*SW3"}}
	if err := t3.Normalize(); err != nil {
		return err
	}
	if err := d.Store.CreateTenant(ctx, t3); err != nil {
		return err
	}
	now := time.Now()
	if err := d.Store.PutStation(ctx, &store.Station{ID: "CS-SW3-1", Tenant: "cpo-3", OCPPVersion: "2.0.1",
		EVSEIDs: []string{"DESW3E0000123", "DESW3E0000124"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		return err
	}
	anchors, err := ocppsec.AnchorsFrom(ctx, d.CA, d.Store, "")
	if err != nil {
		return err
	}
	bridge := &ocppsec.Bridge{CA: d.CA, Store: d.Store, OCSP: &ocsp.Client{Local: resp}, Anchors: anchors}
	apiServer := &api.Server{CA: d.CA, Store: d.Store, Key: key, OCSP: resp, OCPP: bridge}
	apiHandler, err := apiServer.Handler()
	if err != nil {
		return err
	}
	sessionKey, err := console.LoadOrCreateSessionKey(d.Path)
	if err != nil {
		return err
	}
	cons, err := console.New(console.Options{API: apiHandler, Verify: apiServer.VerifyToken, OCSP: &ocsp.Client{Local: resp},
		SessionKey: sessionKey, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	admin, _ := key.Mint("bench", "", auth.RoleAdmin, time.Hour, time.Now())
	operator, _ := key.Mint("bench-cpo", "cpo-3", auth.RoleOperator, time.Hour, time.Now())
	adminCookie, err := signIn(cons, admin)
	if err != nil {
		return err
	}
	operatorCookie, err := signIn(cons, operator)
	if err != nil {
		return err
	}
	serial := fmt.Sprintf("7f%030x", n/2)
	prefix := url.QueryEscape("DE*SW3*E00012")
	certPage := "/console/certificates/cpo-sub2/" + strings.ToUpper(serial)
	for _, c := range []struct {
		what, path string
		h          http.Handler
		token      string
		cookie     *http.Cookie
		once       bool // measured once, cold: the first count of a scope
	}{
		{"API: counts by profile, first (administrator)", "/v1/certificate-counts", apiHandler, admin, nil, true},
		{"API: counts by profile, first (tenant)", "/v1/certificate-counts", apiHandler, operator, nil, true},
		{"API: counts by profile, kept (administrator)", "/v1/certificate-counts", apiHandler, admin, nil, false},
		{"API: CN prefix search (administrator)", "/v1/certificates?pageSize=50&commonNamePrefix=" + prefix, apiHandler, admin, nil, false},
		{"API: CN prefix search (tenant)", "/v1/certificates?pageSize=50&commonNamePrefix=" + prefix, apiHandler, operator, nil, false},
		{"API: certificate by serial", "/v1/certificates/" + serial, apiHandler, admin, nil, false},
		{"API: newest 50 (administrator)", "/v1/certificates?pageSize=50", apiHandler, admin, nil, false},
		{"page: overview (administrator)", "/console/", cons, "", adminCookie, false},
		{"page: overview (tenant)", "/console/", cons, "", operatorCookie, false},
		{"page: search by CN prefix (tenant)", "/console/certificates?cn=" + prefix, cons, "", operatorCookie, false},
		{"page: search by serial (redirect)", "/console/certificates?serial=" + serial, cons, "", adminCookie, false},
		{"page: certificate (chain, lint, OCSP)", certPage, cons, "", adminCookie, false},
		{"page: newest certificates (administrator)", "/console/certificates", cons, "", adminCookie, false},
		{"page: expiring within 30 days", "/console/certificates?status=valid&expiring=30", cons, "", adminCookie, false},
		{"page: charts (administrator)", "/console/charts", cons, "", adminCookie, false},
		{"page: charts (tenant)", "/console/charts", cons, "", operatorCookie, false},
		{"page: station (renewals due)", "/console/stations/CS-SW3-1", cons, "", operatorCookie, false},
	} {
		var times []time.Duration
		n, first := runs+1, 1 // the first run warms the caches and is not counted
		if c.once {
			n, first = 1, 0
		}
		for i := range n {
			req := httptest.NewRequest("GET", c.path, nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			if c.cookie != nil {
				req.AddCookie(c.cookie)
			}
			rec := httptest.NewRecorder()
			t0 := time.Now()
			c.h.ServeHTTP(rec, req)
			if i >= first {
				times = append(times, time.Since(t0))
			}
			if rec.Code >= 400 {
				return fmt.Errorf("%s: HTTP %d %s", c.what, rec.Code, rec.Body.String())
			}
		}
		slices.Sort(times)
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
		fmt.Printf("%-10s %-44s %9s %9s %9s\n", name, c.what, ms(times[len(times)/2]), ms(times[len(times)*95/100]), ms(times[len(times)-1]))
	}
	return nil
}

// signIn posts a token to the console's sign-in form and returns the
// session cookie.
func signIn(h http.Handler, token string) (*http.Cookie, error) {
	req := httptest.NewRequest("POST", "http://bench.local/console/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://bench.local")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		return c, nil
	}
	return nil, fmt.Errorf("sign-in: HTTP %d %s", rec.Code, rec.Body.String())
}

// row is the i-th certificate: ten tenants, EVSEID-like CNs, issued over
// the past year, expiring over the next two.
func row(i, n int) (tenant, cn, serial string, notBefore, notAfter, created time.Time) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	t := i % tenants
	created = now.Add(-time.Duration(n-i) * (365 * 24 * time.Hour / time.Duration(n)))
	notAfter = now.Add(time.Duration(i%730) * 24 * time.Hour).Add(time.Duration(i%86400) * time.Second)
	return fmt.Sprintf("cpo-%d", t), fmt.Sprintf("DE*SW%d*E%07d", t, i/tenants), fmt.Sprintf("7f%030x", i), created, notAfter, created
}

func fillSQLite(ctx context.Context, path string, n int, der []byte) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO certificates(issuer, serial, profile, tenant, common_name, not_before, not_after, der, created_at, reason) VALUES('cpo-sub2',?,?,?,?,?,?,?,?,0)`)
	if err != nil {
		return err
	}
	for i := range n {
		tenant, cn, serial, nb, na, created := row(i, n)
		if _, err := st.ExecContext(ctx, serial, policies.ISO2SECC, tenant, cn, nb.UnixMilli(), na.UnixMilli(), der, created.UnixMilli()); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `ANALYZE`)
	return err
}

func fillPostgres(ctx context.Context, url string, n int, der []byte) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	i := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"certificates"},
		[]string{"issuer", "serial", "profile", "tenant", "common_name", "not_before", "not_after", "der", "created_at", "reason"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			tenant, cn, serial, nb, na, created := row(i, n)
			i++
			return []any{"cpo-sub2", serial, policies.ISO2SECC, tenant, cn, nb, na, der, created, 0}, nil
		}))
	if err != nil {
		return err
	}
	// As autovacuum leaves a table in steady state: statistics, and the
	// visibility map that lets counts read the indexes alone.
	_, err = conn.Exec(ctx, `VACUUM ANALYZE certificates`)
	return err
}

// schema is where the benchmark's tables live in the database it is given,
// dropped before and after the run.
const schema = "pncpki_bench_console"

// benchSchema makes the benchmark's own schema and returns the URL that
// uses it.
func benchSchema(ctx context.Context, base string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE; CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		if c, err := pgx.Connect(context.Background(), base); err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	}, nil
}
