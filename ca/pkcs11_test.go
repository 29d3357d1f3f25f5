package ca_test

import (
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.step.sm/crypto/kms"
	"go.step.sm/crypto/kms/apiv1"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
)

// softHSM initialises a SoftHSM2 token in a temporary directory and returns
// the PKCS#11 URI prefix of the token.
func softHSM(t *testing.T) string {
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

// TestPKCS11SoftHSM runs a CPO Sub-CA 2 whose key lives in SoftHSM2: the
// key is generated on the token, the sub-CA is certified by the file-key
// CPO Sub-CA 1, and SECC leaves are signed through the pkcs11: URI.
func TestPKCS11SoftHSM(t *testing.T) {
	token := softHSM(t)
	keyURI := token + ";id=%01%02;object=cpo-sub2-hsm?pin-value=1234"
	km, err := kms.New(context.Background(), apiv1.Options{Type: apiv1.PKCS11, URI: keyURI})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := km.CreateKey(&apiv1.CreateKeyRequest{Name: keyURI, SignatureAlgorithm: apiv1.ECDSAWithSHA256}); err != nil {
		t.Fatal(err)
	}
	km.Close()

	e := newEnv(t)
	ctx := context.Background()
	a, err := e.svc.CreateCA(ctx, ca.CAConfig{Name: "cpo-sub2-hsm", Profile: policies.ISO2CPOSub2, Parent: "cpo-sub1", KeyURI: keyURI})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := e.st.CA(ctx, "cpo-sub2-hsm")
	if rec.KeyURI != keyURI {
		t.Errorf("stored key URI %q", rec.KeyURI)
	}
	iss, err := e.svc.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, Issuer: "cpo-sub2-hsm", Tenant: "cpo1", CSR: csrFor(t, p256(t), ca.Name("DE*ABC*E77", "", "", ""))})
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.Cert().CheckSignatureFrom(a.Cert); err != nil {
		t.Fatalf("leaf not signed by the HSM key: %v", err)
	}
	if _, err := x509.ParseRevocationList(mustCRL(t, e, "cpo-sub2-hsm")); err != nil {
		t.Fatal(err)
	}
}

func mustCRL(t *testing.T, e *env, issuer string) []byte {
	t.Helper()
	der, err := e.svc.CRL(context.Background(), issuer, 0)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
