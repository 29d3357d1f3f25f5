package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/store/postgres/pgtest"
)

// cli runs pncctl in-process and returns stdout, stderr and the exit code.
func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errw bytes.Buffer
	root := newRoot(&out, &errw)
	root.SetArgs(args)
	err := root.Execute()
	if err != nil && !errors.As(err, new(exitError)) {
		printError(&errw, err)
	}
	return out.String(), errw.String(), exitCode(err)
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, args...)
	if code != 0 {
		t.Fatalf("pncctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func needOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed: skipping interop test (.ci/run installs it)")
	}
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestTestPKI: every certificate testpki writes lints clean, every key file
// is 0600, and every leaf verifies with openssl against its root.
func TestTestPKI(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	mustCLI(t, "testpki", "--out", dir, "--seed", "3")
	files, _ := filepath.Glob(filepath.Join(dir, "certs", "*.pem"))
	if len(files) < 15 {
		t.Fatalf("%d certificates written, want >= 15", len(files))
	}
	chains, _ := filepath.Glob(filepath.Join(dir, "chains", "*.pem"))
	if out, errs, code := cli(t, append([]string{"lint"}, append(files, chains...)...)...); code != 0 {
		t.Fatalf("lint exit %d:\n%s%s", code, out, errs)
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "keys", "*.key"))
	for _, k := range keys {
		if fi, _ := os.Stat(k); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", k, fi.Mode().Perm())
		}
	}
	if len(keys) != len(files) {
		t.Errorf("%d keys for %d certificates", len(keys), len(files))
	}
	var roots, subs []*x509.Certificate
	var leaves []string
	for _, f := range files {
		cs, err := datadir.ReadCertificates(f)
		if err != nil {
			t.Fatal(err)
		}
		c := cs[0]
		switch {
		case bytes.Equal(c.RawSubject, c.RawIssuer):
			roots = append(roots, c)
		case c.IsCA:
			subs = append(subs, c)
		default:
			leaves = append(leaves, f)
		}
	}
	os.WriteFile(filepath.Join(dir, "roots.pem"), datadir.EncodePEM(roots...), 0o644)
	os.WriteFile(filepath.Join(dir, "subs.pem"), datadir.EncodePEM(subs...), 0o644)
	if len(roots) != 4 || len(leaves) < 7 {
		t.Fatalf("%d roots, %d leaves", len(roots), len(leaves))
	}
	for _, l := range leaves {
		if out := openssl(t, "verify", "-CAfile", filepath.Join(dir, "roots.pem"), "-untrusted", filepath.Join(dir, "subs.pem"), l); !strings.HasSuffix(strings.TrimSpace(out), "OK") {
			t.Errorf("openssl verify %s: %s", l, out)
		}
	}
}

