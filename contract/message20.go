package contract

import (
	"crypto"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/pncpki/pncpki/contract/exi"
)

// ISO15118v20Schema is the iso15118SchemaVersion of ISO 15118-20
// CommonMessages in OCPP 2.1's Get15118EVCertificate.
const ISO15118v20Schema = "urn:iso:std:iso:15118:-20:CommonMessages"

// sigRef is one Reference of an ISO 15118-20 signature: the URI's Id and
// the element whose EXI fragment is digested (for a vehicle's request,
// the message without the header's Signature: see VerifyMessage20).
type sigRef struct {
	id string
	el *exi.Element
}

// signature20 builds the header Signature of an ISO 15118-20 message
// signed with a P-521 or an Ed448 key: each Reference digests its element
// as an EXI fragment of the -20 schema (SHA-512, or SHAKE256 for Ed448),
// and SignedInfo, as an XML Signature fragment, is signed (sign20).
func signature20(signer crypto.Signer, refs ...sigRef) (*exi.Element, error) {
	sigMethod, digestMethod := methods20(signer)
	var digests []digestRef
	for _, r := range refs {
		frag, err := exi.ISO20.EncodeFragment(r.el)
		if err != nil {
			return nil, fmt.Errorf("encode %s for its digest: %w", r.el.Name.Local, err)
		}
		d, _ := Digest20(digestMethod, frag)
		digests = append(digests, digestRef{r.id, d})
	}
	si := signedInfo20(sigMethod, digestMethod, digests...)
	b, err := exi.XMLDSig.EncodeFragment(si)
	if err != nil {
		return nil, fmt.Errorf("encode SignedInfo: %w", err)
	}
	sig, err := sign20(signer, b)
	if err != nil {
		return nil, err
	}
	return exi.New("Signature", si, exi.Binary("SignatureValue", sig)), nil
}

// digestRef is a Reference's URI Id and digest.
type digestRef struct {
	id     string
	digest []byte
}

// signedInfo20 is the SignedInfo of an ISO 15118-20 signature.
func signedInfo20(sigMethod, digestMethod string, refs ...digestRef) *exi.Element {
	si := exi.New("SignedInfo",
		exi.New("CanonicalizationMethod").WithAttr("Algorithm", algCanonicalEXI),
		exi.New("SignatureMethod").WithAttr("Algorithm", sigMethod))
	for _, r := range refs {
		si.Children = append(si.Children, exi.New("Reference",
			exi.New("Transforms", exi.New("Transform").WithAttr("Algorithm", algCanonicalEXI)),
			exi.New("DigestMethod").WithAttr("Algorithm", digestMethod),
			exi.Binary("DigestValue", r.digest)).WithAttr("URI", "#"+r.id))
	}
	return si
}

// header20 is an ISO 15118-20 MessageHeader; sig may be nil.
func header20(sessionID []byte, timestamp int64, sig *exi.Element) *exi.Element {
	h := exi.New("Header", exi.Text("SessionID", hex.EncodeToString(sessionID)), exi.Text("TimeStamp", strconv.FormatInt(timestamp, 10)))
	if sig != nil {
		h.Children = append(h.Children, sig)
	}
	return h
}

// chain20 is a -20 certificate chain element: Certificate, then the others
// in SubCertificates (always there when required, as in
// ContractCertificateChainType).
func chain20(name string, chain [][]byte, subsRequired bool) *exi.Element {
	e := exi.New(name, exi.Binary("Certificate", chain[0]))
	if len(chain) > 1 || subsRequired {
		subs := exi.New("SubCertificates")
		for _, c := range chain[1:] {
			subs.Children = append(subs.Children, exi.Binary("Certificate", c))
		}
		e.Children = append(e.Children, subs)
	}
	return e
}
