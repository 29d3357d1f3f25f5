package exi_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pncpki/pncpki/contract/exi"
)

// oracle20 is an ISO 15118-20 vector file (PNC-FACTS-20.md): libcbv2g's
// streams with what they decode to, the signed fragments and SignedInfo.
type oracle20 struct {
	Vectors []struct {
		Name      string         `json:"name"`
		EXIHex    string         `json:"exi_hex"`
		Decoded   map[string]any `json:"decoded"`
		Signature struct {
			SignedFragment    string `json:"signed_fragment"`
			SignedFragmentHex string `json:"signed_fragment_exi_hex"`
			SignedInfoHex     string `json:"signedinfo_exi_hex"`
		} `json:"signature"`
	} `json:"vectors"`
}

// Vectors20 are the two ISO 15118-20 vector files, by security variant.
var Vectors20 = map[string]string{"P-521": "iso15118-20_oracle-libcbv2g-p521.json", "Ed448": "iso15118-20_oracle-libcbv2g-ed448.json"}

// TestVectors20: every vector of both -20 files decodes to its recorded
// values and re-encodes bit for bit; SignedInfo is the XML Signature
// fragment it was signed as; and the signed element, taken from the
// decoded message and encoded alone in the -20 fragment grammar, gives
// the bytes that were digested. For the installation request that is the
// CertificateInstallationReq without the header's Signature (the reading
// EVerest's -20 code has; PNC-FACTS-20.md).
func TestVectors20(t *testing.T) {
	for variant, file := range Vectors20 {
		var o oracle20
		readVectors(t, file, &o)
		if len(o.Vectors) < 15 {
			t.Fatalf("%s: %d vectors", file, len(o.Vectors))
		}
		for _, v := range o.Vectors {
			t.Run(variant+"/"+v.Name, func(t *testing.T) {
				stream := unhex(t, v.EXIHex)
				el, err := exi.ISO20.Decode(stream)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				out, err := exi.ISO20.Encode(el)
				if err != nil || !bytes.Equal(out, stream) {
					t.Fatalf("re-encoded stream differs (%v):\n got %x\nwant %x", err, out, stream)
				}
				checkDecoded(t, "", &exi.Element{Children: []*exi.Element{el}}, v.Decoded)
				sig := v.Signature
				if sig.SignedInfoHex == "" {
					return
				}
				si := fragmentRoundTrip(t, exi.XMLDSig, "SignedInfo", unhex(t, sig.SignedInfoHex))
				if len(si) != 1 || si[0].Name.Local != "SignedInfo" {
					t.Fatalf("SignedInfo fragment holds %v", si)
				}
				signed := signedElement(el, sig.SignedFragment)
				if signed == nil {
					t.Fatalf("no %s in the message", sig.SignedFragment)
				}
				frag, err := exi.ISO20.EncodeFragment(signed)
				if err != nil || !bytes.Equal(frag, unhex(t, sig.SignedFragmentHex)) {
					t.Fatalf("%s as a fragment (%v):\n got %x\nwant %s", sig.SignedFragment, err, frag, sig.SignedFragmentHex)
				}
			})
		}
	}
}

// signedElement finds the element a vector's signature covers in the
// decoded message: "CertificateInstallationReq(unsigned header)" is the
// message without its header's Signature.
func signedElement(msg *exi.Element, name string) *exi.Element {
	if base, ok := strings.CutSuffix(name, "(unsigned header)"); ok && msg.Name.Local == base {
		c := *msg
		c.Children = nil
		for _, ch := range msg.Children {
			if ch.Name.Local == "Header" {
				h := *ch
				h.Children = nil
				for _, hc := range ch.Children {
					if hc.Name.Local != "Signature" {
						h.Children = append(h.Children, hc)
					}
				}
				ch = &h
			}
			c.Children = append(c.Children, ch)
		}
		return &c
	}
	if found := findAll(msg, name); len(found) > 0 {
		return found[0]
	}
	return nil
}
