package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Certificates are signed by x509.CreateCertificate, which verifies every
// signature it makes to catch faulty signers: an ECDSA verification costs
// about three signatures, a third of the CPU of an issuance. For keys held
// in this process (softkms, *ecdsa.PrivateKey) a fault is not what that
// check is for, so the templates this package builds are encoded and
// signed here, in exactly the bytes x509.CreateCertificate gives them
// (TestTBSMatchesCreateCertificate compares them for every profile); keys
// in an HSM keep the check. A template with anything else falls back.

// errNoFastPath says a template or key is not one createCertificate
// encodes itself.
var errNoFastPath = errors.New("not on the fast path")

var (
	oidSigECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidSigECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidSigECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}

	oidExtKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtExtendedKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidExtBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidExtSubjectKeyID     = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidExtAuthorityKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtAIA              = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidExtSAN              = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidExtCRLDP            = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidAIAOCSP             = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1}
)

// extKeyUsageOIDs are the extended key usages the profiles use.
var extKeyUsageOIDs = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
	x509.ExtKeyUsageServerAuth:  {1, 3, 6, 1, 5, 5, 7, 3, 1},
	x509.ExtKeyUsageClientAuth:  {1, 3, 6, 1, 5, 5, 7, 3, 2},
	x509.ExtKeyUsageOCSPSigning: {1, 3, 6, 1, 5, 5, 7, 3, 9},
}

// createCertificate is x509.CreateCertificate for the templates of this
// package signed by an in-process ECDSA key, without the verification of
// its own signature, and encoded with cryptobyte rather than the
// reflection of encoding/asn1 (which cost as much as the signature). It
// answers errNoFastPath for anything else.
func createCertificate(rand io.Reader, t, parent *x509.Certificate, signer crypto.Signer) ([]byte, error) {
	if key, ok := signer.(ed448.PrivateKey); ok {
		return createEd448Certificate(t, parent, key)
	}
	key, ok := signer.(*ecdsa.PrivateKey)
	if !ok || parent.PublicKey != nil && !key.PublicKey.Equal(parent.PublicKey) {
		return nil, errNoFastPath
	}
	sigAlg, hash, err := ecdsaSigAlg(t.SignatureAlgorithm)
	if err != nil || key.Curve != sigCurve[t.SignatureAlgorithm] {
		return nil, errNoFastPath
	}
	tbs, err := encodeTBS(t, parent, sigAlg)
	if err != nil {
		return nil, err
	}
	sig, err := crypto.SignMessage(key, rand, tbs, hash)
	if err != nil {
		return nil, err
	}
	return signed(tbs, sigAlg, sig)
}

// createEd448Certificate signs t with an Ed448 key (ISO 15118-20's second
// variant). crypto/x509 has no Ed448, so this is the only way such
// certificates are made. Like the ECDSA fast path it does not verify its
// own signature: the key is in this process (files; no HSM has Ed448).
func createEd448Certificate(t, parent *x509.Certificate, key ed448.PrivateKey) ([]byte, error) {
	if parent != t && !key.Public().(ed448.PublicKey).Equal(ed448x509.PublicKey(parent)) {
		return nil, errors.New("the signer is not the key of the issuer certificate")
	}
	tbs, err := encodeTBS(t, parent, ed448x509.OIDEd448)
	if errors.Is(err, errNoFastPath) {
		return nil, fmt.Errorf("an Ed448 certificate can have only what the ISO 15118 profiles use: %w", err)
	} else if err != nil {
		return nil, err
	}
	return signed(tbs, ed448x509.OIDEd448, ed448.Sign(key, tbs, ""))
}

// signed is the DER of a certificate or CRL: the TBS, the algorithm
// (without parameters, as ECDSA and Ed448 have none) and the signature.
func signed(tbs []byte, sigAlg asn1.ObjectIdentifier, sig []byte) ([]byte, error) {
	c := cryptobyte.NewBuilder(make([]byte, 0, len(tbs)+len(sig)+32))
	c.AddASN1(cbasn1.SEQUENCE, func(c *cryptobyte.Builder) {
		c.AddBytes(tbs)
		c.AddASN1(cbasn1.SEQUENCE, func(c *cryptobyte.Builder) { c.AddASN1ObjectIdentifier(sigAlg) })
		c.AddASN1BitString(sig)
	})
	return c.Bytes()
}

// sigCurve is the curve of the issuer key each fast-path algorithm takes.
var sigCurve = map[x509.SignatureAlgorithm]elliptic.Curve{
	x509.ECDSAWithSHA256: elliptic.P256(),
	x509.ECDSAWithSHA384: elliptic.P384(),
	x509.ECDSAWithSHA512: elliptic.P521(),
}

