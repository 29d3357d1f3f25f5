package contract

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/pncpki/pncpki/contract/exi"
)

// Algorithm identifiers of ISO 15118-2 XML signatures (Annex J).
const (
	algCanonicalEXI = "http://www.w3.org/TR/canonical-exi/"
	algECDSASHA256  = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	algSHA256       = "http://www.w3.org/2001/04/xmlenc#sha256"
)

// nsDataTypes is the namespace of ISO 15118-2's data types.
const nsDataTypes = "urn:iso:15118:2:2013:MsgDataTypes"

// certChain is a CertificateChainType element: the leaf and up to four
// sub-CAs (the XSD's limit), leaf first, root left out.
func certChain(name, id string, chain []*x509.Certificate) *exi.Element {
	return derChain(name, id, ChainDER(chain))
}

// derChain is certChain for certificates in DER.
func derChain(name, id string, chain [][]byte) *exi.Element {
	e := exi.New(name, exi.Binary("Certificate", chain[0]))
	if id != "" {
		e.WithAttr("Id", id)
	}
	if len(chain) > 1 {
		sub := exi.New("SubCertificates")
		for _, c := range chain[1:] {
			sub.Children = append(sub.Children, exi.Binary("Certificate", c))
		}
		e.Children = append(e.Children, sub)
	}
	return e
}

