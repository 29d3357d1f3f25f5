package contract

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// The sizes of an answer's fixed-length parts ([V2G2-815..819]; Annex J).
const (
	encryptedKeyLen   = 48 // IV || AES-128-CBC of the 32-byte scalar
	dhPublicKeyLen    = 65 // uncompressed P-256 point
	signatureValueLen = 64 // raw r || s
	maxSessionIDLen   = 8  // sessionIDType
	maxEMAIDLen       = 15 // eMAIDType; pncpki's contract CNs always carry the check digit
)

// signedParts are the four elements of an answer the CPS signs, with the
// Ids Annex J gives them.
func signedParts(chain [][]byte, encrypted, dhPublic []byte, emaid string) []*exi.Element {
	return []*exi.Element{
		derChain("ContractSignatureCertChain", "id1", chain),
		exi.Binary("ContractSignatureEncryptedPrivateKey", encrypted).WithAttr("Id", "id2"),
		exi.Binary("DHpublickey", dhPublic).WithAttr("Id", "id3"),
		// eMAID is signed in the relaxed fragment grammar, which knows
		// Id in three namespaces: this one is EMAIDType's.
		exi.Text("eMAID", emaid).WithAttrNS(nsDataTypes, "Id", "id4"),
	}
}

// encodeAnswer encodes a CertificateInstallationRes (CertificateUpdateRes
// for updates) around its signed parts; sig is the header Signature, nil
// for none.
func encodeAnswer(action Action, code, sessionID string, cpsChain [][]byte, signed []*exi.Element, sig *exi.Element) ([]byte, error) {
	name := "CertificateInstallationRes"
	if action == ActionUpdate {
		name = "CertificateUpdateRes"
	}
	body := exi.New(name, exi.Text("ResponseCode", code), derChain("SAProvisioningCertificateChain", "", cpsChain))
	body.Children = append(body.Children, signed...)
	header := exi.New("Header", exi.Text("SessionID", sessionID))
	if sig != nil {
		header.Children = append(header.Children, sig)
	}
	out, err := exi.ISO2.Encode(exi.New("V2G_Message", header, exi.New("Body", body)))
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", name, err)
	}
	return out, nil
}

// AnswerSize is the size in bytes of the EXI of a signed installation (or
// update) answer whose certificates have the given DER lengths (CPS chain
// and contract chain, leaf first, roots left out), for an eMAID of
// emaidLen characters and a SessionID of sessionIDLen bytes.
//
// The size is exact, not estimated: EXI writes a binary value as its
// length and its bytes, a string as its length and its characters (eMAID
// and SessionID have no restricted character set), and every event code's
// width follows from the grammar alone. So an answer of zero bytes and
// placeholder characters of those lengths encodes to exactly as many bytes
// as the real one, which is what this encodes.
func AnswerSize(action Action, cpsChain, contractChain []int, emaidLen, sessionIDLen int) (int, error) {
	if len(cpsChain) == 0 || len(contractChain) == 0 {
		return 0, fmt.Errorf("answer size: a chain is empty")
	}
	blank := func(lens []int) [][]byte {
		out := make([][]byte, len(lens))
		for i, n := range lens {
			out[i] = make([]byte, n)
		}
		return out
	}
	signed := signedParts(blank(contractChain), make([]byte, encryptedKeyLen), make([]byte, dhPublicKeyLen), strings.Repeat("0", emaidLen))
	si, _, err := signedInfo(signed...)
	if err != nil {
		return 0, err
	}
	sig := exi.New("Signature", si, exi.Binary("SignatureValue", make([]byte, signatureValueLen)))
	out, err := encodeAnswer(action, ResponseOK, strings.Repeat("00", sessionIDLen), blank(cpsChain), signed, sig)
	if err != nil {
		return 0, err
	}
	return len(out), nil
}

// failedEMAID is the eMAID of a failure answer when the request named
// none: eMAIDType needs 14 characters.
const failedEMAID = "00000000000000"

