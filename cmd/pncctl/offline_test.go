package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/internal/softhsmtest"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// TestOfflineRoots runs the offline-root flow of docs/key-ceremony.md with
// pncctl and a real pncd: the roots are created apart (init --root-dir)
// and are not in the data directory; pncd starts, issues, answers OCSP and
// publishes the sub-CAs' CRLs; a sub-CA CSR is signed at the root and
// imported; a root CRL signed at the root is imported and served, and the
// sub-CA it revokes is revoked online (OCSP, ca list, issuance).
func TestOfflineRoots(t *testing.T) {
	dir := t.TempDir()
	pncd := filepath.Join(dir, "pncd")
	if out, err := exec.Command("go", "build", "-o", pncd, "../pncd").CombinedOutput(); err != nil {
		t.Fatalf("build pncd: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	on, usb := filepath.Join(dir, "pncd-data"), filepath.Join(dir, "usb", "pki-root")
	org := "Stadtwerke Musterstadt Energie GmbH"

	mustCLI(t, "--data", on, "init", "--org", org, "--country", "DE", "--public-url", base, "--root-dir", usb)
	for _, root := range []string{"v2g-root", "mo-root", "csms-root"} {
		if _, err := os.Stat(filepath.Join(on, "keys", root+".key")); !os.IsNotExist(err) {
			t.Errorf("%s key still in the data directory: %v", root, err)
		}
		if fi, err := os.Stat(filepath.Join(usb, "keys", root+".key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s key in the root directory: %v %v", root, fi, err)
		}
	}
	if out := mustCLI(t, "--data", on, "ca", "list"); !strings.Contains(out, "offline") {
		t.Errorf("ca list does not show the roots offline:\n%s", out)
	}

	// The online side issues with the roots away.
	mustCLI(t, "--data", on, "tenants", "create", "--name", "cpo", "--kind", "cpo", "--operator-id", "DE*SWM", "--org", org)
	leafFile := filepath.Join(dir, "leaf.pem")
	os.WriteFile(leafFile, []byte(mustCLI(t, "--data", on, "issue", "--profile", "iso15118-2/secc", "--csr", writeCSR(t, dir, "DE*SWM*E1*1"), "--tenant", "cpo", "--chain")), 0o644)
	chain, err := datadir.ReadCertificates(leafFile)
	if err != nil || len(chain) < 3 {
		t.Fatalf("issued chain: %d, %v", len(chain), err)
	}

	// pncd starts with the roots away and serves.
	srv := exec.Command(pncd, "--data", on, "--listen", addr, "--ocsp-presign-interval", "-1s")
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	waitReady(t, base)
	ctx := context.Background()
	client := &ocsp.Client{}
	ocspStatus := func(cert, issuer *x509.Certificate) int {
		t.Helper()
		r, err := client.Check(ctx, cert, issuer, base+"/ocsp")
		if err != nil {
			t.Fatalf("OCSP for %s: %v", cert.Subject.CommonName, err)
		}
		return r.Status
	}
	if got := ocspStatus(chain[0], chain[1]); got != ocsp.Good {
		t.Errorf("SECC leaf: OCSP %d, want good", got)
	}
	if got := ocspStatus(chain[2], rootCert(t, usb, "v2g-root")); got != ocsp.Good {
		t.Errorf("CPO Sub-CA 1 under the offline root: OCSP %d, want good", got)
	}
	if code, body := get(t, base+"/crl/cpo-sub2.crl"); code != 200 {
		t.Errorf("CRL of cpo-sub2: %d", code)
	} else if crl, err := x509.ParseRevocationList(body); err != nil || crl.CheckSignatureFrom(chain[1]) != nil {
		t.Errorf("CRL of cpo-sub2: %v", err)
	}
	if code, body := get(t, base+"/crl/v2g-root.crl"); code != 404 || !strings.Contains(string(body), ca.CodeCAOffline) {
		t.Errorf("CRL of the offline root before an import: %d %s", code, body)
	}

	// A successor of CPO Sub-CA 1, its key made online, signed at the root.
	csr := filepath.Join(dir, "cpo-sub1-next.csr")
	mustCLI(t, "--data", on, "ca", "renew", "--name", "cpo-sub1", "--new-name", "cpo-sub1-next", "--rekey", "--out", csr)
	signed := filepath.Join(dir, "cpo-sub1-next.pem")
	mustCLI(t, "--data", usb, "ca", "sign", csr, "--profile", "iso15118-2/cpo-sub1", "--out", signed)
	if out := mustCLI(t, "--data", on, "ca", "import", signed); !strings.Contains(out, "cpo-sub1-next") {
		t.Errorf("ca import:\n%s", out)
	}
	next, err := datadir.ReadCertificates(signed)
	if err != nil {
		t.Fatal(err)
	}

	// The root revokes it and signs its CRL; the online side imports it.
	mustCLI(t, "--data", usb, "revoke", "--issuer", "v2g-root", "--serial", ca.SerialHex(next[0].SerialNumber), "--reason", "keyCompromise")
	crlFile := filepath.Join(dir, "v2g-root.crl")
	mustCLI(t, "--data", usb, "crl", "--issuer", "v2g-root", "--validity", "2160h", "--out", crlFile)
	if out := mustCLI(t, "--data", on, "crl", "import", crlFile); !strings.Contains(out, "1 certificates newly revoked") {
		t.Errorf("crl import:\n%s", out)
	}
	if _, errs, code := cli(t, "--data", on, "crl", "import", crlFile); code == 0 || !strings.Contains(errs, "number") {
		t.Errorf("importing the same CRL again: exit %d %s", code, errs)
	}
	want, _ := os.ReadFile(crlFile)
	if code, body := get(t, base+"/crl/v2g-root.crl"); code != 200 || string(body) != string(want) {
		t.Errorf("pncd serves the imported root CRL: %d, same %v", code, string(body) == string(want))
	}
	if got := ocspStatus(next[0], rootCert(t, usb, "v2g-root")); got != ocsp.Revoked {
		t.Errorf("revoked sub-CA under the offline root: OCSP %d, want revoked", got)
	}
	// A new OCSP responder for the offline root: its key made online, its
	// certificate signed at the root; a responder opening the data
	// directory signs with it.
	rcsr, rcert := filepath.Join(dir, "v2g-root-ocsp.csr"), filepath.Join(dir, "v2g-root-ocsp.pem")
	mustCLI(t, "--data", on, "ocsp", "responder-csr", "--ca", "v2g-root", "--out", rcsr)
	mustCLI(t, "--data", usb, "ca", "sign", rcsr, "--profile", "ocsp/responder", "--issuer", "v2g-root", "--days", "90", "--out", rcert)
	mustCLI(t, "--data", on, "ocsp", "responder-import", rcert)
	responder, err := datadir.ReadCertificates(rcert)
	if err != nil {
		t.Fatal(err)
	}
	d, err := datadir.Open(ctx, on, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	local, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := (&ocsp.Client{Local: local}).Check(ctx, chain[2], rootCert(t, usb, "v2g-root"), ""); err != nil || !r.Signer.Equal(responder[0]) {
		t.Errorf("OCSP for CPO Sub-CA 1 not signed by the imported responder: %v", err)
	}

	var cas []struct{ Name, Status string }
	json.Unmarshal([]byte(mustCLI(t, "--data", on, "ca", "list", "-o", "json")), &cas)
	for _, c := range cas {
		if c.Name == "cpo-sub1-next" && c.Status != "revoked" {
			t.Errorf("ca list: cpo-sub1-next is %s", c.Status)
		}
	}
	if _, errs, code := cli(t, "--data", on, "ca", "create", "--profile", "iso15118-2/cpo-sub2", "--name", "x", "--parent", "cpo-sub1-next"); code == 0 || !strings.Contains(errs, "revoked") {
		t.Errorf("a revoked CA signed a sub-CA: exit %d %s", code, errs)
	}
	// Root operations are refused online, with a reason.
	if _, errs, code := cli(t, "--data", on, "crl", "--issuer", "v2g-root", "--validity", "24h"); code == 0 || !strings.Contains(errs, ca.CodeCAOffline) {
		t.Errorf("crl signed for an offline root online: exit %d %s", code, errs)
	}
	// Its current CRL is the imported one.
	if out, errs, code := cli(t, "--data", on, "crl", "--issuer", "v2g-root"); code != 0 || out != string(want) {
		t.Errorf("crl of an offline root online: exit %d %s, %d bytes, want the imported %d", code, errs, len(out), len(want))
	}
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(string(body), `pncpki_crl_next_update_seconds{ca="v2g-root",ca_key="offline"}`) {
		t.Errorf("metrics lack the imported root CRL's next update")
	}
}

func writeCSR(t *testing.T, dir, cn string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name(cn, "", "", "")}, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, strings.NewReplacer("*", "_").Replace(cn)+".csr")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644)
	return path
}

