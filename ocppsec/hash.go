package ocppsec

import (
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"hash"
)

// HashDataOf returns the CertificateHashData of cert as OCPP defines it
// (2.0.1 Part 2, CertificateHashDataType; the fields of an RFC 6960 CertID):
// the hash of the issuer's distinguished name (DER, as in cert), the hash
// of the issuer's public key (the BIT STRING contents of its
// SubjectPublicKeyInfo), both lowercase hex, and the serial number in hex
// without leading zeros. issuer is cert itself for a self-signed root.
func HashDataOf(cert, issuer *x509.Certificate, alg string) (CertificateHashData, error) {
	h, err := hashFor(alg)
	if err != nil {
		return CertificateHashData{}, err
	}
	key, err := publicKeyBits(issuer)
	if err != nil {
		return CertificateHashData{}, err
	}
	return CertificateHashData{
		HashAlgorithm:  alg,
		IssuerNameHash: hashHex(h, cert.RawIssuer),
		IssuerKeyHash:  hashHex(h, key),
		SerialNumber:   cert.SerialNumber.Text(16),
	}, nil
}

// HashAlgorithmOf maps OCPP's hashAlgorithm to a crypto.Hash.
func HashAlgorithmOf(alg string) (crypto.Hash, error) {
	switch alg {
	case "SHA256":
		return crypto.SHA256, nil
	case "SHA384":
		return crypto.SHA384, nil
	case "SHA512":
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("hashAlgorithm %q: want SHA256, SHA384 or SHA512", alg)
}

func hashFor(alg string) (func() hash.Hash, error) {
	h, err := HashAlgorithmOf(alg)
	if err != nil {
		return nil, err
	}
	switch h {
	case crypto.SHA384:
		return sha512.New384, nil
	case crypto.SHA512:
		return sha512.New, nil
	}
	return sha256.New, nil
}

func hashHex(h func() hash.Hash, data []byte) string {
	d := h()
	d.Write(data)
	return hex.EncodeToString(d.Sum(nil))
}

func publicKeyBits(c *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm asn1.RawValue
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("public key of %s: %w", c.Subject, err)
	}
	return spki.Key.RightAlign(), nil
}

// Same reports whether two hash data name the same certificate: hex case
// and leading zeros of the serial do not matter.
func (h CertificateHashData) Same(o CertificateHashData) bool {
	return h.HashAlgorithm == o.HashAlgorithm && equalHex(h.IssuerNameHash, o.IssuerNameHash) &&
		equalHex(h.IssuerKeyHash, o.IssuerKeyHash) && equalHex(trimZeros(h.SerialNumber), trimZeros(o.SerialNumber))
}

func equalHex(a, b string) bool {
	x, err1 := hex.DecodeString(padEven(a))
	y, err2 := hex.DecodeString(padEven(b))
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func padEven(s string) string {
	if len(s)%2 == 1 {
		return "0" + s
	}
	return s
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}
