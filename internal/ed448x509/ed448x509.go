// Package ed448x509 carries Ed448 and X448 keys through X.509, PKCS#8
// and CRLs (RFC 8410), which crypto/x509 does not know: ISO 15118-20's
// second security variant signs with Ed448 and transports contract keys
// to the vehicle's X448 key. crypto/x509 still parses such certificates
// (with an unknown public key and signature algorithm); this package
// reads their keys, checks their signatures and chains, and signs
// certificates' and CRLs' TBS encodings made elsewhere. The curve
// arithmetic is github.com/cloudflare/circl's.
package ed448x509

import (
	"bytes"
	"crypto"
	"crypto/sha3"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/cloudflare/circl/ecc/goldilocks"
	"github.com/cloudflare/circl/sign/ed448"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	// OIDEd448 is id-Ed448, both the key and the signature algorithm
	// (RFC 8410 3), with absent parameters.
	OIDEd448 = asn1.ObjectIdentifier{1, 3, 101, 113}
	// OIDX448 is id-X448 (RFC 8410 3).
	OIDX448 = asn1.ObjectIdentifier{1, 3, 101, 111}
	// OIDSubjectAltPublicKeyInfo is the extension (X.509 (2019) 9.8.2)
	// in which an ISO 15118-20 Ed448 OEM provisioning certificate carries
	// the vehicle's X448 key agreement key (V2G20-2534).
	OIDSubjectAltPublicKeyInfo = asn1.ObjectIdentifier{2, 5, 29, 72}
)

// MarshalPublicKey returns the DER SubjectPublicKeyInfo of an Ed448 key.
func MarshalPublicKey(pub ed448.PublicKey) []byte { return marshalSPKI(OIDEd448, pub) }

// MarshalX448PublicKey returns the DER SubjectPublicKeyInfo of an X448
// key.
func MarshalX448PublicKey(pub *x448.Key) []byte { return marshalSPKI(OIDX448, pub[:]) }

func marshalSPKI(oid asn1.ObjectIdentifier, key []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oid) })
		b.AddASN1BitString(key)
	})
	return b.BytesOrPanic()
}

// parseSPKI reads a SubjectPublicKeyInfo with absent parameters whose
// algorithm is want and whose key is size bytes. Another algorithm is an
// error wrapping ErrNotCurve448.
func parseSPKI(spki []byte, want asn1.ObjectIdentifier, size int) ([]byte, error) {
	s := cryptobyte.String(spki)
	var inner, alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	var key asn1.BitString
	if !s.ReadASN1(&inner, cbasn1.SEQUENCE) || !s.Empty() ||
		!inner.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, errors.New("malformed SubjectPublicKeyInfo")
	}
	if !oid.Equal(want) {
		return nil, fmt.Errorf("%w: public key algorithm %v, want %v", ErrNotCurve448, oid, want)
	}
	if !alg.Empty() || !inner.ReadASN1BitString(&key) || !inner.Empty() {
		return nil, errors.New("malformed SubjectPublicKeyInfo")
	}
	if key.BitLength != 8*size {
		return nil, fmt.Errorf("key of %d bits, want %d", key.BitLength, 8*size)
	}
	return key.Bytes, nil
}

// ParsePublicKey reads an Ed448 key from a DER SubjectPublicKeyInfo.
func ParsePublicKey(spki []byte) (ed448.PublicKey, error) {
	k, err := parseSPKI(spki, OIDEd448, ed448.PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("Ed448 key: %w", err)
	}
	return ed448.PublicKey(k), nil
}

// ParseX448PublicKey reads an X448 key from a DER SubjectPublicKeyInfo.
func ParseX448PublicKey(spki []byte) (*x448.Key, error) {
	k, err := parseSPKI(spki, OIDX448, x448.Size)
	if err != nil {
		return nil, fmt.Errorf("X448 key: %w", err)
	}
	var out x448.Key
	copy(out[:], k)
	return &out, nil
}

