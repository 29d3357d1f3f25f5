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
// certificate), and returns the message's name and that certificate. It
// reads nothing else: the chain and the pool are the installer's checks.
// An inspector shows its result; a signature that does not verify is
// returned with the certificate and the name.
func RequestSigner(doc *exi.Element) (name string, signer *x509.Certificate, err error) {
	body := doc.Child("Body")
	var msg *exi.Element
	switch {
	case body.Child("CertificateInstallationReq") != nil:
		name, msg = "CertificateInstallationReq", body.Child("CertificateInstallationReq")
		signer, err = parseCertValue(msg.Child("OEMProvisioningCert").Val())
	case body.Child("CertificateUpdateReq") != nil:
		name, msg = "CertificateUpdateReq", body.Child("CertificateUpdateReq")
		var chain []*x509.Certificate
		if chain, err = parseChain(msg.Child("ContractSignatureCertChain")); err == nil {
			signer = chain[0]
		}
	default:
		return "", nil, errors.New("not a CertificateInstallationReq or CertificateUpdateReq")
	}
	if err != nil {
		return name, nil, fmt.Errorf("the signer's certificate: %w", err)
	}
	pub, ok := signer.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return name, signer, errors.New("the signer's certificate has no ECDSA key")
	}
	id, _ := msg.Attr("Id")
	if err := verifySignature(doc.Child("Header").Child("Signature"), body, pub, id); err != nil {
		return name, signer, fmt.Errorf("request signature: %w", err)
	}
	return name, signer, nil
}
