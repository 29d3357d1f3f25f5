// Package softhsmtest gives tests a fresh SoftHSM2 token and keys on it, the PKCS#11
// device CI installs, so that HSM keys are tested for real.
package softhsmtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.step.sm/crypto/kms"
	"go.step.sm/crypto/kms/apiv1"
)

// Token initialises a SoftHSM2 token (label pncpki, user PIN 1234) in a
// temporary directory and returns the PKCS#11 URI prefix naming it. It
// skips the test when SoftHSM2 is not installed.
func Token(t testing.TB) string {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Skip("softhsm2-util not installed: skipping PKCS#11 test (.ci/run installs softhsm2)")
	}
	var module string
	for _, m := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib64/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	if module == "" {
		t.Skip("libsofthsm2.so not found")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	os.MkdirAll(filepath.Join(dir, "tokens"), 0o700)
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", "pncpki", "--pin", "1234", "--so-pin", "5678").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	return "pkcs11:module-path=" + module + ";token=pncpki"
}

// Key makes a P-256 key on the token at keyURI (Token's prefix with the
// key's id, object and PIN), for a CA to use through that URI.
func Key(t testing.TB, keyURI string) {
	t.Helper()
	KeyFor(t, keyURI, apiv1.ECDSAWithSHA256)
}

// KeyFor is Key for the key of alg: apiv1.ECDSAWithSHA512 makes a P-521
// key (ISO 15118-20).
func KeyFor(t testing.TB, keyURI string, alg apiv1.SignatureAlgorithm) {
	t.Helper()
	km, err := kms.New(context.Background(), apiv1.Options{Type: apiv1.PKCS11, URI: keyURI})
	if err != nil {
		t.Fatal(err)
	}
	defer km.Close()
	if _, err := km.CreateKey(&apiv1.CreateKeyRequest{Name: keyURI, SignatureAlgorithm: alg}); err != nil {
		t.Fatal(err)
	}
}