// PublicKey is the certificate's Ed448 key, or nil when it has another.
func PublicKey(c *x509.Certificate) ed448.PublicKey {
	if c.PublicKeyAlgorithm != x509.UnknownPublicKeyAlgorithm {
		return nil
	}
	k, err := ParsePublicKey(c.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil
	}
	return k
}

// CertificateKey is c's public key: crypto/x509's, or the Ed448 key it
// leaves nil.
func CertificateKey(c *x509.Certificate) crypto.PublicKey {
	if c.PublicKey != nil {
		return c.PublicKey
	}
	if k := PublicKey(c); k != nil {
		return k
	}
	return nil
}

// AltX448Key is the X448 key an Ed448 certificate (or template, in its
// ExtraExtensions) carries in its subjectAltPublicKeyInfo extension: the
// vehicle's key agreement key. It answers a nil key and an error when
// there is no such extension.
func AltX448Key(c *x509.Certificate) (*x448.Key, error) {
	for _, e := range slices.Concat(c.Extensions, c.ExtraExtensions) {
		if e.Id.Equal(OIDSubjectAltPublicKeyInfo) {
			return ParseX448PublicKey(e.Value)
		}
	}
	return nil, errors.New("no subjectAltPublicKeyInfo extension with an X448 key")
}

// SignedWithEd448 says whether c (a certificate) carries an Ed448
// signature.
func SignedWithEd448(c *x509.Certificate) bool {
	oid, ok := signatureOID(c.Raw)
	return ok && oid.Equal(OIDEd448)
}

// signatureOID reads the outer signatureAlgorithm of a signed X.509
// structure (certificate, CRL or CSR): SEQUENCE { tbs,
// AlgorithmIdentifier, BIT STRING }.
func signatureOID(der []byte) (asn1.ObjectIdentifier, bool) {
	s := cryptobyte.String(der)
	var outer, alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.SkipASN1(cbasn1.SEQUENCE) ||
		!outer.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, false
	}
	return oid, true
}

// CheckSignature checks that parent signed c, for an Ed448 parent key
// here and through crypto/x509 for any other.
func CheckSignature(c, parent *x509.Certificate) error {
	pub := PublicKey(parent)
	if pub == nil {
		return c.CheckSignatureFrom(parent)
	}
	if parent.Version == 3 && (!parent.BasicConstraintsValid || !parent.IsCA) {
		return x509.ConstraintViolationError{}
	}
	if parent.KeyUsage != 0 && parent.KeyUsage&x509.KeyUsageCertSign == 0 {
		return x509.ConstraintViolationError{}
	}
	if !SignedWithEd448(c) {
		return errors.New("the issuer has an Ed448 key, the certificate another signature algorithm")
	}
	if !ed448.Verify(pub, c.RawTBSCertificate, c.Signature, "") {
		return errors.New("Ed448 signature does not verify")
	}
	return nil
}

// CheckCSRSignature checks the self-signature of a CSR with an Ed448 key,
// which crypto/x509 parses but cannot check, and returns the key. A CSR
// of another key algorithm is an error wrapping ErrNotCurve448.
func CheckCSRSignature(csr *x509.CertificateRequest) (ed448.PublicKey, error) {
	pub, err := ParsePublicKey(csr.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, err
	}
	if oid, ok := signatureOID(csr.Raw); !ok || !oid.Equal(OIDEd448) {
		return nil, errors.New("a CSR with an Ed448 key and another signature algorithm")
	}
	if !ed448.Verify(pub, csr.RawTBSCertificateRequest, csr.Signature, "") {
		return nil, errors.New("Ed448 signature does not verify")
	}
	return pub, nil
}

