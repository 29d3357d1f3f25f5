package ca

import (
	"crypto"
	"crypto/x509"
	"io"

	"github.com/pncpki/pncpki/policies"
)

// Template and CreateFast expose the certificate builder to the external
// tests that compare it with crypto/x509.
func (b *Builder) Template(p *policies.Profile, issuer *Authority, pub crypto.PublicKey, subj policies.Subject, validity policies.Period) (*x509.Certificate, error) {
	return b.template(p, issuer, pub, subj, validity)
}

func CreateFast(rand io.Reader, t, parent *x509.Certificate, signer crypto.Signer) ([]byte, error) {
	return createCertificate(rand, t, parent, signer)
}

// EncodeTBSCertList and CreateEd448CRL expose the CRL encoder to the
// external test that compares it with crypto/x509.
var (
	EncodeTBSCertList = encodeTBSCertList
	CreateEd448CRL    = createEd448CRL
)
