package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// TestTokenRevokeOffersClientCertificates: revoking a tenant's token lists
// its API client certificates, which act for it too, and revokes them
// with --client-certificates.
func TestTokenRevokeOffersClientCertificates(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mustCLI(t, "--data", data, "init")
	mustCLI(t, "--data", data, "tenants", "create", "--name", "backend", "--kind", "cpo", "--operator-id", "DE*ABC", "--org", "Example CPO")
	key, csr := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.csr")
	openssl(t, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
	openssl(t, "req", "-new", "-key", key, "-subj", "/CN=csms-backend", "-out", csr)
	mustCLI(t, "--data", data, "issue", "--profile", policies.APIClient, "--csr", csr, "--tenant", "backend")
	_, errs, _ := cli(t, "--data", data, "token", "create", "--tenant", "backend", "--role", "operator")
	id := regexp.MustCompile(`token id (\S+)`).FindStringSubmatch(errs)
	if id == nil {
		t.Fatalf("no token id in %q", errs)
	}
	out := mustCLI(t, "--data", data, "token", "revoke", "--id", id[1], "--tenant", "backend")
	if !strings.Contains(out, "1 live API client certificates") || !strings.Contains(out, "--client-certificates") {
		t.Fatalf("revoke without --client-certificates:\n%s", out)
	}
	if live := liveClientCerts(t, data); live != 1 {
		t.Fatalf("%d live client certificates after only listing them", live)
	}
	out = mustCLI(t, "--data", data, "token", "revoke", "--id", id[1], "--tenant", "backend", "--client-certificates")
	if !strings.Contains(out, "revoked API client certificate") {
		t.Fatalf("revoke with --client-certificates:\n%s", out)
	}
	if live := liveClientCerts(t, data); live != 0 {
		t.Fatalf("%d live client certificates after revoking them", live)
	}
}

func liveClientCerts(t *testing.T, data string) int {
	t.Helper()
	d, err := datadir.Open(context.Background(), data, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	recs, err := d.Store.Certificates(context.Background(), store.Filter{Profile: policies.APIClient, Revoked: new(bool)})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

// TestCertsListLimit: --limit past the store's page of 1,000 pages
// through, rather than stopping at 1,000.
func TestCertsListLimit(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mustCLI(t, "--data", data, "init")
	d, err := datadir.Open(context.Background(), data, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			_, err := d.CA.IssueForKey(context.Background(), policies.ISO2SECC, "cpo-sub2", &key.PublicKey, policies.Subject{CommonName: fmt.Sprintf("DE*ABC*E%d", i+1)}, policies.Period{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	var all []certJSON
	if err := json.Unmarshal([]byte(mustCLI(t, "--data", data, "certs", "list", "--profile", policies.ISO2SECC, "--limit", "5000", "-o", "json")), &all); err != nil || len(all) != n {
		t.Fatalf("--limit 5000: %d certificates, want %d (%v)", len(all), n, err)
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "--data", data, "certs", "list", "--limit", "1050", "-o", "json")), &all); err != nil || len(all) != 1050 {
		t.Fatalf("--limit 1050: %d certificates (%v)", len(all), err)
	}
}

// TestAuditCheckpointCommands: a checkpoint taken and kept in a file
// verifies; after the log's end was cut, verify with that file fails.
func TestAuditCheckpointCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mustCLI(t, "--data", data, "init")
	kept := filepath.Join(dir, "checkpoint.json")
	mustCLI(t, "--data", data, "audit", "checkpoint", "--out", kept)
	mustCLI(t, "--data", data, "tenants", "create", "--name", "late", "--kind", "emsp", "--provider-id", "DE8AA")
	out := mustCLI(t, "--data", data, "audit", "verify", "--checkpoint", kept)
	if !strings.Contains(out, "1 signed checkpoints") || !strings.Contains(out, "after the last checkpoint") {
		t.Fatalf("verify:\n%s", out)
	}
	raw, err := sql.Open("sqlite", filepath.Join(data, "pncpki.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DELETE FROM audit WHERE seq > 3`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if _, errs, code := cli(t, "--data", data, "audit", "verify", "--checkpoint", kept); code == 0 || !strings.Contains(errs, "cut from its end") {
		t.Fatalf("verify of a cut log: exit %d %s", code, errs)
	}
	// The data directory keeps the latest checkpoint too: verify finds the
	// cut without being told where a copy is.
	if _, errs, code := cli(t, "--data", data, "audit", "verify"); code == 0 || !strings.Contains(errs, "cut from its end") {
		t.Fatalf("verify of a cut log with the kept checkpoint: exit %d %s", code, errs)
	}
}