// CheckCRLSignature checks that issuer, an Ed448 CA, signed crl.
func CheckCRLSignature(crl *x509.RevocationList, issuer *x509.Certificate) error {
	pub := PublicKey(issuer)
	if pub == nil {
		return crl.CheckSignatureFrom(issuer)
	}
	if oid, ok := signatureOID(crl.Raw); !ok || !oid.Equal(OIDEd448) {
		return errors.New("the issuer has an Ed448 key, the CRL another signature algorithm")
	}
	if !ed448.Verify(pub, crl.RawTBSRevocationList, crl.Signature, "") {
		return errors.New("Ed448 signature does not verify")
	}
	return nil
}

// maxChainDepth bounds path building: ISO 15118 chains have at most two
// sub-CAs.
const maxChainDepth = 6

// Verify builds and checks a chain from leaf to one of roots through
// intermediates, as x509.Certificate.Verify does for the algorithms it
// knows: every signature (Ed448 or not), every validity at now, CA and
// keyCertSign of every issuer, and path length constraints. Name
// constraints are not supported: a CA that has them is refused. It
// returns the chain, leaf first, root last.
func Verify(leaf *x509.Certificate, roots, intermediates []*x509.Certificate, now time.Time) ([]*x509.Certificate, error) {
	if err := checkValidity(leaf, now); err != nil {
		return nil, err
	}
	return build([]*x509.Certificate{leaf}, roots, intermediates, now)
}

func build(chain, roots, intermediates []*x509.Certificate, now time.Time) ([]*x509.Certificate, error) {
	c := chain[len(chain)-1]
	var errs []error
	for i, set := range [][]*x509.Certificate{roots, intermediates} {
		isRoot := i == 0
		for _, p := range set {
			if !bytes.Equal(p.RawSubject, c.RawIssuer) || slices.ContainsFunc(chain, p.Equal) {
				continue
			}
			if err := checkIssuer(p, len(chain)-1, now); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.Subject, err))
				continue
			}
			if err := CheckSignature(c, p); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.Subject, err))
				continue
			}
			next := append(slices.Clip(chain), p)
			if isRoot {
				return next, nil
			}
			if len(next) > maxChainDepth {
				return nil, errors.New("chain too long")
			}
			found, err := build(next, roots, intermediates, now)
			if err == nil {
				return found, nil
			}
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no issuer of %q among the roots and intermediates", c.Subject.String())
	}
	return nil, errors.Join(errs...)
}

// checkIssuer checks that p may issue a certificate with below CAs
// between it and the leaf.
func checkIssuer(p *x509.Certificate, below int, now time.Time) error {
	if err := checkValidity(p, now); err != nil {
		return err
	}
	switch {
	case !p.BasicConstraintsValid || !p.IsCA:
		return errors.New("not a CA")
	case p.KeyUsage != 0 && p.KeyUsage&x509.KeyUsageCertSign == 0:
		return errors.New("no keyCertSign")
	case (p.MaxPathLen > 0 || p.MaxPathLenZero) && below > p.MaxPathLen:
		return fmt.Errorf("path length %d exceeded", p.MaxPathLen)
	case len(p.PermittedDNSDomains)+len(p.ExcludedDNSDomains)+len(p.PermittedIPRanges)+len(p.ExcludedIPRanges)+
		len(p.PermittedEmailAddresses)+len(p.ExcludedEmailAddresses)+len(p.PermittedURIDomains)+len(p.ExcludedURIDomains) > 0:
		return errors.New("name constraints are not supported on Ed448 chains")
	}
	return nil
}

func checkValidity(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return x509.CertificateInvalidError{Cert: c, Reason: x509.Expired,
			Detail: fmt.Sprintf("%s is valid from %s to %s", c.Subject, c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))}
	}
	return nil
}

// MarshalPKCS8 encodes an Ed448 private key as PKCS#8 (RFC 8410 7): the
// seed in an OCTET STRING.
func MarshalPKCS8(priv ed448.PrivateKey) []byte { return marshalPKCS8(OIDEd448, priv.Seed()) }

// MarshalX448PKCS8 encodes an X448 private key as PKCS#8.
func MarshalX448PKCS8(priv *x448.Key) []byte { return marshalPKCS8(OIDX448, priv[:]) }