// ecdsaSigAlg returns the OID and hash of the fast path's signature
// algorithms.
func ecdsaSigAlg(a x509.SignatureAlgorithm) (asn1.ObjectIdentifier, crypto.Hash, error) {
	switch a {
	case x509.ECDSAWithSHA256:
		return oidSigECDSAWithSHA256, crypto.SHA256, nil
	case x509.ECDSAWithSHA384:
		return oidSigECDSAWithSHA384, crypto.SHA384, nil
	case x509.ECDSAWithSHA512:
		return oidSigECDSAWithSHA512, crypto.SHA512, nil
	}
	return nil, 0, errNoFastPath
}

// maxCertificateDER is the largest DER encoding a certificate of template
// t signed by parent can have: the TBS as it will be encoded, and an
// ECDSA signature at its longest (both integers 33 or 49 bytes), or an
// Ed448 one (always 114 bytes).
func maxCertificateDER(t, parent *x509.Certificate) (int, error) {
	sigAlg, _, err := ecdsaSigAlg(t.SignatureAlgorithm)
	var sig int
	switch {
	case err == nil:
		sig = maxECDSASignature(sigCurve[t.SignatureAlgorithm])
	case ed448x509.PublicKey(parent) != nil:
		sigAlg, sig = ed448x509.OIDEd448, ed448.SignatureSize
	default:
		return 0, err
	}
	tbs, err := encodeTBS(t, parent, sigAlg)
	if err != nil {
		return 0, err
	}
	// The algorithm identifier is a SEQUENCE around the OID's DER.
	oid, err := asn1.Marshal(sigAlg)
	if err != nil {
		return 0, err
	}
	return derLen(len(tbs) + derLen(len(oid)) + derLen(1+sig)), nil
}

// derLen is the length of a DER TLV whose value is n bytes long.
func derLen(n int) int {
	switch {
	case n < 0x80:
		return 2 + n
	case n < 0x100:
		return 3 + n
	case n < 0x10000:
		return 4 + n
	}
	return 5 + n
}

// encodeTBS encodes the TBSCertificate of t signed by parent with sigAlg,
// in exactly the bytes x509.CreateCertificate gives it.
func encodeTBS(t, parent *x509.Certificate, sigAlg asn1.ObjectIdentifier) ([]byte, error) {
	if t.SerialNumber == nil || t.SerialNumber.Sign() <= 0 || !t.BasicConstraintsValid || len(t.SubjectKeyId) == 0 ||
		len(t.RawSubject) > 0 || len(t.EmailAddresses) > 0 || len(t.URIs) > 0 || len(t.IssuingCertificateURL) > 0 ||
		len(t.UnknownExtKeyUsage) > 0 || len(t.PolicyIdentifiers) > 0 || len(t.Policies) > 0 ||
		len(t.PermittedDNSDomains) > 0 || len(t.ExcludedDNSDomains) > 0 || len(t.PermittedIPRanges) > 0 ||
		len(t.ExcludedIPRanges) > 0 || len(t.PermittedEmailAddresses) > 0 || len(t.ExcludedEmailAddresses) > 0 ||
		len(t.PermittedURIDomains) > 0 || len(t.ExcludedURIDomains) > 0 ||
		!t.IsCA && (t.MaxPathLen > 0 || t.MaxPathLenZero) {
		return nil, errNoFastPath
	}
	spki, err := marshalSPKI(t.PublicKey)
	if err != nil {
		return nil, err
	}
	subject, err := marshalName(t.Subject)
	if err != nil {
		return nil, err
	}
	issuer := parent.RawSubject
	if parent == t {
		issuer = subject
	}
	if len(subject) == 2 || len(issuer) == 0 {
		return nil, errNoFastPath // empty subject: critical SAN rules; unparsed parent
	}
	aki := t.AuthorityKeyId
	if string(issuer) != string(subject) && len(parent.SubjectKeyId) > 0 {
		aki = parent.SubjectKeyId
	}
	// Sized for the whole certificate, so that neither builder grows.
	size := 512 + len(issuer) + len(subject) + len(spki)
	for _, e := range t.ExtraExtensions {
		size += len(e.Value) + 16
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
		b.AddASN1BigInt(t.SerialNumber)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(sigAlg) })
		b.AddBytes(issuer)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, t.NotBefore.UTC())
			addTime(b, t.NotAfter.UTC())
		})
		b.AddBytes(subject)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { addExtensions(b, t, aki) })
		})
	})
	return b.Bytes()
}

// addTime writes a validity time as encoding/asn1 does: UTCTime for the
// years 1950 to 2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5).
func addTime(b *cryptobyte.Builder, t time.Time) {
	if y := t.Year(); y >= 1950 && y < 2050 {
		b.AddASN1UTCTime(t)
	} else {
		b.AddASN1GeneralizedTime(t)
	}
}

