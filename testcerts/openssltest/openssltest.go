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
