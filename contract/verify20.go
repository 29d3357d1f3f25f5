package contract

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/pncpki/pncpki/contract/exi"
)

// VerifyMessage20 checks the header Signature of a decoded ISO 15118-20
// message (exi.ISO20) and returns the certificate it verifies with: a
// CertificateInstallationReq is signed by the OEM provisioning
// certificate it carries, a CertificateInstallationRes by the first
// certificate of its CPSCertificateChain. Every Reference's digest must
// match the element its URI names, encoded alone in the -20 fragment
// grammar; SignedInfo is signed as its XML Signature fragment.
//
// Which bytes a vehicle's signature covers is ambiguous in the sources
// (PNC-FACTS-20.md): the element the URI names
// (OEMProvisioningCertificateChain), or the CertificateInstallationReq
// without the header's Signature, as EVerest's -20 code digests. Both are
// accepted.
func VerifyMessage20(msg *exi.Element) (*x509.Certificate, error) {
	sig := msg.Child("Header").Child("Signature")
	if sig == nil {
		return nil, errors.New("the message is not signed")
	}
	var signerChain *exi.Element
	switch msg.Name.Local {
	case "CertificateInstallationReq":
		signerChain = msg.Child("OEMProvisioningCertificateChain")
	case "CertificateInstallationRes":
		signerChain = msg.Child("CPSCertificateChain")
	default:
		return nil, fmt.Errorf("%s: not a message whose signer it carries", msg.Name.Local)
	}
	signer, err := parseCertValue(signerChain.Child("Certificate").Val())
	if err != nil {
		return nil, fmt.Errorf("the signer's certificate: %w", err)
	}
	si := sig.Child("SignedInfo")
	if a, _ := si.Child("CanonicalizationMethod").Attr("Algorithm"); a != algCanonicalEXI {
		return signer, fmt.Errorf("canonicalization %q, want %s", a, algCanonicalEXI)
	}
	method, _ := si.Child("SignatureMethod").Attr("Algorithm")
	refs := si.All("Reference")
	if len(refs) == 0 {
		return signer, errors.New("SignedInfo has no Reference")
	}
	elems := signedElements(msg)
	for _, ref := range refs {
		uri, _ := ref.Attr("URI")
		id, _ := strings.CutPrefix(uri, "#")
		el := elems[id]
		if el == nil {
			return signer, fmt.Errorf("reference %q names no element of the message", uri)
		}
		digestMethod, _ := ref.Child("DigestMethod").Attr("Algorithm")
		want, err := base64.StdEncoding.DecodeString(ref.Child("DigestValue").Val())
		if err != nil {
			return signer, fmt.Errorf("DigestValue: %w", err)
		}
		candidates := []*exi.Element{el}
		if msg.Name.Local == "CertificateInstallationReq" {
			candidates = append(candidates, withoutSignature(msg))
		}
		matched := false
		for _, c := range candidates {
			frag, err := exi.ISO20.EncodeFragment(c)
			if err != nil {
				return signer, fmt.Errorf("encode %s: %w", c.Name.Local, err)
			}
			d, err := Digest20(digestMethod, frag)
			if err != nil {
				return signer, err
			}
			matched = matched || bytes.Equal(d, want)
		}
		if !matched {
			return signer, fmt.Errorf("digest of %s does not match", uri)
		}
	}
	value, err := base64.StdEncoding.DecodeString(sig.Child("SignatureValue").Val())
	if err != nil {
		return signer, fmt.Errorf("SignatureValue: %w", err)
	}
	siEXI, err := exi.XMLDSig.EncodeFragment(si)
	if err != nil {
		return signer, fmt.Errorf("encode SignedInfo: %w", err)
	}
	return signer, VerifySignedInfo20(method, siEXI, value, signer)
}

// withoutSignature is msg with a Header that has no Signature.
func withoutSignature(msg *exi.Element) *exi.Element {
	c := *msg
	c.Children = make([]*exi.Element, 0, len(msg.Children))
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
