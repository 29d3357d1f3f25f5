package contract

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/pncpki/pncpki/contract/exi"
)

// RequestSigner checks the signature of a decoded ISO 15118-2
// CertificateInstallationReq or CertificateUpdateReq with the key of the
// certificate it carries (the OEM provisioning certificate, or the contract
// certificate), and returns the message's name and the chain it carries,
// signer first (an installation request carries the signer alone). It
// reads nothing else: the chain and the pool are the installer's checks.
// An inspector shows its result; a signature that does not verify is
// returned with the chain and the name.
func RequestSigner(doc *exi.Element) (name string, chain []*x509.Certificate, err error) {
	body := doc.Child("Body")
	var msg *exi.Element
	switch {
	case body.Child("CertificateInstallationReq") != nil:
		name, msg = "CertificateInstallationReq", body.Child("CertificateInstallationReq")
		var leaf *x509.Certificate
		if leaf, err = parseCertValue(msg.Child("OEMProvisioningCert").Val()); err == nil {
			chain = []*x509.Certificate{leaf}
		}
	case body.Child("CertificateUpdateReq") != nil:
		name, msg = "CertificateUpdateReq", body.Child("CertificateUpdateReq")
		chain, err = parseChain(msg.Child("ContractSignatureCertChain"))
	default:
		return "", nil, errors.New("not a CertificateInstallationReq or CertificateUpdateReq")
	}
	if err != nil {
		return name, nil, fmt.Errorf("the signer's certificate: %w", err)
	}
	pub, ok := chain[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return name, chain, errors.New("the signer's certificate has no ECDSA key")
	}
	id, _ := msg.Attr("Id")
	if err := verifySignature(doc.Child("Header").Child("Signature"), body, pub, id); err != nil {
		return name, chain, fmt.Errorf("request signature: %w", err)
	}
	return name, chain, nil
}
