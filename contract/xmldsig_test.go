package contract

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSignaturesOfVectors verifies the CPS signatures and reference digests
// of the RISE-V2G CertificateInstallationRes (both namespace variants, each
// over its own SignedInfo) and of the libcbv2g oracle responses.
func TestSignaturesOfVectors(t *testing.T) {
	dir := filepath.Join(specDir(t), "exi-vectors")
	var rise struct {
		Certificates struct {
			CPSLeaf struct {
				DERBase64 string `json:"der_base64"`
			} `json:"cps_leaf"`
		} `json:"certificates"`
		Variants map[string]struct {
			References []struct {
				ID     string `json:"id"`
				EXIHex string `json:"exi_hex"`
				SHA256 string `json:"sha256_hex"`
			} `json:"references"`
			SignedInfo struct {
				EXIHex string `json:"exi_hex"`
			} `json:"signed_info"`
			SignatureValue struct {
				Hex string `json:"hex"`
			} `json:"signature_value"`
		} `json:"variants"`
	}
	readJSON(t, filepath.Join(dir, "iso15118-2_CertificateInstallationRes_signature_rise-v2g.json"), &rise)
	der, _ := base64.StdEncoding.DecodeString(rise.Certificates.CPSLeaf.DERBase64)
	cps, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pub := cps.PublicKey.(*ecdsa.PublicKey)
	if len(rise.Variants) != 2 {
		t.Fatalf("%d RISE-V2G variants, want 2", len(rise.Variants))
	}
	for name, v := range rise.Variants {
		for _, r := range v.References {
			if got := Digest(unhex(t, r.EXIHex)); !strings.EqualFold(hex.EncodeToString(got), r.SHA256) {
				t.Errorf("%s %s: digest %x, want %s", name, r.ID, got, r.SHA256)
			}
		}
		if err := Verify(pub, unhex(t, v.SignedInfo.EXIHex), unhex(t, v.SignatureValue.Hex)); err != nil {
			t.Errorf("RISE-V2G %s: %v", name, err)
		}
	}
	// The conformant signature does not verify over the other variant's
	// SignedInfo.
	sig := unhex(t, rise.Variants["msgbody_namespace"].SignatureValue.Hex)
	if Verify(pub, unhex(t, rise.Variants["empty_namespace"].SignedInfo.EXIHex), sig) == nil {
		t.Error("the MsgBody-namespace signature verifies over the empty-namespace SignedInfo")
	}

	var oracle struct {
		Vectors []struct {
			Name      string
			Signature struct {
				CertPEM string `json:"signer_certificate_pem"`
				InfoHex string `json:"signed_info_exi_hex"`
				SigHex  string `json:"signature_value_rs_hex"`
			} `json:"signature"`
			Fragments []struct {
				ID     string `json:"Id"`
				EXIHex string `json:"exi_hex"`
				SHA256 string `json:"sha256"`
			} `json:"fragments"`
		} `json:"vectors"`
	}
	readJSON(t, filepath.Join(dir, "iso15118-2_oracle-libcbv2g.json"), &oracle)
	n := 0
	for _, v := range oracle.Vectors {
		if v.Signature.InfoHex == "" {
			continue
		}
		n++
		b, _ := pem.Decode([]byte(v.Signature.CertPEM))
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(cert.PublicKey.(*ecdsa.PublicKey), unhex(t, v.Signature.InfoHex), unhex(t, v.Signature.SigHex)); err != nil {
			t.Errorf("oracle %s: %v", v.Name, err)
		}
		for _, f := range v.Fragments {
			if got := Digest(unhex(t, f.EXIHex)); !strings.EqualFold(hex.EncodeToString(got), f.SHA256) {
				t.Errorf("oracle %s %s: digest %x, want %s", v.Name, f.ID, got, f.SHA256)
			}
		}
	}
	if n != 4 {
		t.Errorf("%d signed oracle vectors, want 4", n)
	}
}

func TestSignVerify(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	info := []byte("SignedInfo EXI")
	sig, err := Sign(key, info)
	if err != nil || len(sig) != SignatureSize {
		t.Fatalf("%v %d", err, len(sig))
	}
	if err := Verify(&key.PublicKey, info, sig); err != nil {
		t.Fatal(err)
	}
	sig[5] ^= 1
	if Verify(&key.PublicKey, info, sig) == nil {
		t.Error("a tampered signature verified")
	}
	if Verify(&key.PublicKey, info, sig[:63]) == nil {
		t.Error("a short signature verified")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := Sign(p384, info); err == nil {
		t.Error("a P-384 key signed")
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}
