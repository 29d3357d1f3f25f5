package contract_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudflare/circl/dh/x448"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/ed448x509"
)

// vectors20 is what this test reads of an ISO 15118-20 vector file.
type vectors20 struct {
	PCID    string `json:"pcid"`
	Vectors []struct {
		Name      string `json:"name"`
		EXIHex    string `json:"exi_hex"`
		Signature struct {
			Method            string `json:"signature_method"`
			DigestMethod      string `json:"digest_method"`
			SignerCert        string `json:"signer_cert"`
			DigestHex         string `json:"digest_value_hex"`
			SignedFragmentHex string `json:"signed_fragment_exi_hex"`
			SignedInfoHex     string `json:"signedinfo_exi_hex"`
			ValueHex          string `json:"value_hex"`
		} `json:"signature"`
		Encryption struct {
			PlaintextHex string `json:"plaintext_private_key_hex"`
		} `json:"encryption"`
		Negative struct {
			Expect string `json:"expect"`
		} `json:"negative"`
	} `json:"vectors"`
}

// TestVectors20Crypto checks the cryptography of both ISO 15118-20 vector
// sets the way a verifier and a vehicle do: each signed fragment's digest
// (SHA-512 or SHAKE256) is the one SignedInfo carries, the SignatureValue
// verifies over SignedInfo's EXI with the signer's certificate (ECDSA
// P-521 or Ed448), and each installation answer's contract key decrypts
// with the OEM key (ECDH P-521 or X448, the SHA-512 KDF, AES-256-GCM with
// PCID and SKI) to the recorded plaintext. The negative vectors are
// refused for the reason they carry: a signature that does not verify, a
// key that does not authenticate.
func TestVectors20Crypto(t *testing.T) {
	for variant, dir := range map[string]string{"p521": "oracle-pki-20-p521", "ed448": "oracle-pki-20-ed448"} {
		var vs vectors20
		raw, err := os.ReadFile(filepath.Join(spec20(t), "exi-vectors", "iso15118-20_oracle-libcbv2g-"+variant+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &vs); err != nil {
			t.Fatal(err)
		}
		pki := filepath.Join(spec20(t), "exi-vectors", dir)
		checked := 0
		for _, v := range vs.Vectors {
			t.Run(variant+"/"+v.Name, func(t *testing.T) {
				msg, err := exi.ISO20.Decode(unhexT(t, v.EXIHex))
				if err != nil {
					t.Fatal(err)
				}
				if s := v.Signature; s.SignedInfoHex != "" {
					checked++
					digest, err := contract.Digest20(s.DigestMethod, unhexT(t, s.SignedFragmentHex))
					if err != nil || hex.EncodeToString(digest) != s.DigestHex {
						t.Fatalf("digest %x %v, want %s", digest, err, s.DigestHex)
					}
					si, err := exi.XMLDSig.DecodeFragment(unhexT(t, s.SignedInfoHex))
					if err != nil || len(si) != 1 {
						t.Fatalf("SignedInfo: %v", err)
					}
					if got := b64(t, si[0].Child("Reference").Child("DigestValue").Val()); !bytes.Equal(got, digest) {
						t.Fatalf("SignedInfo's DigestValue %x, the fragment's digest %x", got, digest)
					}
					// The SignatureValue the message carries is the recorded one.
					value := b64(t, msg.Child("Header").Child("Signature").Child("SignatureValue").Val())
					if hex.EncodeToString(value) != s.ValueHex {
						t.Fatalf("SignatureValue in the message differs from the recorded one")
					}
					err = contract.VerifySignedInfo20(s.Method, unhexT(t, s.SignedInfoHex), value, readCert(t, filepath.Join(pki, s.SignerCert+".pem")))
					switch {
					case v.Negative.Expect == "signature_invalid" && err == nil:
						t.Fatal("a bad signature verified")
					case v.Negative.Expect != "signature_invalid" && err != nil:
						t.Fatalf("signature: %v", err)
					}
					// The same from the decoded message alone, where it
					// carries its signer (both readings of what a request's
					// signature covers).
					if msg.Name.Local == "CertificateInstallationReq" || msg.Name.Local == "CertificateInstallationRes" {
						signer, err := contract.VerifyMessage20(msg)
						switch {
						case v.Negative.Expect == "signature_invalid" && (err == nil || !strings.Contains(err.Error(), "does not verify")):
							t.Fatalf("a bad signature: %v", err)
						case v.Negative.Expect != "signature_invalid" && err != nil:
							t.Fatalf("VerifyMessage20: %v", err)
						case signer == nil || !signer.Equal(readCert(t, filepath.Join(pki, s.SignerCert+".pem"))):
							t.Fatalf("signer %v, want %s", signer, s.SignerCert)
						}
					}
				}
				sid := msg.Child("SignedInstallationData")
				if sid == nil || msg.Child("EVSEProcessing").Val() != "Finished" {
					return // an Ongoing answer's SignedInstallationData is a placeholder
				}
				field := sid.Child("SECP521_EncryptedPrivateKey")
				oemKey := any(readECKey(t, filepath.Join(pki, "OEM_PROV_LEAF.key.pem")))
				if field == nil {
					field, oemKey = sid.Child("X448_EncryptedPrivateKey"), readX448Key(t, filepath.Join(pki, "OEM_PROV_LEAF.x448.key.pem"))
				}
				certDER := b64(t, sid.Child("ContractCertificateChain").Child("Certificate").Val())
				contractCert, err := x509.ParseCertificate(certDER)
				if err != nil {
					t.Fatalf("contract certificate: %v", err)
				}
				plain, err := contract.DecryptPrivateKey20(sid.Child("ECDHCurve").Val(), oemKey, b64(t, sid.Child("DHPublicKey").Val()),
					b64(t, field.Val()), vs.PCID, contractCert.SubjectKeyId)
				switch {
				case v.Negative.Expect == "decryption_fails":
					if err == nil || !strings.Contains(err.Error(), "authenticate") {
						t.Fatalf("a corrupted tag: %v", err)
					}
				case err != nil:
					t.Fatalf("decrypt: %v", err)
				case v.Encryption.PlaintextHex != "" && hex.EncodeToString(plain) != v.Encryption.PlaintextHex:
					t.Fatalf("plaintext %x, want %s", plain, v.Encryption.PlaintextHex)
				}
			})
		}
		if checked < 5 {
			t.Errorf("%s: %d signed vectors checked", variant, checked)
		}
	}
}

// spec20 is the specification data directory (PNCPKI_SPEC).
func spec20(t *testing.T) string {
	dir := os.Getenv("PNCPKI_SPEC")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "spec")
	}
	if _, err := os.Stat(filepath.Join(dir, "exi-vectors")); err != nil {
		t.Skipf("SKIP: spec data not found in %s (set PNCPKI_SPEC): %v", dir, err)
	}
	return dir
}

func unhexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemBlock(t *testing.T, path string) []byte {
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

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(pemBlock(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readECKey(t *testing.T, path string) any {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	k, err := x509.ParsePKCS8PrivateKey(pemBlock(t, path))
	if err != nil {
		return nil // an Ed448 key: the X448 one decrypts
	}
	return k
}

// readX448Key reads an X448 PKCS#8 key (RFC 8410), which Go's x509 does
// not know.
func readX448Key(t *testing.T, path string) *x448.Key {
	t.Helper()
	k, err := ed448x509.ParsePKCS8(pemBlock(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	x, ok := k.(*x448.Key)
	if !ok {
		t.Fatalf("%s: not an X448 key", path)
	}
	return x
}