// parseChain reads a CertificateChainType element, leaf first.
func parseChain(e *exi.Element) ([]*x509.Certificate, error) {
	if e == nil {
		return nil, errors.New("no certificate chain")
	}
	ders := []string{e.Child("Certificate").Val()}
	for _, c := range e.Child("SubCertificates").All("Certificate") {
		ders = append(ders, c.Value)
	}
	var out []*x509.Certificate
	for i, d := range ders {
		c, err := parseCertValue(d)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseCertValue(v string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// signedElements finds, in the body element (ISO 15118-2) or the message
// (ISO 15118-20), every element with an Id, two levels deep; the header,
// whose Signature is not signed, is left out.
func signedElements(body *exi.Element) map[string]*exi.Element {
	out := map[string]*exi.Element{}
	var walk func(e *exi.Element, depth int)
	walk = func(e *exi.Element, depth int) {
		if id, ok := e.Attr("Id"); ok {
			out[id] = e
		}
		if depth < 2 {
			for _, c := range e.Children {
				if c.Name.Local != "Header" {
					walk(c, depth+1)
				}
			}
		}
	}
	walk(body, 0)
	return out
}

// signedInfo builds SignedInfo over elements (each with an Id) as ISO
// 15118-2 Annex J says: every element is digested as its own EXI fragment;
// SignedInfo is returned with its EXI in the XML Signature fragment
// grammar, which is what gets signed.
//
// The tree is made in a few blocks (elements, their child lists,
// attributes, digests) rather than element by element: signing is on the
// installation's critical path, and these were most of its allocations.
func signedInfo(elems ...*exi.Element) (*exi.Element, []byte, error) {
	const perRef = 5 // Reference, Transforms, Transform, DigestMethod, DigestValue
	n := len(elems)
	block := make([]exi.Element, 3+perRef*n)
	kids := make([]*exi.Element, 2+n+3*n+n) // SignedInfo's, then per Reference 3 and per Transforms 1
	attrs := make([]exi.Attr, 2+3*n)
	digests := make([]byte, 0, sha256.Size*n)

	si, canon, method := &block[0], &block[1], &block[2]
	attrs[0] = exi.Attr{Name: exi.QName{Local: "Algorithm"}, Value: algCanonicalEXI}
	attrs[1] = exi.Attr{Name: exi.QName{Local: "Algorithm"}, Value: algECDSASHA256}
	*canon = exi.Element{Name: exi.QName{Local: "CanonicalizationMethod"}, Attrs: attrs[0:1:1]}
	*method = exi.Element{Name: exi.QName{Local: "SignatureMethod"}, Attrs: attrs[1:2:2]}
	kids[0], kids[1] = canon, method
	*si = exi.Element{Name: exi.QName{Local: "SignedInfo"}, Children: kids[0 : 2+n : 2+n]}
	refKids := kids[2+n:]

	var frag []byte // one buffer for every element's fragment
	for i, e := range elems {
		id, _ := e.Attr("Id")
		var err error
		frag, err = exi.ISO2.AppendFragment(frag[:0], e)
		if err != nil {
			return nil, nil, fmt.Errorf("encode %s for its digest: %w", e.Name.Local, err)
		}
		digests = append(digests, Digest(frag)...)

		b := block[3+perRef*i:]
		ref, transforms, transform, digestMethod, digestValue := &b[0], &b[1], &b[2], &b[3], &b[4]
		a := attrs[2+3*i:]
		a[0] = exi.Attr{Name: exi.QName{Local: "Algorithm"}, Value: algCanonicalEXI}
		a[1] = exi.Attr{Name: exi.QName{Local: "Algorithm"}, Value: algSHA256}
		a[2] = exi.Attr{Name: exi.QName{Local: "URI"}, Value: "#" + id}
		k := refKids[4*i:]
		k[0], k[1], k[2], k[3] = transforms, digestMethod, digestValue, transform
		*transform = exi.Element{Name: exi.QName{Local: "Transform"}, Attrs: a[0:1:1]}
		*transforms = exi.Element{Name: exi.QName{Local: "Transforms"}, Children: k[3:4:4]}
		*digestMethod = exi.Element{Name: exi.QName{Local: "DigestMethod"}, Attrs: a[1:2:2]}
		*digestValue = exi.Element{Name: exi.QName{Local: "DigestValue"}, Bytes: digests[len(digests)-sha256.Size:]}
		*ref = exi.Element{Name: exi.QName{Local: "Reference"}, Attrs: a[2:3:3], Children: k[0:3:3]}
		si.Children[2+i] = ref
	}
	b, err := exi.XMLDSig.EncodeFragment(si)
	if err != nil {
		return nil, nil, fmt.Errorf("encode SignedInfo: %w", err)
	}
	return si, b, nil
}

// signature builds the header Signature over elements, signed by signer.
func signature(signer crypto.Signer, elems ...*exi.Element) (*exi.Element, error) {
	si, b, err := signedInfo(elems...)
	if err != nil {
		return nil, err
	}
	sig, err := Sign(signer, b)
	if err != nil {
		return nil, err
	}
	return exi.New("Signature", si, exi.Binary("SignatureValue", sig)), nil
}

// verifySignature checks a header Signature: its algorithms, that it
// covers exactly the wanted Ids of the body, every digest, and the
// signature with pub. SignedInfo is tried in the XML Signature fragment
// grammar, as ISO 15118-2 signers use it, then in the MsgDef one that
// some tools use.
func verifySignature(sig, body *exi.Element, pub *ecdsa.PublicKey, want ...string) error {
	if sig == nil {
		return errors.New("the request is not signed")
	}
	si := sig.Child("SignedInfo")
	if si == nil {
		return errors.New("no SignedInfo")
	}
	if a, _ := si.Child("CanonicalizationMethod").Attr("Algorithm"); a != algCanonicalEXI {
		return fmt.Errorf("canonicalization %q, want %s", a, algCanonicalEXI)
	}
	if a, _ := si.Child("SignatureMethod").Attr("Algorithm"); a != algECDSASHA256 {
		return fmt.Errorf("signature method %q, want %s", a, algECDSASHA256)
	}
	elems := signedElements(body)
	covered := map[string]bool{}
	var frag []byte
	for _, ref := range si.All("Reference") {
		uri, _ := ref.Attr("URI")
		id, ok := strings.CutPrefix(uri, "#")
		el := elems[id]
		if !ok || el == nil {
			return fmt.Errorf("reference %q names no element of the body", uri)
		}
		if a, _ := ref.Child("DigestMethod").Attr("Algorithm"); a != algSHA256 {
			return fmt.Errorf("digest method %q, want %s", a, algSHA256)
		}
		var err error
		if frag, err = exi.ISO2.AppendFragment(frag[:0], el); err != nil {
			return fmt.Errorf("encode %s: %w", el.Name.Local, err)
		}
		got, err := base64.StdEncoding.DecodeString(ref.Child("DigestValue").Val())
		if err != nil || !bytes.Equal(got, Digest(frag)) {
			return fmt.Errorf("digest of %s does not match", uri)
		}
		covered[id] = true
	}
	for _, id := range want {
		if !covered[id] {
			return fmt.Errorf("the signature does not cover #%s", id)
		}
	}
	value, err := base64.StdEncoding.DecodeString(sig.Child("SignatureValue").Val())
	if err != nil {
		return fmt.Errorf("SignatureValue: %w", err)
	}
	var last error
	for _, s := range []*exi.Schema{exi.XMLDSig, exi.ISO2} {
		siEXI, err := s.EncodeFragment(si)
		if err != nil {
			return fmt.Errorf("encode SignedInfo: %w", err)
		}
		if last = Verify(pub, siEXI, value); last == nil {
			return nil
		}
	}
	return last
}

// rootID is a ListOfRootCertificateIDs entry.
type rootID struct {
	issuer string
	serial *big.Int
}

func rootIDs(list *exi.Element) []rootID {
	var out []rootID
	for _, r := range list.All("RootCertificateID") {
		s, ok := new(big.Int).SetString(r.Child("X509SerialNumber").Val(), 10)
		if ok {
			out = append(out, rootID{issuer: r.Child("X509IssuerName").Val(), serial: s})
		}
	}
	return out
}

// names reports whether an entry names root: the serial number must be
// equal and the issuer name must hold the root's common name. Vehicles
// write the issuer name in several forms (RFC 4514, OpenSSL's, even a
// Python repr), so the serial decides and the name confirms.
func (r rootID) names(root *x509.Certificate) bool {
	return r.serial.Cmp(root.SerialNumber) == 0 &&
		strings.Contains(strings.ToLower(r.issuer), strings.ToLower(root.Subject.CommonName))
}