func marshalPKCS8(oid asn1.ObjectIdentifier, key []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oid) })
		b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) { b.AddASN1OctetString(key) })
	})
	return b.BytesOrPanic()
}

// ParsePKCS8 reads a PKCS#8 Ed448 (*ed448.PrivateKey's value) or X448
// (*x448.Key) private key. It answers an error wrapping ErrNotCurve448
// for PKCS#8 of other algorithms.
func ParsePKCS8(der []byte) (any, error) {
	s := cryptobyte.String(der)
	var info, alg cryptobyte.String
	var version int
	var oid asn1.ObjectIdentifier
	var priv, key []byte
	if !s.ReadASN1(&info, cbasn1.SEQUENCE) || !s.Empty() || !info.ReadASN1Integer(&version) ||
		!info.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) || !alg.Empty() ||
		!info.ReadASN1Bytes(&priv, cbasn1.OCTET_STRING) || (version != 0 && version != 1) {
		return nil, fmt.Errorf("%w: not a PKCS#8 key of RFC 8410", ErrNotCurve448)
	}
	ps := cryptobyte.String(priv)
	if !ps.ReadASN1Bytes(&key, cbasn1.OCTET_STRING) || !ps.Empty() {
		return nil, errors.New("malformed RFC 8410 private key")
	}
	switch {
	case oid.Equal(OIDEd448) && len(key) == ed448.SeedSize:
		return ed448.NewKeyFromSeed(key), nil
	case oid.Equal(OIDX448) && len(key) == x448.Size:
		var k x448.Key
		copy(k[:], key)
		return &k, nil
	case oid.Equal(OIDEd448) || oid.Equal(OIDX448):
		return nil, fmt.Errorf("%v private key of %d bytes", oid, len(key))
	}
	return nil, fmt.Errorf("%w: algorithm %v", ErrNotCurve448, oid)
}

// ErrNotCurve448 says a key is not of the Ed448 or X448 algorithm asked
// for.
var ErrNotCurve448 = errors.New("not an Ed448 or X448 key")

// Scalar is the secret scalar of an Ed448 key as ISO 15118-20 transports
// a contract key (V2G20-2509): s mod L, 56 bytes big-endian, where s is
// the clamped first half of SHAKE256(seed) (RFC 8032 5.2.5). The -20
// vector set does the same (PNC-FACTS-20.md marks it an assumption).
func Scalar(priv ed448.PrivateKey) []byte {
	h := sha3.SumSHAKE256(priv.Seed(), 2*ed448.SeedSize)[:ed448.SeedSize]
	h[0] &= 0xfc
	h[ed448.SeedSize-1] = 0
	h[ed448.SeedSize-2] |= 0x80
	var s goldilocks.Scalar
	s.FromBytes(h)
	clear(h)
	out := make([]byte, goldilocks.ScalarSize)
	for i := range out {
		out[i] = s[goldilocks.ScalarSize-1-i]
	}
	clear(s[:])
	return out
}

// CheckScalar checks that a transported scalar (56 bytes big-endian,
// below the group order) is the secret of pub: scalar·B = pub
// (V2G20-2509/2510).
func CheckScalar(scalar []byte, pub ed448.PublicKey) error {
	if len(scalar) != goldilocks.ScalarSize {
		return fmt.Errorf("Ed448 scalar of %d bytes, want %d", len(scalar), goldilocks.ScalarSize)
	}
	var s goldilocks.Scalar
	for i := range s {
		s[i] = scalar[goldilocks.ScalarSize-1-i]
	}
	reduced := s
	reduced.Red()
	if reduced != s {
		return errors.New("Ed448 scalar is not below the group order")
	}
	p := make([]byte, ed448.PublicKeySize)
	if err := (goldilocks.Curve{}).ScalarBaseMult(&s).ToBytes(p); err != nil {
		return err
	}
	if !bytes.Equal(p, pub) {
		return errors.New("the Ed448 scalar is not the key of the certificate")
	}
	return nil
}