// rootCert reads a root's certificate from the root directory's store.
func rootCert(t *testing.T, usb, name string) *x509.Certificate {
	t.Helper()
	d, err := datadir.Open(context.Background(), usb, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, err := d.CA.Authority(name)
	if err != nil {
		t.Fatal(err)
	}
	return a.Cert
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	for range 100 {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("pncd did not become ready")
}

// TestOfflineRootPKCS11: a root whose key is in an HSM (SoftHSM2) goes
// offline as a file-key root does: the online store records it as
// offline:, the root directory keeps its pkcs11: URI and signs with it
// (its CRL), and the online side issues from its sub-CAs.
func TestOfflineRootPKCS11(t *testing.T) {
	keyURI := softhsmtest.Token(t) + ";id=%0a%0b;object=v2g-root-hsm?pin-value=1234"
	softhsmtest.Key(t, keyURI)

	ctx := context.Background()
	dir := t.TempDir()
	d, err := datadir.Open(ctx, filepath.Join(dir, "pncd-data"), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	org := "Stadtwerke Musterstadt Energie GmbH"
	for _, cfg := range []ca.CAConfig{
		{Name: "v2g-root", Profile: policies.ISO2V2GRoot, KeyURI: keyURI, CommonName: "V2G Root CA", Organization: org, Country: "DE"},
		{Name: "cpo-sub1", Profile: policies.ISO2CPOSub1, Parent: "v2g-root", CommonName: "CPO Sub-CA 1", Organization: org, Country: "DE"},
		{Name: "cpo-sub2", Profile: policies.ISO2CPOSub2, Parent: "cpo-sub1", CommonName: "CPO Sub-CA 2", Organization: org, Country: "DE"},
	} {
		if _, err := d.CA.CreateCA(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	usb := filepath.Join(dir, "usb")
	if err := moveRoots(ctx, d, usb, io.Discard); err != nil {
		t.Fatal(err)
	}
	if rec, err := d.Store.CA(ctx, "v2g-root"); err != nil || rec.KeyURI != store.OfflineKeyURI {
		t.Errorf("online root key %q, %v", rec.KeyURI, err)
	}
	if a, err := d.CA.Authority("v2g-root"); err != nil || !a.Offline {
		t.Errorf("online root not offline: %v", err)
	}
	if _, err := d.CA.IssueForKey(ctx, policies.OCSPResponder, "cpo-sub2", mustKey(t).Public(), policies.Subject{CommonName: "x"}, policies.Period{}); err != nil {
		t.Errorf("the online sub-CA does not issue: %v", err)
	}

	root, err := datadir.Open(ctx, usb, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if rec, err := root.Store.CA(ctx, "v2g-root"); err != nil || rec.KeyURI != keyURI {
		t.Errorf("root directory's key %q, %v", rec.KeyURI, err)
	}
	a, err := root.CA.Authority("v2g-root")
	if err != nil || a.Offline {
		t.Fatalf("root directory cannot sign with the HSM: %v", err)
	}
	der, err := root.CA.CRL(ctx, "v2g-root", 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil || crl.CheckSignatureFrom(a.Cert) != nil {
		t.Errorf("ARL signed in the HSM does not verify: %v", err)
	}
	if _, _, err := d.CA.ImportCRL(ctx, der); err != nil {
		t.Errorf("online import of the HSM-signed ARL: %v", err)
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
