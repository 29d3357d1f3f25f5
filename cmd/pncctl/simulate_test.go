package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
)

// TestSimulateEV runs pncctl contracts simulate-ev against a pncd API
// (real TLS, real store) as a CPO's CSMS would forward the vehicle, under
// a real operator's hierarchy (a 35-character organization, a country, a
// public https URL): installation and update over OCPP 2.0.1 and over the
// 1.6 Plug and Charge DataTransfer, each within 5,600 characters, then the
// installation again after the contract was cancelled.
func TestSimulateEV(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := datadir.Open(ctx, filepath.Join(dir, "data"), ca.Options{PublicURL: "https://pki.stadtwerke-musterstadt.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*policies.Tenant{
		{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}},
		{Name: "cpo1", Kind: policies.TenantCPO, OperatorIDs: []string{"DEABC"}},
	} {
		if err := d.Store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	if err := d.Store.PutStation(ctx, &store.Station{ID: "CS-1", Tenant: "cpo1", SerialNumber: "SN-1", OCPPVersion: "2.0.1", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	pool := &contract.Pool{Store: d.Store, CA: d.CA}
	if _, err := pool.Put(ctx, "emsp1", store.Contract{EMAID: "DE8AAC12345678D", PCID: testcerts.PCID, Default: true}); err != nil {
		t.Fatal(err)
	}
	oem, err := testcerts.Generate(3, now)
	if err != nil {
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
	bridge := &ocppsec.Bridge{CA: d.CA, Store: d.Store, Anchors: anchors, Contracts: pool,
		Installer: &contract.Installer{Pool: pool, CPS: []contract.CPS{cps},
			OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
				return []*x509.Certificate{oem.Get("oem-root").Cert}, oem.Chain("oem-prov")[:2], nil
			}}}
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := (&api.Server{CA: d.CA, Store: d.Store, Key: key, OCPP: bridge, Contracts: pool}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	caFile := filepath.Join(dir, "server-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	tok, _ := key.Mint("csms", "cpo1", auth.RoleOperator, time.Hour, time.Now())
	tokFile := filepath.Join(dir, "cpo.token")
	os.WriteFile(tokFile, []byte(tok), 0o600)
	prov := oem.Get("oem-prov")
	certFile, keyFile := filepath.Join(dir, "oem.pem"), filepath.Join(dir, "oem.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: prov.Cert.Raw}), 0o644)
	if err := ca.WriteKeyFile(keyFile, prov.Key); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(dir, "ev")
	r := func(args ...string) []string {
		return append([]string{"--server", srv.URL, "--server-ca", caFile, "--token-file", tokFile, "contracts", "simulate-ev", "--station", "CS-1"}, args...)
	}
	size := regexp.MustCompile(`response   Accepted in \S+, \d+ bytes of EXI \((\d+) base64 characters\)`)
	fits := func(name, out string) {
		t.Helper()
		m := size.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%s: no accepted answer:\n%s", name, out)
		}
		if n, _ := strconv.Atoi(m[1]); n > 5600 {
			t.Errorf("%s: %d base64 characters, over 5600", name, n)
		}
		t.Logf("%s: %s base64 characters", name, m[1])
	}
	for _, version := range []string{"2.0.1", "1.6"} {
		out := mustCLI(t, r("--ocpp-version", version, "--pcid", testcerts.PCID, "--oem-cert", certFile, "--oem-key", keyFile, "--save", saved)...)
		for _, want := range []string{"eMAID DE8AAC12345678D", "key        decrypted", "saved"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s install report lacks %q:\n%s", version, want, out)
			}
		}
		fits(version+" installation", out)
		if fi, err := os.Stat(filepath.Join(saved, "contract.key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("saved contract key: %v %v", fi, err)
		}
		out = mustCLI(t, r("--ocpp-version", version, "--update", "--contract-cert", filepath.Join(saved, "contract.pem"), "--contract-key", filepath.Join(saved, "contract.key"))...)
		if !strings.Contains(out, "CertificateUpdateReq") || !strings.Contains(out, "key        decrypted") {
			t.Errorf("%s update report:\n%s", version, out)
		}
		fits(version+" update", out)
	}
	// A PCID that is not the certificate's is refused before anything is sent.
	if _, errs, code := cli(t, r("--pcid", "WMIOTHER000000001", "--oem-cert", certFile, "--oem-key", keyFile)...); code == 0 || !strings.Contains(errs, "is not the PCID") {
		t.Errorf("wrong --pcid: exit %d %s", code, errs)
	}
	if _, _, err := pool.Cancel(ctx, "emsp1", "DE8AAC12345678D"); err != nil {
		t.Fatal(err)
	}
	out, _, code := cli(t, r("--oem-cert", certFile, "--oem-key", keyFile)...)
	if code != 1 || !strings.Contains(out, "ContractCancelled") || !strings.Contains(out, "FAILED_ContractCanceled") {
		t.Errorf("cancelled contract: exit %d\n%s", code, out)
	}
}

// TestEXIDecodeEncode turns a request into JSON and back, byte for byte,
// and reads hex as well as base64.
func TestEXIDecodeEncode(t *testing.T) {
	oem, err := testcerts.Generate(3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ev := &contract.EV{ProvisioningCert: oem.Get("oem-prov").Cert, ProvisioningKey: oem.Get("oem-prov").Key, Roots: []*x509.Certificate{oem.Get("v2g-root").Cert}}
	req, err := ev.InstallationRequest()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "req.b64")
	os.WriteFile(in, []byte(base64.StdEncoding.EncodeToString(req)+"\n"), 0o644)
	js := mustCLI(t, "exi", "decode", in)
	if !strings.Contains(js, `"CertificateInstallationReq"`) || !strings.Contains(js, `"@Id": "id1"`) {
		t.Fatalf("decode:\n%s", js)
	}
	jf := filepath.Join(dir, "req.json")
	os.WriteFile(jf, []byte(js), 0o644)
	if got := strings.TrimSpace(mustCLI(t, "exi", "encode", jf)); got != base64.StdEncoding.EncodeToString(req) {
		t.Fatalf("encode gave another stream")
	}
	if got := strings.TrimSpace(mustCLI(t, "exi", "encode", "--format", "hex", jf)); !strings.HasPrefix(got, "8098") {
		t.Errorf("hex: %s", got)
	}
	if _, errs, code := cli(t, "exi", "decode", jf); code == 0 || !strings.Contains(errs, "exi:") {
		t.Errorf("decoding JSON as EXI: exit %d %s", code, errs)
	}
}

// TestEXI20: an ISO 15118-20 CertificateInstallationRes (libcbv2g's signed
// P-521 vector) decodes with --schema iso15118-20 and encodes back to the
// same stream; the -2 schema refuses it.
func TestEXI20(t *testing.T) {
	spec := os.Getenv("PNCPKI_SPEC")
	if spec == "" {
		spec = filepath.Join("..", "..", "..", "shared", "spec")
	}
	raw, err := os.ReadFile(filepath.Join(spec, "exi-vectors", "iso15118-20_oracle-libcbv2g-p521.json"))
	if err != nil {
		t.Skipf("SKIP: -20 vectors not found (set PNCPKI_SPEC): %v", err)
	}
	var full struct {
		Vectors []struct {
			Name   string `json:"name"`
			Base64 string `json:"exi_base64"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &full); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, v := range full.Vectors {
		if v.Name != "CertificateInstallationRes_signed" {
			continue
		}
		in := filepath.Join(dir, "res.b64")
		os.WriteFile(in, []byte(v.Base64+"\n"), 0o644)
		js := mustCLI(t, "exi", "decode", "--schema", "iso15118-20", in)
		if !strings.Contains(js, `"SignedInstallationData"`) || !strings.Contains(js, `"ECDHCurve": "SECP521"`) {
			t.Fatalf("decode:\n%.600s", js)
		}
		jf := filepath.Join(dir, "res.json")
		os.WriteFile(jf, []byte(js), 0o644)
		if got := strings.TrimSpace(mustCLI(t, "exi", "encode", "--schema", "iso15118-20", jf)); got != v.Base64 {
			t.Fatal("encode gave another stream")
		}
		if _, _, code := cli(t, "exi", "decode", in); code == 0 {
			t.Error("the -2 schema decoded a -20 message")
		}
		return
	}
	t.Fatal("no CertificateInstallationRes_signed vector")
}

// TestDepositCommands: an external MO's contract data is deposited,
// listed and removed with pncctl.
func TestDepositCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mustCLI(t, "--data", data, "init")
	mustCLI(t, "--data", data, "tenants", "create", "--name", "emsp-own", "--kind", "emsp", "--provider-id", "DE*PNC")
	pki, err := testcerts.Generate(4, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := pki.Get("contract")
	var chain strings.Builder
	for _, cert := range append([]*x509.Certificate{c.Cert}, pki.Chain("contract")[:2]...) {
		chain.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	chainFile := filepath.Join(dir, "chain.pem")
	os.WriteFile(chainFile, []byte(chain.String()), 0o644)
	enc, dh, err := contract.EncryptPrivateKey(rand.Reader, c.Key, pki.Get("oem-prov").Cert.PublicKey.(*ecdsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	put := []string{"--data", data, "contracts", "deposit", "put", "--pcid", testcerts.PCID, "--chain", chainFile, "--tenant", "emsp-own",
		"--encrypted-key", hex.EncodeToString(enc), "--dh-public-key", base64.StdEncoding.EncodeToString(dh)}
	// The data directory's own MO root is an anchor: a foreign chain is
	// refused until its root is imported.
	if _, errs, code := cli(t, put...); code == 0 || !strings.Contains(errs, "MO root") {
		t.Fatalf("foreign MO chain: exit %d %s", code, errs)
	}
	anchors := filepath.Join(dir, "anchors")
	os.MkdirAll(filepath.Join(anchors, "MORootCertificate"), 0o755)
	writePEMFile(t, filepath.Join(anchors, "MORootCertificate"), "mo-root.pem", pki.Get("mo-root").Cert)
	if out := mustCLI(t, append(put, "--trust-anchors", anchors)...); !strings.Contains(out, testcerts.EMAID) {
		t.Errorf("put: %s", out)
	}
	if out := mustCLI(t, "--data", data, "contracts", "deposit", "list"); !strings.Contains(out, testcerts.PCID) || !strings.Contains(out, "emsp-own") {
		t.Errorf("list: %s", out)
	}
	mustCLI(t, "--data", data, "contracts", "deposit", "delete", "--pcid", testcerts.PCID)
	if out := mustCLI(t, "--data", data, "contracts", "deposit", "list"); strings.Contains(out, testcerts.PCID) {
		t.Errorf("after delete: %s", out)
	}
}

func writePEMFile(t *testing.T, dir, name string, c *x509.Certificate) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
