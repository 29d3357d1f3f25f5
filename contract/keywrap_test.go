package contract

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func specDir(t *testing.T) string {
	dir := os.Getenv("PNCPKI_SPEC")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "spec")
	}
	if _, err := os.Stat(filepath.Join(dir, "exi-vectors")); err != nil {
		t.Skipf("SKIP: spec data not found in %s (set PNCPKI_SPEC): %v", dir, err)
	}
	return dir
}

func parseKey(t *testing.T, p string) *ecdsa.PrivateKey {
	t.Helper()
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		t.Fatal("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyEncryptionOracle reproduces the encrypted contract keys of the
// libcbv2g oracle vectors (installation and update) byte for byte from
// their ephemeral key and IV, and decrypts them with the recipient's key.
func TestKeyEncryptionOracle(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(specDir(t), "exi-vectors", "iso15118-2_oracle-libcbv2g.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vectors []struct {
			Name       string
			Encryption *struct {
				RecipientCertificatePEM string `json:"recipient_certificate_pem"`
				RecipientPrivateKeyPEM  string `json:"recipient_private_key_pem"`
				EphemeralPrivateKeyPEM  string `json:"ephemeral_private_key_pem"`
				EphemeralPublicHex      string `json:"ephemeral_public_key_uncompressed_hex"`
				ZHex                    string `json:"ecdh_shared_secret_Z_hex"`
				AESKeyHex               string `json:"aes128_key_hex"`
				IVHex                   string `json:"iv_hex"`
				EncryptedHex            string `json:"encrypted_private_key_value_hex (IV||ciphertext)"`
				ContractKeyPEM          string `json:"contract_private_key_pem"`
			} `json:"encryption"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range doc.Vectors {
		e := v.Encryption
		if e == nil {
			continue
		}
		n++
		t.Run(v.Name, func(t *testing.T) {
			recipient := parseKey(t, e.RecipientPrivateKeyPEM)
			ephECDSA := parseKey(t, e.EphemeralPrivateKeyPEM)
			eph, err := ephECDSA.ECDH()
			if err != nil {
				t.Fatal(err)
			}
			contractKey := parseKey(t, e.ContractKeyPEM)
			recipPub, _ := recipient.PublicKey.ECDH()
			z, _ := eph.ECDH(recipPub)
			if !bytes.Equal(z, unhex(t, e.ZHex)) || !bytes.Equal(kdf(z), unhex(t, e.AESKeyHex)) {
				t.Fatalf("Z or KDF differ")
			}
			enc, dh, err := encryptWith(eph, unhex(t, e.IVHex), contractKey, &recipient.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, unhex(t, e.EncryptedHex)) || !bytes.Equal(dh, unhex(t, e.EphemeralPublicHex)) {
				t.Errorf("encrypted %x dh %x, want %s %s", enc, dh, e.EncryptedHex, e.EphemeralPublicHex)
			}
			got, err := DecryptPrivateKey(unhex(t, e.EncryptedHex), unhex(t, e.EphemeralPublicHex), recipient)
			if err != nil || !got.Equal(contractKey) {
				t.Errorf("decrypt: %v", err)
			}
			// The recipient key is the one in the recipient certificate.
			b, _ := pem.Decode([]byte(e.RecipientCertificatePEM))
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil || !recipient.PublicKey.Equal(cert.PublicKey) {
				t.Errorf("recipient certificate does not hold the recipient key: %v", err)
			}
		})
	}
	if n != 2 {
		t.Errorf("%d vectors with encryption, want 2 (installation and update)", n)
	}
}

func TestKeyEncryptionRoundTrip(t *testing.T) {
	recipient, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enc, dh, err := EncryptPrivateKey(rand.Reader, key, &recipient.PublicKey)
	if err != nil || len(enc) != EncryptedKeySize || len(dh) != DHPublicKeySize || dh[0] != 4 {
		t.Fatalf("%v %d %d", err, len(enc), len(dh))
	}
	got, err := DecryptPrivateKey(enc, dh, recipient)
	if err != nil || !got.Equal(key) {
		t.Fatalf("round trip: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if got, err := DecryptPrivateKey(enc, dh, other); err == nil && got.Equal(key) {
		t.Error("another key decrypted it")
	}
	for _, bad := range [][2][]byte{{enc[:47], dh}, {enc, dh[:64]}, {enc, append([]byte{5}, dh[1:]...)}} {
		if _, err := DecryptPrivateKey(bad[0], bad[1], recipient); err == nil {
			t.Errorf("malformed input %d/%d accepted", len(bad[0]), len(bad[1]))
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, _, err := EncryptPrivateKey(rand.Reader, key, &p384.PublicKey); err == nil {
		t.Error("a P-384 recipient was accepted")
	}
}