// FailureAnswer is the CertificateInstallationRes (CertificateUpdateRes
// for updates) that tells a vehicle why it gets no contract: ResponseCode
// code, and in the elements the schema requires the smallest values it
// allows, as ecosystems send them: one zero byte for each certificate and
// binary value, the request's eMAID (updates) or fourteen zeros, no
// signature (the header's Signature is optional and nothing is signed).
// sessionID is the request's (hex), or "" for 00.
func FailureAnswer(action Action, code, sessionID, emaid string) ([]byte, error) {
	if !sessionIDPattern.MatchString(sessionID) {
		sessionID = "00"
	}
	if len(emaid) < 14 || len(emaid) > maxEMAIDLen {
		emaid = failedEMAID
	}
	zero := []byte{0}
	signed := signedParts([][]byte{zero}, zero, zero, emaid)
	return encodeAnswer(action, code, sessionID, [][]byte{zero}, signed, nil)
}

// boundKey names what an answer's largest size depends on: everything but
// the contract certificate's signature and the contents of the values.
type boundKey struct {
	action          Action
	cps, mo         *x509.Certificate
	emaid, session  int
	generalizedTime bool // a notAfter from 2050 on is two bytes longer
}

// answerBound is the largest size in bytes of the answer that would carry
// a contract certificate for pub and subject from mo, signed by cps: the
// certificate's size from the CA before it signs (ca.Service.MaxDER), the
// answer's from AnswerSize. Bounds are remembered: they change only with
// the chains.
func (in *Installer) answerBound(action Action, req *request, cps *CPS, mo *ca.Authority, pub crypto.PublicKey, subject policies.Subject, validity policies.Period) (int, error) {
	k := boundKey{action: action, cps: cps.Chain[0], mo: mo.Cert, emaid: len(subject.CommonName), session: len(req.sessionID) / 2,
		generalizedTime: validity.AddTo(in.now()).Year() >= 2050}
	if n, ok := in.bounds.Load(k); ok {
		return n.(int), nil
	}
	leaf, err := in.Pool.CA.MaxDER(policies.ISO2Contract, mo.Name, pub, subject, validity)
	if err != nil {
		return 0, err
	}
	n, err := AnswerSize(action, derLens(ChainDER(WithoutRoot(cps.Chain))),
		append([]int{leaf}, derLens(ChainDER(WithoutRoot(mo.Chain)))...), k.emaid, k.session)
	if err != nil {
		return 0, err
	}
	in.bounds.Store(k, n)
	return n, nil
}

// fits refuses contract data (an eMSP's deposit, all its parts known)
// whose answer would exceed maxBase64.
func (in *Installer) fits(action Action, req *request, cps *CPS, chain [][]byte, emaid string, maxBase64 int) error {
	if maxBase64 <= 0 {
		return nil
	}
	n, err := AnswerSize(action, derLens(ChainDER(WithoutRoot(cps.Chain))), derLens(chain), len(emaid), len(req.sessionID)/2)
	if err != nil {
		return err
	}
	if b := base64.StdEncoding.EncodedLen(n); b > maxBase64 {
		return refuse(ResponseFailed, ReasonTooLarge, nil, "the response would be %d base64 characters, over the limit of %d", b, maxBase64)
	}
	return nil
}

func derLens(ders [][]byte) []int {
	out := make([]int, len(ders))
	for i, d := range ders {
		out[i] = len(d)
	}
	return out
}

// FailureFor is the failure answer to exiRequest: its action (Install
// when neither the caller nor the request says), its SessionID and, for
// updates, its eMAID, as far as the request can be read.
func FailureFor(action Action, code string, exiRequest []byte) ([]byte, error) {
	var session, emaid string
	if doc, err := exi.ISO2.Decode(exiRequest); err == nil {
		session = doc.Child("Header").Child("SessionID").Val()
		if upd := doc.Child("Body").Child("CertificateUpdateReq"); upd != nil {
			emaid = upd.Child("eMAID").Val()
			if action == "" {
				action = ActionUpdate
			}
		}
	}
	if action != ActionUpdate {
		action = ActionInstall
	}
	return FailureAnswer(action, code, session, emaid)
}

type installationKey struct{}

// ForStation returns ctx saying which station an installation is for and
// where its exiResponse limit comes from; the audit entry of the contract
// certificate issued for it names both, with the limit.
func ForStation(ctx context.Context, station, limitSource string) context.Context {
	return context.WithValue(ctx, installationKey{}, store.Installation{Station: station, LimitSource: limitSource})
}

func installationFrom(ctx context.Context) store.Installation {
	inst, _ := ctx.Value(installationKey{}).(store.Installation)
	return inst
}
