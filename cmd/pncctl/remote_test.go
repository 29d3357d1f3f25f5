package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/store"
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
	// Counted now: the SECC certificate is revoked.
	if out := mustCLI(t, r("certs", "counts", "--tenant", "cpo1")...); !regexp.MustCompile(`iso15118-2/secc\s+0\s+0\s+1\n`).MatchString(out) || !strings.Contains(out, "counted ") {
		t.Errorf("certs counts: %s", out)
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
	// The installation log, in pages of the API's.
	for i := range 3 {
		if err := d.Store.PutInstallation(ctx, &store.InstallationRecord{At: time.Now(), Station: "CS-1", Action: "Install", PCID: "WMI00000000000001",
			EMSP: "emsp1", ResponseCode: "FAILED_ContractCanceled", Reason: "contract_cancelled", Size: 24 + i, Limit: 7500}); err != nil {
			t.Fatal(err)
		}
	}
	if out := mustCLI(t, r("contracts", "installations", "--tenant", "emsp1", "--limit", "2")...); strings.Count(out, "FAILED_ContractCanceled") != 2 || !strings.Contains(out, "26/7500") {
		t.Errorf("contracts installations: %s", out)
	}
	if out := mustCLI(t, r("contracts", "installations", "-o", "json")...); strings.Count(out, `"response_code": "FAILED_ContractCanceled"`) != 3 {
		t.Errorf("contracts installations -o json: %s", out)
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
	// A CRL named by its CA's profile; signing one is local only.
	if out := mustCLI(t, r("crl", "--issuer", "iso15118-2/cpo-sub2")...); !strings.HasPrefix(out, "0") {
		t.Errorf("crl by profile: %q", out[:min(len(out), 20)])
	}
	if _, errs, code := cli(t, r("crl", "--issuer", "cpo-sub2", "--validity", "24h")...); code != exitUsage || !strings.Contains(errs, "drop --server") {
		t.Errorf("crl --validity with --server: %d %s", code, errs)
	}

	// Both modes answer alike: ca list from the server and from its data
	// directory, where pncctl serves the same API in process.
	remoteCAs := mustCLI(t, r("ca", "list", "-o", "json")...)
	if localCAs := mustCLI(t, "--data", d.Path, "ca", "list", "-o", "json"); localCAs != remoteCAs {
		t.Errorf("ca list differs:\nremote %s\nlocal  %s", remoteCAs, localCAs)
	}
	var cas []struct {
		Name   string `json:"name"`
		Key    string `json:"key"`
		Parent string `json:"parent"`
		Live   int    `json:"live_certificates"`
	}
	json.Unmarshal([]byte(remoteCAs), &cas)
	for _, c := range cas {
		if c.Name == "cpo-sub2" && (c.Key == "" || c.Parent != "cpo-sub1" || c.Live != 0) { // the one it issued is revoked
			t.Errorf("ca list: %+v", c)
		}
	}

	// A station's details, as JSON.
	mustCLI(t, r("stations", "put", "--id", "CS-2", "--tenant", "cpo1", "--evse-id", "DE*ABC*E2", "--exi-response-limit", "7500")...)
	var st struct {
		ID        string `json:"id"`
		Limit     int    `json:"exi_response_limit"`
		Installed []any  `json:"installed"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, r("stations", "show", "--id", "CS-2", "-o", "json")...)), &st); err != nil || st.ID != "CS-2" || st.Limit != 7500 || st.Installed == nil {
		t.Errorf("stations show -o json: %+v %v", st, err)
	}
	if _, errs, code := cli(t, r("stations", "show", "--id", "CS-9")...); code != exitNotFound {
		t.Errorf("stations show of an unknown station: %d %s", code, errs)
	}

	// Tokens: revoked by the token itself, listed with their state.
	tok2, errs, _ := cli(t, r("token", "create", "--tenant", "cpo1", "--ttl", "1h")...)
	id2 := strings.Fields(strings.TrimPrefix(errs, "token id "))[0]
	tok2File := filepath.Join(dir, "cpo1.token")
	os.WriteFile(tok2File, []byte(tok2), 0o600)
	if out := mustCLI(t, r("token", "list")...); !strings.Contains(out, id2) || strings.Contains(out, id) {
		t.Errorf("token list (valid ones): %s", out)
	}
	mustCLI(t, r("token", "revoke", "--file", tok2File)...)
	var toks []map[string]string
	json.Unmarshal([]byte(mustCLI(t, r("token", "list", "--all", "-o", "json")...)), &toks)
	states := map[string]string{}
	for _, tk := range toks {
		states[tk["id"]] = tk["state"]
	}
	if states[id] != "revoked" || states[id2] != "revoked" || len(toks) != 2 {
		t.Errorf("token list --all: %v", toks)
	}
	os.WriteFile(tok2File, []byte("not a token"), 0o600)
	if _, errs, code := cli(t, r("token", "revoke", "--file", tok2File)...); code != exitRefused || !strings.Contains(errs, "token") {
		t.Errorf("token revoke --file of garbage: %d %s", code, errs)
	}

	// OAuth clients.
	if out := mustCLI(t, r("oauth-clients", "create", "--id", "csms", "--tenant", "cpo1")...); !strings.Contains(out, "client_secret: ") {
		t.Errorf("oauth-clients create: %s", out)
	}
	if _, errs, code := cli(t, r("oauth-clients", "create", "--id", "csms", "--tenant", "cpo1")...); code != exitRefused || !strings.Contains(errs, "oauth_client.exists") {
		t.Errorf("oauth-clients create twice: %d %s", code, errs)
	}
	if _, errs, code := cli(t, r("oauth-clients", "create", "--id", "x", "--tenant", "nobody")...); code != exitRefused || !strings.Contains(errs, "tenant.unknown") {
		t.Errorf("oauth-clients create for no tenant: %d %s", code, errs)
	}
	mustCLI(t, r("oauth-clients", "revoke", "--id", "csms")...)
	if out := mustCLI(t, r("oauth-clients", "list")...); !strings.Contains(out, "csms") || !strings.Contains(out, "revoked") {
		t.Errorf("oauth-clients list: %s", out)
	}
	if _, errs, code := cli(t, r("oauth-clients", "revoke", "--id", "nope")...); code != exitNotFound {
		t.Errorf("oauth-clients revoke of none: %d %s", code, errs)
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
