package contract

import (
	"bytes"
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

	"github.com/pncpki/pncpki/contract/exi"
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

// TestVectorSignaturesThroughCodec checks the signatures of the vectors
// the way the installer does, from the decoded messages: the thesimmermon
// request (signed by a CharIN QA OEM provisioning certificate), the four
// oracle messages, and the RISE-V2G response, whose SignedInfo pncpki's
// own signer rebuilds byte for byte.
func TestVectorSignaturesThroughCodec(t *testing.T) {
	dir := filepath.Join(specDir(t), "exi-vectors")
	var sim struct {
		Vectors []struct {
			Name string `json:"name"`
			Hex  string `json:"exi_hex"`
		} `json:"vectors"`
	}
	readJSON(t, filepath.Join(dir, "iso15118-2_CertificateInstallationReq_thesimmermon-libcbv2g.json"), &sim)
	for _, v := range sim.Vectors {
		if !strings.HasSuffix(v.Name, "_signed") {
			continue
		}
		doc, err := exi.ISO2.Decode(unhex(t, v.Hex))
		if err != nil {
			t.Fatal(err)
		}
		body := doc.Child("Body")
		leaf, err := parseCertValue(body.Child("CertificateInstallationReq").Child("OEMProvisioningCert").Val())
		if err != nil {
			t.Fatal(err)
		}
		if err := verifySignature(doc.Child("Header").Child("Signature"), body, leaf.PublicKey.(*ecdsa.PublicKey), "id1"); err != nil {
			t.Errorf("thesimmermon request: %v", err)
		}
	}

	var oracle struct {
		Vectors []struct {
			Name      string `json:"name"`
			Hex       string `json:"exi_hex"`
			Signature struct {
				CertPEM string `json:"signer_certificate_pem"`
			} `json:"signature"`
			Fragments []struct {
				ID string `json:"Id"`
			} `json:"fragments"`
		} `json:"vectors"`
	}
	readJSON(t, filepath.Join(dir, "iso15118-2_oracle-libcbv2g.json"), &oracle)
	for _, v := range oracle.Vectors {
		doc, err := exi.ISO2.Decode(unhex(t, v.Hex))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode([]byte(v.Signature.CertPEM))
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, f := range v.Fragments {
			ids = append(ids, f.ID)
		}
		if err := verifySignature(doc.Child("Header").Child("Signature"), doc.Child("Body"), cert.PublicKey.(*ecdsa.PublicKey), ids...); err != nil {
			t.Errorf("oracle %s: %v", v.Name, err)
		}
		// The ResponseCode is not signed; a signed value is.
		if rc := doc.Child("Body").Children[0].Child("ResponseCode"); rc != nil {
			rc.Value = "FAILED"
			if err := verifySignature(doc.Child("Header").Child("Signature"), doc.Child("Body"), cert.PublicKey.(*ecdsa.PublicKey), ids...); err != nil {
				t.Errorf("oracle %s: %v after changing the unsigned ResponseCode", v.Name, err)
			}
		}
		signedElements(doc.Child("Body"))["id1"].Children[0].Value = base64.StdEncoding.EncodeToString([]byte("changed"))
		if err := verifySignature(doc.Child("Header").Child("Signature"), doc.Child("Body"), cert.PublicKey.(*ecdsa.PublicKey), ids...); err == nil {
			t.Errorf("oracle %s: verifies after a signed value changed", v.Name)
		}
	}

	var rise struct {
		Keys struct {
			Pub string `json:"signing_public_key_hex"`
		} `json:"keys"`
		Variants map[string]struct {
			References []struct {
				ID     string `json:"id"`
				EXIHex string `json:"exi_hex"`
			} `json:"references"`
			SignedInfo struct {
				EXIHex string   `json:"exi_hex"`
				Order  []string `json:"reference_order"`
			} `json:"signed_info"`
		} `json:"variants"`
	}
	readJSON(t, filepath.Join(dir, "iso15118-2_CertificateInstallationRes_signature_rise-v2g.json"), &rise)
	v := rise.Variants["msgbody_namespace"]
	byID := map[string]*exi.Element{}
	for _, r := range v.References {
		els, err := exi.ISO2.DecodeFragment(unhex(t, r.EXIHex))
		if err != nil {
			t.Fatal(err)
		}
		byID[r.ID] = els[0]
	}
	var ordered []*exi.Element
	for _, uri := range v.SignedInfo.Order {
		ordered = append(ordered, byID[strings.TrimPrefix(uri, "#")])
	}
	_, got, err := signedInfo(ordered...)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, v.SignedInfo.EXIHex); !bytes.Equal(got, want) {
		t.Fatalf("SignedInfo differs from RISE-V2G's:\n got %x\nwant %x", got, want)
	}
}
