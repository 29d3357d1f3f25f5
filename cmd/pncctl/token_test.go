package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
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
