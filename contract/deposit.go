package contract

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// PutDeposit stores the signed contract data of an eMSP that runs its own
// MO PKI, for one vehicle: the contract certificate chain (leaf first, at
// most two sub-CAs), the contract key encrypted for the vehicle and the
// ephemeral DH public key. pncpki then answers that vehicle's installation
// request with it, only signing and packaging as the CPS. The contract
// certificate must fit the contract profile with an EMAID under the eMSP's
// provider IDs and, with MO roots given, lead to one of them.
func (p *Pool) PutDeposit(ctx context.Context, actingTenant, owner, pcid string, chain []*x509.Certificate, encryptedKey, dhPublic []byte, moRoots []*x509.Certificate) (*store.ContractDeposit, error) {
	if actingTenant != "" {
		if owner != "" && owner != actingTenant {
			return nil, &Error{Code: CodeForbidden, Message: fmt.Sprintf("tenant %s cannot deposit for tenant %s", actingTenant, owner)}
		}
		owner = actingTenant
	}
	pcid, err := policies.NormalizePCID(pcid)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "PCID", Err: err}
	}
	if len(chain) == 0 || len(chain) > 3 {
		return nil, &Error{Code: CodeInvalid, Message: "send the contract certificate and at most two sub-CAs"}
	}
	leaf := chain[0]
	rule := depositRuleOf(leaf)
	if len(encryptedKey) != rule.keyLen {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("the encrypted contract key has %d bytes, want %d (%s)", len(encryptedKey), rule.keyLen, rule.profile)}
	}
	if err := rule.dh(dhPublic); err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "the DH public key", Err: err}
	}
	prof, _ := policies.Lookup(rule.profile)
	if vs := prof.Check(leaf, policies.SECCBoth); len(vs) > 0 {
		return nil, &Error{Code: CodeInvalid, Message: "not a contract certificate: " + vs.Error()}
	}
	emaid, err := policies.ParseEMAID(leaf.Subject.CommonName)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "EMAID of the contract certificate", Err: err}
	}
	t, err := p.Store.Tenant(ctx, owner)
	if errors.Is(err, store.ErrNotFound) || owner == "" {
		return nil, &Error{Code: CodeInvalid, Message: "no eMSP tenant " + owner}
	} else if err != nil {
		return nil, err
	}
	if t.Kind != policies.TenantEMSP {
		return nil, &Error{Code: CodeForbidden, Message: fmt.Sprintf("tenant %s is a %s, not an eMSP", t.Name, t.Kind)}
	}
	if err := t.Permit(prof, policies.Subject{CommonName: emaid.String()}); err != nil {
		return nil, &Error{Code: CodeForbidden, Message: "tenant policy refuses", Err: err}
	}
	if len(moRoots) > 0 {
		if _, err := verifyChain(leaf, moRoots, chain[1:], p.now()); err != nil {
			return nil, &Error{Code: CodeInvalid, Message: "the contract chain does not lead to an MO root", Err: err}
		}
	}
	var der []byte
	for _, c := range chain {
		der = append(der, c.Raw...)
	}
	d := &store.ContractDeposit{PCID: pcid, Tenant: owner, EMAID: emaid.String(), Chain: der,
		EncryptedKey: encryptedKey, DHPublicKey: dhPublic, CreatedAt: p.now().UTC().Truncate(time.Millisecond)}
	if err := p.Store.PutContractDeposit(ctx, d); errors.Is(err, store.ErrExists) {
		return nil, &Error{Code: CodeForbidden, Message: "PCID " + pcid + " has another eMSP's deposit"}
	} else if err != nil {
		return nil, err
	}
	return d, nil
}

// depositRule is what a deposit must hold for its contract certificate's
// ISO 15118 part and variant (the certificate's key tells).
type depositRule struct {
	profile string
	keyLen  int                // the encrypted key's bytes
	dh      func([]byte) error // checks the DH public key
}

func depositRuleOf(leaf *x509.Certificate) depositRule {
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P521() {
		return depositRule{policies.ISO20Contract, fieldLenP521, func(b []byte) error {
			_, err := ecdh.P521().NewPublicKey(b)
			return err
		}}
	}
	if ed448x509.PublicKey(leaf) != nil {
		return depositRule{policies.ISO20EdContract, fieldLenX448, func(b []byte) error {
			_, err := x448DHPublic(b)
			return err
		}}
	}
	return depositRule{policies.ISO2Contract, EncryptedKeySize, func(b []byte) error {
		if _, err := ecdh.P256().NewPublicKey(b); err != nil || len(b) != DHPublicKeySize {
			return fmt.Errorf("not an uncompressed P-256 point: %v", err)
		}
		return nil
	}}
}

// depositProfile is the contract profile of a deposit's certificate: an
// ISO 15118-2 one, or one of an ISO 15118-20 variant.
func depositProfile(d *store.ContractDeposit) (string, error) {
	chain, err := x509.ParseCertificates(d.Chain)
	if err != nil || len(chain) == 0 {
		return "", fmt.Errorf("deposit for %s: %v", d.PCID, err)
	}
	return depositRuleOf(chain[0]).profile, nil
}