// addExtensions writes the extensions of t in crypto/x509's order.
func addExtensions(b *cryptobyte.Builder, t *x509.Certificate, aki []byte) {
	ext := func(id asn1.ObjectIdentifier, critical bool, value func(*cryptobyte.Builder)) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(id)
			if critical {
				b.AddASN1Boolean(true)
			}
			b.AddASN1(cbasn1.OCTET_STRING, value)
		})
	}
	if t.KeyUsage != 0 {
		a := [2]byte{reverseBits(byte(t.KeyUsage)), reverseBits(byte(t.KeyUsage >> 8))}
		bits := a[:1]
		if a[1] != 0 {
			bits = a[:2]
		}
		ext(oidExtKeyUsage, true, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
				b.AddUint8(uint8(8*len(bits) - bitLength(bits)))
				b.AddBytes(bits)
			})
		})
	}
	if len(t.ExtKeyUsage) > 0 {
		ext(oidExtExtendedKeyUsage, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, u := range t.ExtKeyUsage {
					oid, ok := extKeyUsageOIDs[u]
					if !ok {
						b.SetError(errNoFastPath)
						return
					}
					b.AddASN1ObjectIdentifier(oid)
				}
			})
		})
	}
	maxPathLen := t.MaxPathLen
	if maxPathLen == 0 && !t.MaxPathLenZero {
		maxPathLen = -1
	}
	ext(oidExtBasicConstraints, true, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if t.IsCA {
				b.AddASN1Boolean(true)
			}
			if maxPathLen >= 0 {
				b.AddASN1Int64(int64(maxPathLen))
			}
		})
	})
	ext(oidExtSubjectKeyID, false, func(b *cryptobyte.Builder) { b.AddASN1OctetString(t.SubjectKeyId) })
	if len(aki) > 0 {
		ext(oidExtAuthorityKeyID, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(aki) })
			})
		})
	}
	uri := func(b *cryptobyte.Builder, u string) {
		b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
	}
	if len(t.OCSPServer) > 0 {
		ext(oidExtAIA, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, u := range t.OCSPServer {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidAIAOCSP)
						uri(b, u)
					})
				}
			})
		})
	}
	if len(t.DNSNames) > 0 || len(t.IPAddresses) > 0 {
		ext(oidExtSAN, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, n := range t.DNSNames {
					b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(n)) })
				}
				for _, ip := range t.IPAddresses {
					if ip4 := ip.To4(); ip4 != nil {
						ip = ip4
					} else if len(ip) != net.IPv6len {
						b.SetError(errNoFastPath)
						return
					}
					b.AddASN1(cbasn1.Tag(7).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(ip) })
				}
			})
		})
	}
	if len(t.CRLDistributionPoints) > 0 {
		ext(oidExtCRLDP, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, u := range t.CRLDistributionPoints {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { uri(b, u) })
						})
					})
				}
			})
		})
	}
	for _, e := range t.ExtraExtensions {
		for _, id := range []asn1.ObjectIdentifier{oidExtKeyUsage, oidExtExtendedKeyUsage, oidExtBasicConstraints, oidExtSubjectKeyID,
			oidExtAuthorityKeyID, oidExtAIA, oidExtSAN, oidExtCRLDP} {
			if id.Equal(e.Id) {
				b.SetError(errNoFastPath) // crypto/x509 would leave its own out
				return
			}
		}
		ext(e.Id, e.Critical, func(b *cryptobyte.Builder) { b.AddBytes(e.Value) })
	}
}

func reverseBits(b byte) byte {
	var r byte
	for i := 0; i < 8; i++ {
		r = r<<1 | b&1
		b >>= 1
	}
	return r
}

// bitLength is the length of a BIT STRING without its trailing zero bits.
func bitLength(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		for bit := 0; bit < 8; bit++ {
			if b[i]>>bit&1 == 1 {
				return i*8 + 8 - bit
			}
		}
	}
	return 0
}

// LongestSize is the size of c's DER with the longest ECDSA signature its
// algorithm can have: what c's size may be when another signature of the
// same content is made. Sizes compared across signings (installation
// answer budgets) use it, so that they do not move with the signatures'
// random lengths. Certificates not signed with ECDSA keep their size.
func LongestSize(c *x509.Certificate) int {
	curve := sigCurve[c.SignatureAlgorithm]
	if c.SignatureAlgorithm == x509.ECDSAWithSHA512 {
		curve = elliptic.P521()
	}
	in := cryptobyte.String(c.Raw)
	var cert, tbs, alg cryptobyte.String
	if curve == nil || !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1Element(&tbs, cbasn1.SEQUENCE) ||
		!cert.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		return len(c.Raw)
	}
	return derLen(len(tbs) + len(alg) + derLen(1+maxECDSASignature(curve)))
}

// maxECDSASignature is the longest DER ECDSA-Sig-Value on curve: two
// integers as long as the group order, each with a 0 byte before a high
// bit when the order fills its bytes.
func maxECDSASignature(curve elliptic.Curve) int {
	bits := curve.Params().N.BitLen()
	n := (bits + 7) / 8
	if bits%8 == 0 {
		n++
	}
	return derLen(2 * derLen(n))
}
