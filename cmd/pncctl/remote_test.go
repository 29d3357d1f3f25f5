package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
)

// TestRemote drives a pncd API (real TLS, real store) with pncctl --server.
func TestRemote(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := datadir.Open(ctx, filepath.Join(dir, "data"), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Remote"}); err != nil {
		t.Fatal(err)
	}
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := (&api.Server{CA: d.CA, Store: d.Store, Key: key, Contracts: &contract.Pool{Store: d.Store, CA: d.CA}}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	caFile := filepath.Join(dir, "server-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	admin, _ := key.Mint("admin", "", auth.RoleAdmin, time.Hour, time.Now())
	tokFile := filepath.Join(dir, "admin.token")
	os.WriteFile(tokFile, []byte(admin+"\n"), 0o600)
	r := func(args ...string) []string {
		// No --data: nothing local is opened.
		return append([]string{"--server", srv.URL, "--server-ca", caFile, "--token-file", tokFile, "--data", filepath.Join(dir, "absent")}, args...)
	}

	mustCLI(t, r("tenants", "create", "--name", "cpo1", "--kind", "cpo", "--operator-id", "DE*ABC")...)
	if out := mustCLI(t, r("tenants", "list")...); !strings.Contains(out, "cpo1") || !strings.Contains(out, "DEABC") {
		t.Errorf("tenants list: %s", out)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name("DE*ABC*E1", "", "", "")}, k)
	csr := filepath.Join(dir, "csr.pem")
	os.WriteFile(csr, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644)
	certs, err := datadir.ParseCertificates([]byte(mustCLI(t, r("issue", "--profile", "iso15118-2/secc", "--csr", csr, "--tenant", "cpo1", "--chain")...)))
	if err != nil || len(certs) != 4 {
		t.Fatalf("remote issue: %d certificates, %v", len(certs), err)
	}
	serial := strings.ToUpper(certs[0].SerialNumber.Text(16))
	if out := mustCLI(t, r("certs", "list", "--tenant", "cpo1")...); !strings.Contains(out, serial) || !strings.Contains(out, "DE*ABC*E1") {
		t.Errorf("certs list: %s", out)
	}
	if out := mustCLI(t, r("revoke", "--serial", serial, "--reason", "keyCompromise")...); !strings.Contains(out, "keyCompromise") {
		t.Errorf("revoke: %s", out)
	}
	if out := mustCLI(t, r("certs", "list", "--revoked", "true")...); !strings.Contains(out, serial) || !strings.Contains(out, "revoked") {
		t.Errorf("certs list --revoked: %s", out)
	}
	if out := mustCLI(t, r("certs", "list", "--revoked", "false")...); strings.Contains(out, serial) {
		t.Errorf("certs list --revoked false shows the revoked one: %s", out)
	}
	mustCLI(t, r("stations", "put", "--id", "CS-1", "--tenant", "cpo1", "--evse-id", "DE*ABC*E1")...)
	if out := mustCLI(t, r("stations", "list")...); !strings.Contains(out, "CS-1") || !strings.Contains(out, "DEABCE1") {
		t.Errorf("stations list: %s", out)
	}
	mustCLI(t, r("stations", "delete", "--id", "CS-1")...)
	mustCLI(t, r("tenants", "create", "--name", "emsp1", "--kind", "emsp", "--provider-id", "DE-8AA")...)
	if out := mustCLI(t, r("contracts", "put", "--emaid", "DE-8AA-C12345678", "--tenant", "emsp1", "--pcid", "WMI00000000000001", "--default")...); !strings.Contains(out, "DE8AAC12345678D") {
		t.Errorf("contracts put: %s", out)
	}
	if out := mustCLI(t, r("contracts", "cancel", "--emaid", "DE8AAC12345678D")...); !strings.Contains(out, "0 certificates revoked") {
		t.Errorf("contracts cancel: %s", out)
	}
	if out := mustCLI(t, r("contracts", "list", "--pcid", "WMI00000000000001")...); !strings.Contains(out, "cancelled") {
		t.Errorf("contracts list: %s", out)
	}
	out, errs, code := cli(t, r("token", "create", "--tenant", "cpo1", "--ttl", "1h")...)
	if code != 0 || !strings.Contains(errs, "token id ") {
		t.Fatalf("token create: %d %s", code, errs)
	}
	id := strings.Fields(strings.TrimPrefix(errs, "token id "))[0]
	if c, err := key.Verify(strings.TrimSpace(out), time.Now()); err != nil || c.Tenant != "cpo1" || c.ID != id {
		t.Errorf("minted remotely: %+v %v", c, err)
	}
	mustCLI(t, r("token", "revoke", "--id", id)...)
	if out := mustCLI(t, r("audit", "list")...); !strings.Contains(out, "certificate.revoke") || !strings.Contains(out, "token.revoke") {
		t.Errorf("audit list: %s", out)
	}
	// ca list and crl through the API; the revocation is on the CRL.
	if out := mustCLI(t, r("ca", "list")...); !strings.Contains(out, "cpo-sub2") || !strings.Contains(out, "iso15118-2/cpo-sub2") {
		t.Errorf("ca list: %s", out)
	}
	crlFile := filepath.Join(dir, "sub2.crl")
	mustCLI(t, r("crl", "--issuer", "cpo-sub2", "--out", crlFile)...)
	crlDER, _ := os.ReadFile(crlFile)
	if crl, err := x509.ParseRevocationList(crlDER); err != nil || len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(certs[0].SerialNumber) != 0 {
		t.Errorf("crl with --server: %v", err)
	}
	// Commands without an API call refuse --server (a usage mistake); a
	// bad token is refused by pncd.
	if _, errs, code := cli(t, r("crl", "import", crlFile)...); code != exitUsage || !strings.Contains(errs, "local data directory only") {
		t.Errorf("crl import with --server: %d %s", code, errs)
	}
	os.WriteFile(tokFile, []byte("garbage"), 0o600)
	if _, errs, code := cli(t, r("tenants", "list")...); code == 0 || !strings.Contains(errs, "unauthenticated") {
		t.Errorf("bad token: %d %s", code, errs)
	}
}