// ParseSignedResponse20 is ParseSignedResponse for an ISO 15118-20
// CertificateInstallationRes of either variant: ResponseCode OK, a CPS
// chain that leads to one of v2gRoots, and the CPS signature over
// SignedInstallationData (VerifyMessage20).
func ParseSignedResponse20(data []byte, v2gRoots []*x509.Certificate, now time.Time) (*SignedData, error) {
	msg, err := exi.ISO20.Decode(data)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "not an ISO 15118-20 message", Err: err}
	}
	if msg.Name.Local != "CertificateInstallationRes" {
		return nil, &Error{Code: CodeInvalid, Message: msg.Name.Local + " is not a CertificateInstallationRes"}
	}
	if rc := msg.Child("ResponseCode").Val(); rc != ResponseOK {
		return nil, &Error{Code: CodeInvalid, Message: "ResponseCode " + rc + ", want OK"}
	}
	cps, err := ParseChain20(msg.Child("CPSCertificateChain"))
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "CPSCertificateChain", Err: err}
	}
	if _, err := verifyChain(cps[0], v2gRoots, cps[1:], now); err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "the CPS chain does not lead to a V2G root here", Err: err}
	}
	signer, err := VerifyMessage20(msg)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "CPS signature", Err: err}
	}
	if !signer.Equal(cps[0]) {
		return nil, &Error{Code: CodeInvalid, Message: "the signature is not the CPS chain's leaf's"}
	}
	sid := msg.Child("SignedInstallationData")
	chain, err := ParseChain20(sid.Child("ContractCertificateChain"))
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "ContractCertificateChain", Err: err}
	}
	field := sid.Child("SECP521_EncryptedPrivateKey")
	if field == nil {
		field = sid.Child("X448_EncryptedPrivateKey")
	}
	if field == nil {
		return nil, &Error{Code: CodeInvalid, Message: "no SECP521 or X448 encrypted private key (TPM ones are not taken)"}
	}
	key, err1 := base64.StdEncoding.DecodeString(field.Val())
	dh, err2 := base64.StdEncoding.DecodeString(sid.Child("DHPublicKey").Val())
	if err := errors.Join(err1, err2); err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "SignedInstallationData", Err: err}
	}
	return &SignedData{EMAID: chain[0].Subject.CommonName, ContractChain: chain, EncryptedKey: key, DHPublicKey: dh, CPSChain: cps}, nil
}

// DeleteDeposit removes the deposit of a PCID the tenant may see ("": any).
func (p *Pool) DeleteDeposit(ctx context.Context, actingTenant, pcid string) error {
	n, err := policies.NormalizePCID(pcid)
	if err != nil {
		return &Error{Code: CodeInvalid, Message: "PCID", Err: err}
	}
	d, err := p.Store.ContractDeposit(ctx, n)
	if errors.Is(err, store.ErrNotFound) || err == nil && actingTenant != "" && d.Tenant != actingTenant {
		return &Error{Code: CodeNotFound, Message: "no deposit for " + n}
	} else if err != nil {
		return err
	}
	return p.Store.DeleteContractDeposit(ctx, n)
}

// SignedData is the contract data of a signed CertificateInstallationRes
// another CPS made.
type SignedData struct {
	EMAID         string
	ContractChain []*x509.Certificate // leaf first
	EncryptedKey  []byte
	DHPublicKey   []byte
	CPSChain      []*x509.Certificate
}

// ParseSignedResponse reads a CertificateInstallationRes (EXI) that an
// eMSP's CPS signed, as OPNC's contract pool upload carries it, and checks
// it: ResponseCode OK, a CPS chain that leads to one of v2gRoots, and the
// CPS signature over the four signed elements.
func ParseSignedResponse(data []byte, v2gRoots []*x509.Certificate, now time.Time) (*SignedData, error) {
	doc, err := exi.ISO2.Decode(data)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "not an ISO 15118-2 message", Err: err}
	}
	body := doc.Child("Body")
	res := body.Child("CertificateInstallationRes")
	if res == nil {
		return nil, &Error{Code: CodeInvalid, Message: "not a CertificateInstallationRes"}
	}
	if rc := res.Child("ResponseCode").Val(); rc != ResponseOK {
		return nil, &Error{Code: CodeInvalid, Message: "ResponseCode " + rc + ", want OK"}
	}
	cps, err := parseChain(res.Child("SAProvisioningCertificateChain"))
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "SAProvisioningCertificateChain", Err: err}
	}
	if _, err := cps[0].Verify(x509.VerifyOptions{Roots: pool(v2gRoots), Intermediates: pool(cps[1:]), CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "the CPS chain does not lead to a V2G root here", Err: err}
	}
	pub, ok := cps[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, &Error{Code: CodeInvalid, Message: "the CPS certificate has no ECDSA key"}
	}
	if err := verifySignature(doc.Child("Header").Child("Signature"), body, pub, "id1", "id2", "id3", "id4"); err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "CPS signature", Err: err}
	}
	chain, err := parseChain(res.Child("ContractSignatureCertChain"))
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "ContractSignatureCertChain", Err: err}
	}
	enc, err1 := base64.StdEncoding.DecodeString(res.Child("ContractSignatureEncryptedPrivateKey").Val())
	dh, err2 := base64.StdEncoding.DecodeString(res.Child("DHpublickey").Val())
	if err := errors.Join(err1, err2); err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "encrypted key", Err: err}
	}
	return &SignedData{EMAID: res.Child("eMAID").Val(), ContractChain: chain, EncryptedKey: enc, DHPublicKey: dh, CPSChain: cps}, nil
}

// DeleteDepositOf removes the deposit holding the contract data of emaid
// that the tenant may see ("": any).
func (p *Pool) DeleteDepositOf(ctx context.Context, actingTenant, emaid string) error {
	e, err := policies.ParseEMAID(emaid)
	if err != nil {
		return &Error{Code: CodeInvalid, Message: "EMAID", Err: err}
	}
	ds, err := p.Store.ListContractDeposits(ctx, actingTenant)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.EMAID == e.String() {
			return p.Store.DeleteContractDeposit(ctx, d.PCID)
		}
	}
	return &Error{Code: CodeNotFound, Message: "no contract or deposit " + e.String()}
}