// TestWalkthrough is the README walkthrough: init, issue from an openssl
// CSR, list, revoke, CRL verified by openssl, and refusals that store
// nothing.
func TestWalkthrough(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out := mustCLI(t, "--data", data, "init", "--org", "Example CPO"); !strings.Contains(out, "cpo-sub2") {
		t.Fatalf("init output:\n%s", out)
	}
	if _, errs, code := cli(t, "--data", data, "init"); code == 0 || !strings.Contains(errs, "already has CAs") {
		t.Errorf("second init: exit %d %s", code, errs)
	}
	mustCLI(t, "--data", data, "tenants", "create", "--name", "cpo1", "--kind", "cpo", "--operator-id", "DE*ABC")

	key, csr := filepath.Join(dir, "k.pem"), filepath.Join(dir, "csr.pem")
	openssl(t, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
	openssl(t, "req", "-new", "-key", key, "-subj", "/CN=DE*ABC*E123456*1/O=Example CPO/DC=CPO", "-out", csr)
	pemOut := mustCLI(t, "--data", data, "issue", "--profile", "iso15118-2/secc", "--csr", csr, "--tenant", "cpo1", "--chain")
	certs, err := datadir.ParseCertificates([]byte(pemOut))
	if err != nil || len(certs) != 4 {
		t.Fatalf("issue --chain printed %d certificates: %v", len(certs), err)
	}
	leaf := filepath.Join(dir, "leaf.pem")
	os.WriteFile(leaf, datadir.EncodePEM(certs[0]), 0o644)
	os.WriteFile(filepath.Join(dir, "subs.pem"), datadir.EncodePEM(certs[1:3]...), 0o644)
	os.WriteFile(filepath.Join(dir, "root.pem"), datadir.EncodePEM(certs[3]), 0o644)
	openssl(t, "verify", "-CAfile", filepath.Join(dir, "root.pem"), "-untrusted", filepath.Join(dir, "subs.pem"), leaf)
	mustCLI(t, "lint", leaf)
	serial := strings.ToUpper(certs[0].SerialNumber.Text(16))

	var listed []certJSON
	if err := json.Unmarshal([]byte(mustCLI(t, "--data", data, "certs", "list", "-o", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) == 0 || listed[0].Serial != serial || listed[0].Issuer != "cpo-sub2" || listed[0].Tenant != "cpo1" {
		t.Fatalf("certs list: %+v", listed)
	}
	before := len(listed)

	// Refusals store nothing.
	key384, csr384 := filepath.Join(dir, "k384.pem"), filepath.Join(dir, "csr384.pem")
	openssl(t, "ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", key384)
	openssl(t, "req", "-new", "-key", key384, "-subj", "/CN=DE*ABC*E2", "-out", csr384)
	openssl(t, "req", "-new", "-key", key, "-subj", "/CN=DE*XYZ*E2", "-out", filepath.Join(dir, "other.pem"))
	for _, tt := range []struct{ csr, tenant, want string }{
		{csr384, "cpo1", "key.algorithm"},
		{filepath.Join(dir, "other.pem"), "cpo1", "tenant.identifier_not_owned"},
	} {
		_, errs, code := cli(t, "--data", data, "issue", "--profile", "iso15118-2/secc", "--csr", tt.csr, "--tenant", tt.tenant)
		if code != 1 || !strings.Contains(errs, tt.want) {
			t.Errorf("issue %s: exit %d, stderr %q; want %s", tt.csr, code, errs, tt.want)
		}
	}
	json.Unmarshal([]byte(mustCLI(t, "--data", data, "certs", "list", "-o", "json")), &listed)
	if len(listed) != before {
		t.Errorf("refused requests stored certificates: %d -> %d", before, len(listed))
	}

	mustCLI(t, "--data", data, "revoke", "--serial", serial, "--reason", "keyCompromise")
	crl := filepath.Join(dir, "crl.der")
	mustCLI(t, "--data", data, "crl", "--issuer", "iso15118-2/cpo-sub2", "--out", crl) // a profile only one CA has
	if out := mustCLI(t, "--data", data, "certs", "show", serial); !strings.Contains(out, "keyCompromise") {
		t.Errorf("certs show table:\n%s", out)
	}
	os.WriteFile(filepath.Join(dir, "ca.pem"), datadir.EncodePEM(certs[1:]...), 0o644)
	out := openssl(t, "crl", "-inform", "DER", "-in", crl, "-CAfile", filepath.Join(dir, "ca.pem"), "-noout", "-text")
	if !strings.Contains(out, serial) || !strings.Contains(out, "Key Compromise") {
		t.Errorf("CRL does not list %s as key compromise:\n%s", serial, out)
	}
	if show := mustCLI(t, "--data", data, "certs", "show", serial, "-o", "json"); !strings.Contains(show, `"status": "revoked"`) {
		t.Errorf("certs show: %s", show)
	}

	// Every change is in the audit chain, which verifies until tampered with.
	if out := mustCLI(t, "--data", data, "audit", "verify"); !strings.Contains(out, "audit chain intact") {
		t.Errorf("audit verify: %s", out)
	}
	var entries []struct{ Actor, Action, Object string }
	json.Unmarshal([]byte(mustCLI(t, "--data", data, "audit", "list", "-o", "json", "--limit", "1000")), &entries)
	seen := map[string]bool{}
	for _, e := range entries {
		// pncctl:USER, or token:pncctl:USER for what pncctl does
		// through the API in process (its token's subject).
		if !strings.HasPrefix(e.Actor, "pncctl:") && !strings.HasPrefix(e.Actor, "token:pncctl:") {
			t.Errorf("actor %q", e.Actor)
		}
		seen[e.Action+" "+e.Object] = true
	}
	for _, want := range []string{"tenant.create cpo1", "ca.create cpo-sub2", "certificate.issue cpo-sub2/" + strings.ToLower(serial), "certificate.revoke cpo-sub2/" + strings.ToLower(serial)} {
		if !seen[want] {
			t.Errorf("audit log lacks %q", want)
		}
	}
	db, err := sql.Open("sqlite", filepath.Join(data, "pncpki.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit SET actor = 'mallory' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, errs, code := cli(t, "--data", data, "audit", "verify"); code != 1 || !strings.Contains(errs, "entry 3 was altered") {
		t.Errorf("tampered audit log: exit %d %s", code, errs)
	}
}

func TestLintFindsViolations(t *testing.T) {
	// RISE-V2G's test contract certificate carries an EMAID with a wrong
	// check digit and keyEncipherment on an EC key.
	spec := os.Getenv("PNCPKI_SPEC")
	if spec == "" {
		spec = filepath.Join("..", "..", "..", "shared", "spec")
	}
	f := filepath.Join(spec, "exi-vectors", "rise-v2g-certs", "contractCert.pem")
	if _, err := os.Stat(f); err != nil {
		t.Skipf("shared spec data not present: %v", err)
	}
	out, _, code := cli(t, "lint", "--profile", "iso15118-2/contract", "-o", "json", f)
	if code != 1 {
		t.Fatalf("lint exit %d, want 1:\n%s", code, out)
	}
	var res []struct {
		Violations []struct{ Code string } `json:"violations"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 {
		t.Fatalf("lint -o json: %v\n%s", err, out)
	}
	var codes []string
	for _, v := range res[0].Violations {
		codes = append(codes, v.Code)
	}
	if !strings.Contains(strings.Join(codes, " "), "subject.cn") {
		t.Errorf("violations %v do not include subject.cn", codes)
	}
}

// TestImportAndOutsideRoot: an operator imports an existing hierarchy with
// 'init --import', and has a sub-CA certified by an outside root with
// 'ca csr' and 'ca import'.
func TestImportAndOutsideRoot(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	mustCLI(t, "testpki", "--out", pki)
	spec := func(name, parent, profile string) string {
		s := "name=" + name + ",cert=" + filepath.Join(pki, "certs", name+".pem") + ",key=softkms:path=" + filepath.Join(pki, "keys", name+".key")
		if parent != "" {
			s += ",parent=" + parent
		}
		if profile != "" {
			s += ",profile=" + profile
		}
		return s
	}
	data := filepath.Join(dir, "data")
	// CPO and CPS sub-CAs share every rule: without profile= the import is refused.
	if _, errs, code := cli(t, "--data", data, "init", "--import", spec("v2g-root", "", ""), "--import", spec("cps-sub1", "v2g-root", "")); code == 0 || !strings.Contains(errs, "name the profile") {
		t.Fatalf("ambiguous import: exit %d %s", code, errs)
	}
	// All or nothing: the refused init imported not even the root.
	if out := mustCLI(t, "--data", data, "ca", "list"); strings.Contains(out, "v2g-root") {
		t.Fatalf("a refused init --import left CAs:\n%s", out)
	}
	out := mustCLI(t, "--data", data, "init", "--import", spec("v2g-root", "", ""),
		"--import", spec("cpo-sub1", "v2g-root", "iso15118-2/cpo-sub1"),
		"--import", spec("cpo-sub2", "cpo-sub1", ""))
	for _, name := range []string{"v2g-root", "cpo-sub1", "cpo-sub2"} {
		if !strings.Contains(out, name) {
			t.Errorf("init --import table lacks %s:\n%s", name, out)
		}
	}
	key, csr := filepath.Join(dir, "k.pem"), filepath.Join(dir, "csr.pem")
	openssl(t, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
	openssl(t, "req", "-new", "-key", key, "-subj", "/CN=DE*PNC*E7", "-out", csr)
	leaf := filepath.Join(dir, "leaf.pem")
	os.WriteFile(leaf, []byte(mustCLI(t, "--data", data, "issue", "--profile", "iso15118-2/secc", "--csr", csr)), 0o644)
	os.WriteFile(filepath.Join(dir, "subs.pem"), append(must(os.ReadFile(filepath.Join(pki, "certs", "cpo-sub1.pem"))), must(os.ReadFile(filepath.Join(pki, "certs", "cpo-sub2.pem")))...), 0o644)
	openssl(t, "verify", "-CAfile", filepath.Join(pki, "certs", "v2g-root.pem"), "-untrusted", filepath.Join(dir, "subs.pem"), leaf)

	// An outside MO root (another data directory) certifies our MO Sub-CA 1.
	outside := filepath.Join(dir, "outside")
	mustCLI(t, "--data", outside, "init", "--org", "Outside Root Operator")
	subCSR := filepath.Join(dir, "mo-sub1.csr")
	mustCLI(t, "--data", data, "ca", "csr", "--profile", "iso15118-2/mo-sub1", "--name", "ext-mo1", "--org", "Example eMSP", "--out", subCSR)
	if out := mustCLI(t, "--data", data, "ca", "list"); !strings.Contains(out, "pending") {
		t.Errorf("ca list does not show the pending CA:\n%s", out)
	}
	subCert := filepath.Join(dir, "mo-sub1.pem")
	os.WriteFile(subCert, []byte(mustCLI(t, "--data", outside, "issue", "--profile", "iso15118-2/mo-sub1", "--issuer", "mo-root", "--csr", subCSR)), 0o644)
	mustCLI(t, "--data", data, "ca", "import", subCert)
	mustCLI(t, "--data", data, "ca", "create", "--profile", "iso15118-2/mo-sub2", "--name", "ext-mo2", "--parent", "ext-mo1")
	openssl(t, "req", "-new", "-key", key, "-subj", "/CN=DE-8AA-CA2B3C4D5-L", "-out", csr)
	if _, errs, code := cli(t, "--data", data, "issue", "--profile", "iso15118-2/contract", "--csr", csr); code != 1 || !strings.Contains(errs, "normalised EMAID") {
		t.Errorf("contract CN with separators: exit %d %s", code, errs)
	}
	openssl(t, "req", "-new", "-key", key, "-subj", "/CN=DE8AACA2B3C4D5L", "-out", csr)
	contract := mustCLI(t, "--data", data, "issue", "--profile", "iso15118-2/contract", "--csr", csr, "--chain")
	certs, err := datadir.ParseCertificates([]byte(contract))
	if err != nil || len(certs) != 3 {
		t.Fatalf("contract chain: %d, %v", len(certs), err)
	}
	if certs[2].Issuer.CommonName != "MO Root CA" || certs[2].Issuer.Organization[0] != "Outside Root Operator" {
		t.Errorf("MO Sub-CA 1 issued by %q", certs[2].Issuer.CommonName)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestRevokeAnnounces: 'pncctl revoke --redis' reaches a subscribed OCSP
// responder at once.
func TestRevokeAnnounces(t *testing.T) {
	u := os.Getenv("PNCPKI_TEST_REDIS")
	if u == "" {
		t.Skip("PNCPKI_TEST_REDIS not set: skipping Redis test (.ci/run sets it)")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	data := filepath.Join(t.TempDir(), "data")
	mustCLI(t, "--data", data, "init")
	d, err := datadir.Open(context.Background(), data, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := make(chan string, 1)
	r, err := ocsp.New(context.Background(), ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path, Redis: rdb,
		OnRevoked: func(issuer, serial string) { got <- issuer + "/" + serial }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); !r.Subscribed(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("responder never subscribed")
		}
	}
	var listed []certJSON
	json.Unmarshal([]byte(mustCLI(t, "--data", data, "certs", "list", "-o", "json", "--profile", "iso15118-2/cps-leaf")), &listed)
	if len(listed) != 1 {
		t.Fatalf("CPS leaf not listed: %v", listed)
	}
	if out := mustCLI(t, "--data", data, "revoke", "--serial", listed[0].Serial, "--redis", u); !strings.Contains(out, "announced") {
		t.Errorf("revoke output: %s", out)
	}
	select {
	case s := <-got:
		if want := "cps-sub2/" + strings.ToLower(listed[0].Serial); s != want {
			t.Errorf("announced %s, want %s", s, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no announcement within 10 s")
	}
}

func TestOCSPCheck(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mustCLI(t, "--data", data, "init")
	var listed []certJSON
	// MO Sub-CA 2 is checked by stations (its AIA names the responder);
	// the CPS chain carries no URL, as only vehicles check it, offline.
	json.Unmarshal([]byte(mustCLI(t, "--data", data, "certs", "list", "-o", "json", "--profile", "iso15118-2/mo-sub2")), &listed)
	leaf := filepath.Join(dir, "leaf.pem")
	os.WriteFile(leaf, []byte(mustCLI(t, "--data", data, "certs", "show", listed[0].Serial, "-o", "pem")), 0o644)
	d, err := datadir.Open(context.Background(), data, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := d.CA.Authority("mo-sub1")
	issuer := filepath.Join(dir, "issuer.pem")
	os.WriteFile(issuer, datadir.EncodePEM(a.Cert), 0o644)
	d.Close()
	out := mustCLI(t, "--data", data, "ocsp", "check", leaf, "--issuer-cert", issuer)
	if !strings.Contains(out, "good") || !strings.Contains(out, "local") {
		t.Errorf("ocsp check:\n%s", out)
	}
	mustCLI(t, "--data", data, "revoke", "--serial", listed[0].Serial, "--reason", "superseded", "--redis", "")
	out, _, code := cli(t, "--data", data, "ocsp", "check", leaf, "--issuer-cert", issuer, "-o", "json")
	if code != 1 || !strings.Contains(out, `"status": "revoked"`) || !strings.Contains(out, "superseded") {
		t.Errorf("ocsp check after revoke: exit %d\n%s", code, out)
	}
	// Without the data directory, the certificate's AIA is asked: the
	// default public URL, where no pncd runs in this test: unavailable.
	if _, errs, code := cli(t, "--data", filepath.Join(dir, "none"), "ocsp", "check", leaf, "--issuer", issuer); code != exitUnavailable || !strings.Contains(errs, "ask 127.0.0.1:8080") {
		t.Errorf("AIA responder: exit %d %s", code, errs)
	}
	// --url is asked even when the data directory holds the CA (and the
	// old --issuer spelling still works).
	if _, errs, code := cli(t, "--data", data, "ocsp", "check", leaf, "--issuer", issuer, "--url", "http://127.0.0.1:1/ocsp"); code != exitUnavailable || !strings.Contains(errs, "127.0.0.1:1") {
		t.Errorf("--url with the CA here: exit %d %s", code, errs)
	}
}

// TestPostgresStore: the CLI walkthrough's core on the PostgreSQL store.
func TestPostgresStore(t *testing.T) {
	u := pgtest.URL(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mustCLI(t, "--data", data, "--store", u, "init")
	if _, err := os.Stat(filepath.Join(data, "pncpki.db")); err == nil {
		t.Error("SQLite database created although the store is PostgreSQL")
	}
	var listed []certJSON
	json.Unmarshal([]byte(mustCLI(t, "--data", data, "--store", u, "certs", "list", "-o", "json", "--profile", "iso15118-2/cps-leaf")), &listed)
	if len(listed) != 1 {
		t.Fatalf("CPS leaf not in PostgreSQL: %v", listed)
	}
	mustCLI(t, "--data", data, "--store", u, "revoke", "--serial", listed[0].Serial, "--redis", "")
	crl := filepath.Join(dir, "crl.der")
	mustCLI(t, "--data", data, "--store", u, "crl", "--issuer", "cps-sub2", "--out", crl)
	der, _ := os.ReadFile(crl)
	parsed, err := x509.ParseRevocationList(der)
	if err != nil || len(parsed.RevokedCertificateEntries) != 1 {
		t.Errorf("CRL from PostgreSQL: %v %v", parsed, err)
	}
}

func TestTokenCreate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mustCLI(t, "--data", data, "init")
	mustCLI(t, "--data", data, "tenants", "create", "--name", "cpo1", "--kind", "cpo", "--operator-id", "DE*ABC")
	tok := strings.TrimSpace(mustCLI(t, "--data", data, "token", "create", "--tenant", "cpo1", "--ttl", "1h"))
	key, err := auth.LoadOrCreateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	c, err := key.Verify(tok, time.Now())
	if err != nil || c.Tenant != "cpo1" || c.Role != auth.RoleOperator || c.Subject != "cpo1-operator" {
		t.Fatalf("minted token: %+v %v", c, err)
	}
	if fi, _ := os.Stat(auth.KeyFile(data)); fi.Mode().Perm() != 0o600 {
		t.Errorf("token key mode %v", fi.Mode().Perm())
	}
	for _, bad := range [][]string{{"--tenant", "ghost"}, {"--role", "root", "--tenant", "cpo1"}, {"--tenant", "cpo1", "--ttl", "9000h"}, {"--role", "operator"}} {
		if _, _, code := cli(t, append([]string{"--data", data, "token", "create"}, bad...)...); code == 0 {
			t.Errorf("token create %v accepted", bad)
		}
	}
	if out := mustCLI(t, "--data", data, "audit", "list"); !strings.Contains(out, "token.create") {
		t.Errorf("token not audited:\n%s", out)
	}
	// Listed from the audit log: the init's administrator token and this
	// one; once revoked, only with --all.
	if out := mustCLI(t, "--data", data, "token", "list"); !strings.Contains(out, c.ID) || !strings.Contains(out, "first-start-admin") || !strings.Contains(out, "cpo1-operator") {
		t.Errorf("token list:\n%s", out)
	}
	tokFile := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tokFile, []byte(tok+"\n"), 0o600)
	mustCLI(t, "--data", data, "token", "revoke", "--file", tokFile)
	if out := mustCLI(t, "--data", data, "token", "list"); strings.Contains(out, c.ID) {
		t.Errorf("token list shows the revoked token:\n%s", out)
	}
	if out := mustCLI(t, "--data", data, "token", "list", "--all", "-o", "json"); !strings.Contains(out, `"state": "revoked"`) || !strings.Contains(out, c.ID) {
		t.Errorf("token list --all:\n%s", out)
	}
	d, err := datadir.Open(context.Background(), data, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ids, err := d.Store.RevokedTokens(context.Background(), time.Now())
	if err != nil || len(ids) != 1 {
		t.Errorf("revoked tokens %v %v", ids, err)
	}
}

func TestStations(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mustCLI(t, "--data", data, "init", "--org", "Example CPO")
	mustCLI(t, "--data", data, "tenants", "create", "--name", "cpo1", "--kind", "cpo", "--operator-id", "DE*ABC")
	out := mustCLI(t, "--data", data, "stations", "put", "--id", "CS-1", "--tenant", "cpo1", "--serial", "SN1", "--evse-id", "DE*ABC*E1", "--evse-id", "DE*ABC*E2")
	if !strings.Contains(out, "DEABCE1,DEABCE2") {
		t.Errorf("put: %s", out)
	}
	if _, errs, code := cli(t, "--data", data, "stations", "put", "--id", "CS-2", "--tenant", "cpo1", "--evse-id", "not an evseid"); code == 0 || !strings.Contains(errs, "EVSEID") {
		t.Errorf("bad EVSEID: exit %d %s", code, errs)
	}
	if _, errs, code := cli(t, "--data", data, "stations", "put", "--id", "CS-3", "--tenant", "nobody"); code == 0 || !strings.Contains(errs, "tenant.unknown") {
		t.Errorf("unknown tenant: exit %d %s", code, errs)
	}
	// JSON with the API's snake_case keys.
	var listed []map[string]any
	if out := mustCLI(t, "--data", data, "stations", "list", "-o", "json"); json.Unmarshal([]byte(out), &listed) != nil || len(listed) == 0 || listed[0]["serial_number"] != "SN1" {
		t.Errorf("list: %s", out)
	}
	if out := mustCLI(t, "--data", data, "stations", "show", "--id", "CS-1"); !strings.Contains(out, "serial SN1") || !strings.Contains(out, "PENDING CALL") {
		t.Errorf("show: %s", out)
	}
	mustCLI(t, "--data", data, "stations", "delete", "--id", "CS-1")
	// The contract pool, locally.
	mustCLI(t, "--data", data, "tenants", "create", "--name", "emsp1", "--kind", "emsp", "--provider-id", "DE-8AA")
	mustCLI(t, "--data", data, "contracts", "put", "--emaid", "DE8AAC12345678", "--tenant", "emsp1", "--pcid", "WMI00000000000001", "--days", "30")
	if _, errs, code := cli(t, "--data", data, "contracts", "put", "--emaid", "NLXYZC12345678", "--tenant", "emsp1", "--pcid", "WMI00000000000001"); code == 0 || !strings.Contains(errs, "contract.forbidden") {
		t.Errorf("foreign EMAID: %d %s", code, errs)
	}
	if out := mustCLI(t, "--data", data, "contracts", "cancel", "--emaid", "DE8AAC12345678D"); !strings.Contains(out, "cancelled contract") {
		t.Errorf("contracts cancel: %s", out)
	}
	// The provisioning certificate pool, with testpki's OEM chain.
	pkiDir := filepath.Join(t.TempDir(), "pki")
	mustCLI(t, "testpki", "--out", pkiDir)
	mustCLI(t, "--data", data, "tenants", "create", "--name", "oem1", "--kind", "oem")
	provFile := filepath.Join(t.TempDir(), "prov.pem")
	var chainPEM []byte
	for _, n := range []string{"oem-prov", "oem-sub2", "oem-sub1"} {
		b, err := os.ReadFile(filepath.Join(pkiDir, "certs", n+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		chainPEM = append(chainPEM, b...)
	}
	os.WriteFile(provFile, chainPEM, 0o644)
	if out := mustCLI(t, "--data", data, "provisioning", "put", "--cert", provFile, "--tenant", "oem1"); !strings.Contains(out, "registered for oem1") {
		t.Errorf("provisioning put: %s", out)
	}
	if out := mustCLI(t, "--data", data, "provisioning", "list"); !strings.Contains(out, "oem1") {
		t.Errorf("provisioning list: %s", out)
	}
	mustCLI(t, "--data", data, "ca", "create", "--name", "csms-root-2", "--profile", "ocpp/csms-root", "--cn", "Example CSMS Root 2")
	pemOut := mustCLI(t, "--data", data, "ca", "cross-certify", "--new", "csms-root-2", "--old", "csms-root")
	certs, err := datadir.ParseCertificates([]byte(pemOut))
	if err != nil || len(certs) != 1 || certs[0].Subject.CommonName != "Example CSMS Root 2" || certs[0].Issuer.CommonName == "Example CSMS Root 2" {
		t.Errorf("cross-certify: %v %s", err, pemOut)
	}
	if out := mustCLI(t, "--data", data, "stations", "list"); strings.Contains(out, "CS-1") {
		t.Errorf("after delete: %s", out)
	}
}
