package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidExtCRLNumber  = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidExtReasonCode = asn1.ObjectIdentifier{2, 5, 29, 21}
)

// createEd448CRL is x509.CreateRevocationList for an Ed448 CA, which
// crypto/x509 cannot sign for: the TBSCertList in the bytes
// CreateRevocationList gives it (TestEd448CRLMatchesCreateRevocationList),
// signed with Ed448.
func createEd448CRL(t *x509.RevocationList, issuer *x509.Certificate, key ed448.PrivateKey) ([]byte, error) {
	if !key.Public().(ed448.PublicKey).Equal(ed448x509.PublicKey(issuer)) {
		return nil, errors.New("the signer is not the key of the issuer certificate")
	}
	tbs, err := encodeTBSCertList(t, issuer, ed448x509.OIDEd448)
	if err != nil {
		return nil, err
	}
	return signed(tbs, ed448x509.OIDEd448, ed448.Sign(key, tbs, ""))
}

// encodeTBSCertList encodes what CRL signs: the CRL number, the update
// times and the entries (serial, time, reason when not 0) of t, with
// issuer's name and key identifier (RFC 5280 5.1).
func encodeTBSCertList(t *x509.RevocationList, issuer *x509.Certificate, sigAlg asn1.ObjectIdentifier) ([]byte, error) {
	//lint:ignore SA1019 a template with the old entries is refused, not half encoded
	if len(t.RevokedCertificates) > 0 {
		return nil, errors.New("CRL template: entries go in RevokedCertificateEntries")
	}
	if t.Number == nil || t.Number.Sign() < 0 || len(t.ExtraExtensions) > 0 ||
		len(issuer.SubjectKeyId) == 0 || !t.NextUpdate.After(t.ThisUpdate) {
		return nil, errors.New("CRL template: want a number, entries, an issuer key identifier and nextUpdate after thisUpdate")
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, 256+len(issuer.RawSubject)+48*len(t.RevokedCertificateEntries)))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1) // v2
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(sigAlg) })
		b.AddBytes(issuer.RawSubject)
		addTime(b, t.ThisUpdate.UTC())
		addTime(b, t.NextUpdate.UTC())
		if len(t.RevokedCertificateEntries) > 0 {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, e := range t.RevokedCertificateEntries {
					if e.SerialNumber == nil || len(e.ExtraExtensions) > 0 {
						b.SetError(errors.New("CRL entry: want a serial and no extra extensions"))
						return
					}
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1BigInt(e.SerialNumber)
						addTime(b, e.RevocationTime.UTC())
						if e.ReasonCode != 0 {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
									b.AddASN1ObjectIdentifier(oidExtReasonCode)
									b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) { b.AddASN1Enum(int64(e.ReasonCode)) })
								})
							})
						}
					})
				}
			})
		}
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidExtAuthorityKeyID)
					b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(issuer.SubjectKeyId) })
						})
					})
				})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidExtCRLNumber)
					b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) { b.AddASN1BigInt(t.Number) })
				})
			})
		})
	})
	return b.Bytes()
}
