package ed448x509

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/cloudflare/circl/sign/ed448"
)

// vectorPKI is the Ed448 test PKI of the ISO 15118-20 vector set, made
// with openssl by others: an outside check of what this package reads.
func vectorPKI(t *testing.T) string {
	dir := os.Getenv("PNCPKI_SPEC")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "spec")
	}
	dir = filepath.Join(dir, "exi-vectors", "oracle-pki-20-ed448")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("SKIP: spec data not found (set PNCPKI_SPEC): %v", err)
	}
	return dir
}

func readPEM(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	return b.Bytes
}

func cert(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(readPEM(t, filepath.Join(dir, name+".pem")))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVectorPKI(t *testing.T) {
	dir := vectorPKI(t)
	names := []string{"V2G_ROOT_CA", "CPS_SUB_CA1", "CPS_SUB_CA2", "CPS_LEAF", "MO_ROOT_CA", "MO_SUB_CA1", "MO_SUB_CA2",
		"CONTRACT_LEAF", "OEM_ROOT_CA", "OEM_SUB_CA1", "OEM_SUB_CA2", "OEM_PROV_LEAF"}
	certs := map[string]*x509.Certificate{}
	for _, n := range names {
		c := cert(t, dir, n)
		certs[n] = c
		if !SignedWithEd448(c) || PublicKey(c) == nil {
			t.Fatalf("%s: not an Ed448 certificate", n)
		}
		key, err := ParsePKCS8(readPEM(t, filepath.Join(dir, n+".key.pem")))
		if err != nil {
			t.Fatalf("%s key: %v", n, err)
		}
		priv, ok := key.(ed448.PrivateKey)
		if !ok || !priv.Public().(ed448.PublicKey).Equal(PublicKey(c)) {
			t.Fatalf("%s: the key file is not the certificate's key", n)
		}
		if !bytes.Equal(MarshalPKCS8(priv), readPEM(t, filepath.Join(dir, n+".key.pem"))) {
			t.Errorf("%s: MarshalPKCS8 differs from openssl's encoding", n)
		}
		if !bytes.Equal(MarshalPublicKey(PublicKey(c)), c.RawSubjectPublicKeyInfo) {
			t.Errorf("%s: MarshalPublicKey differs from the certificate's SubjectPublicKeyInfo", n)
		}
	}
	now := certs["CONTRACT_LEAF"].NotBefore.Add(time.Hour)
	for _, tc := range []struct {
		leaf, root string
		inter      []string
		want       int // chain length, 0: refused
	}{
		{"CONTRACT_LEAF", "MO_ROOT_CA", []string{"MO_SUB_CA1", "MO_SUB_CA2"}, 4},
		{"CPS_LEAF", "V2G_ROOT_CA", []string{"CPS_SUB_CA2", "CPS_SUB_CA1"}, 4},
		{"OEM_PROV_LEAF", "OEM_ROOT_CA", []string{"OEM_SUB_CA2", "OEM_SUB_CA1", "MO_SUB_CA2"}, 4},
		{"OEM_PROV_LEAF", "MO_ROOT_CA", []string{"OEM_SUB_CA2", "OEM_SUB_CA1"}, 0},
		{"OEM_PROV_LEAF", "OEM_ROOT_CA", []string{"OEM_SUB_CA2"}, 0},
	} {
		var inter []*x509.Certificate
		for _, n := range tc.inter {
			inter = append(inter, certs[n])
		}
		chain, err := Verify(certs[tc.leaf], []*x509.Certificate{certs[tc.root]}, inter, now)
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("%s to %s through %v: verified", tc.leaf, tc.root, tc.inter)
		case tc.want > 0 && (err != nil || len(chain) != tc.want):
			t.Errorf("%s to %s: %d certificates, %v", tc.leaf, tc.root, len(chain), err)
		}
	}
	if _, err := Verify(certs["CONTRACT_LEAF"], []*x509.Certificate{certs["MO_ROOT_CA"]},
		[]*x509.Certificate{certs["MO_SUB_CA1"], certs["MO_SUB_CA2"]}, certs["CONTRACT_LEAF"].NotAfter.Add(time.Hour)); err == nil {
		t.Error("an expired chain verified")
	}
	// A certificate whose signature was changed does not verify.
	bad := *certs["CONTRACT_LEAF"]
	bad.Signature = bytes.Clone(bad.Signature)
	bad.Signature[3] ^= 1
	if err := CheckSignature(&bad, certs["MO_SUB_CA2"]); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("changed signature: %v", err)
	}

	// The OEM certificate's X448 key is the one of its X448 key file.
	alt, err := AltX448Key(certs["OEM_PROV_LEAF"])
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePKCS8(readPEM(t, filepath.Join(dir, "OEM_PROV_LEAF.x448.key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	var pub x448.Key
	x448.KeyGen(&pub, k.(*x448.Key))
	if pub != *alt {
		t.Errorf("subjectAltPublicKeyInfo X448 key %x, the key file's %x", alt[:], pub[:])
	}
	if _, err := AltX448Key(certs["CONTRACT_LEAF"]); err == nil {
		t.Error("a contract certificate has an X448 key")
	}
}

// TestScalar checks the contract key transport's scalar against the
// vector set's: its recorded plaintext for the contract key, and
// CheckScalar's refusals.
func TestScalar(t *testing.T) {
	dir := vectorPKI(t)
	key, err := ParsePKCS8(readPEM(t, filepath.Join(dir, "CONTRACT_LEAF.key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	priv := key.(ed448.PrivateKey)
	s := Scalar(priv)
	const want = "06992701e4eb3f67330bd5fc0269ba9228af95c26bf9036aa15bbfbc6d44f5c8cdeca547db82099c58ec79b8e0f84fe309fc6258b6b6f8f3"
	if hex.EncodeToString(s) != want {
		t.Fatalf("scalar %x, the vector's %s", s, want)
	}
	pub := priv.Public().(ed448.PublicKey)
	if err := CheckScalar(s, pub); err != nil {
		t.Fatal(err)
	}
	other, _, _ := ed448.GenerateKey(nil)
	if err := CheckScalar(s, other); err == nil {
		t.Error("the scalar matched another key")
	}
	if err := CheckScalar(bytes.Repeat([]byte{0xff}, 56), pub); err == nil || !strings.Contains(err.Error(), "order") {
		t.Errorf("a scalar above the order: %v", err)
	}
	if err := CheckScalar(s[1:], pub); err == nil {
		t.Error("a short scalar was taken")
	}
}

func FuzzParsePKCS8(f *testing.F) {
	_, priv, _ := ed448.GenerateKey(nil)
	f.Add(MarshalPKCS8(priv))
	f.Add(MarshalX448PKCS8(&x448.Key{1}))
	f.Fuzz(func(t *testing.T, der []byte) {
		k, err := ParsePKCS8(der)
		if err != nil {
			return
		}
		switch k := k.(type) {
		case ed448.PrivateKey:
			if _, err := ParsePKCS8(MarshalPKCS8(k)); err != nil {
				t.Fatal(err)
			}
		case *x448.Key:
		default:
			t.Fatalf("%T", k)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	pub, _, _ := ed448.GenerateKey(nil)
	f.Add(MarshalPublicKey(pub))
	f.Add(MarshalX448PublicKey(&x448.Key{2}))
	f.Fuzz(func(t *testing.T, spki []byte) {
		if k, err := ParsePublicKey(spki); err == nil && !bytes.Equal(MarshalPublicKey(k), spki) {
			t.Fatal("Ed448 key does not re-encode")
		}
		if k, err := ParseX448PublicKey(spki); err == nil && !bytes.Equal(MarshalX448PublicKey(k), spki) {
			t.Fatal("X448 key does not re-encode")
		}
	})
}
