// Package openssltest checks certificate chains with the openssl command,
// an outside implementation, in tests. A test skips when openssl is not
// installed (.ci/run installs it).
package openssltest

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Verify runs 'openssl verify -x509_strict' on chain (leaf first, its
// sub-CAs after it) to root and fails t unless it answers OK.
func Verify(t testing.TB, root *x509.Certificate, chain []*x509.Certificate) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIP: openssl not installed (.ci/run installs it)")
	}
	dir := t.TempDir()
	write := func(name string, certs ...*x509.Certificate) string {
		var b []byte
		for _, c := range certs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"verify", "-x509_strict", "-CAfile", write("root.pem", root)}
	if len(chain) > 1 {
		args = append(args, "-untrusted", write("subs.pem", chain[1:]...))
	}
	out, err := exec.Command("openssl", append(args, write("leaf.pem", chain[0]))...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Errorf("openssl verify: %v %s", err, out)
	}
}

// CSR has openssl make a key of algorithm (a genpkey algorithm: ed448,
// or EC with curve, e.g. "EC:P-521") and a CSR for subj ("/CN=...") with
// it, and returns the CSR's DER.
func CSR(t testing.TB, algorithm, subj string) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIP: openssl not installed (.ci/run installs it)")
	}
	dir := t.TempDir()
	key, csr := filepath.Join(dir, "key.pem"), filepath.Join(dir, "csr.der")
	gen := []string{"genpkey", "-algorithm", algorithm, "-out", key}
	if curve, ok := strings.CutPrefix(algorithm, "EC:"); ok {
		gen = []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + curve, "-out", key}
	}
	for _, args := range [][]string{gen, {"req", "-new", "-key", key, "-subj", subj, "-outform", "DER", "-out", csr}} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v %s", args, err, out)
		}
	}
	der, err := os.ReadFile(csr)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
