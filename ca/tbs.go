package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"net"
	"time"
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

// The ASN.1 shapes of RFC 5280, as crypto/x509 marshals them.
type (
	tbsCertificate struct {
		Version            int `asn1:"optional,explicit,default:0,tag:0"`
		SerialNumber       *big.Int
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Issuer             asn1.RawValue
		Validity           struct{ NotBefore, NotAfter time.Time }
		Subject            asn1.RawValue
		PublicKey          asn1.RawValue
		Extensions         []pkix.Extension `asn1:"omitempty,optional,explicit,tag:3"`
	}
	certificate struct {
		TBS                asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
	}
	basicConstraints struct {
		IsCA       bool `asn1:"optional"`
		MaxPathLen int  `asn1:"optional,default:-1"`
	}
	authorityKeyID struct {
		ID []byte `asn1:"optional,tag:0"`
	}
	accessDescription struct {
		Method   asn1.ObjectIdentifier
		Location asn1.RawValue
	}
	distributionPoint struct {
		Name struct {
			FullName []asn1.RawValue `asn1:"optional,tag:0"`
		} `asn1:"optional,tag:0"`
	}
)

// createCertificate is x509.CreateCertificate for the templates of this
// package signed by an in-process ECDSA key, without the verification of
// its own signature. It answers errNoFastPath for anything else.
func createCertificate(rand io.Reader, t, parent *x509.Certificate, signer crypto.Signer) ([]byte, error) {
	key, ok := signer.(*ecdsa.PrivateKey)
	if !ok || parent.PublicKey != nil && !key.PublicKey.Equal(parent.PublicKey) {
		return nil, errNoFastPath
	}
	var sigAlg pkix.AlgorithmIdentifier
	var hash crypto.Hash
	switch {
	case key.Curve == elliptic.P256() && t.SignatureAlgorithm == x509.ECDSAWithSHA256:
		sigAlg, hash = pkix.AlgorithmIdentifier{Algorithm: oidSigECDSAWithSHA256}, crypto.SHA256
	case key.Curve == elliptic.P384() && t.SignatureAlgorithm == x509.ECDSAWithSHA384:
		sigAlg, hash = pkix.AlgorithmIdentifier{Algorithm: oidSigECDSAWithSHA384}, crypto.SHA384
	default:
		return nil, errNoFastPath
	}
	if t.SerialNumber == nil || t.SerialNumber.Sign() <= 0 || !t.BasicConstraintsValid || len(t.SubjectKeyId) == 0 ||
		len(t.EmailAddresses) > 0 || len(t.URIs) > 0 || len(t.IssuingCertificateURL) > 0 || len(t.UnknownExtKeyUsage) > 0 ||
		len(t.PolicyIdentifiers) > 0 || len(t.Policies) > 0 || len(t.PermittedDNSDomains) > 0 || len(t.ExcludedDNSDomains) > 0 ||
		len(t.PermittedIPRanges) > 0 || len(t.ExcludedIPRanges) > 0 || len(t.PermittedEmailAddresses) > 0 ||
		len(t.ExcludedEmailAddresses) > 0 || len(t.PermittedURIDomains) > 0 || len(t.ExcludedURIDomains) > 0 ||
		!t.IsCA && (t.MaxPathLen > 0 || t.MaxPathLenZero) {
		return nil, errNoFastPath
	}
	spki, err := x509.MarshalPKIXPublicKey(t.PublicKey)
	if err != nil {
		return nil, err
	}
	subject, err := asn1.Marshal(t.Subject.ToRDNSequence())
	if err != nil {
		return nil, err
	}
	issuer := parent.RawSubject
	if parent == t {
		issuer = subject
	}
	if len(subject) == 2 || len(issuer) == 0 || len(t.RawSubject) > 0 {
		return nil, errNoFastPath // empty subject: critical SAN rules; unparsed parent
	}
	aki := t.AuthorityKeyId
	if string(issuer) != string(subject) && len(parent.SubjectKeyId) > 0 {
		aki = parent.SubjectKeyId
	}
	exts, err := extensions(t, aki)
	if err != nil {
		return nil, err
	}
	tbs, err := asn1.Marshal(tbsCertificate{
		Version: 2, SerialNumber: t.SerialNumber, SignatureAlgorithm: sigAlg,
		Issuer: asn1.RawValue{FullBytes: issuer}, Subject: asn1.RawValue{FullBytes: subject},
		Validity:   struct{ NotBefore, NotAfter time.Time }{t.NotBefore.UTC(), t.NotAfter.UTC()},
		PublicKey:  asn1.RawValue{FullBytes: spki},
		Extensions: exts,
	})
	if err != nil {
		return nil, err
	}
	sig, err := crypto.SignMessage(key, rand, tbs, hash)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(certificate{TBS: asn1.RawValue{FullBytes: tbs}, SignatureAlgorithm: sigAlg,
		Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
}

// extensions are the extensions of t in crypto/x509's order.
func extensions(t *x509.Certificate, aki []byte) ([]pkix.Extension, error) {
	var out []pkix.Extension
	add := func(id asn1.ObjectIdentifier, critical bool, v any) error {
		b, err := asn1.Marshal(v)
		out = append(out, pkix.Extension{Id: id, Critical: critical, Value: b})
		return err
	}
	if t.KeyUsage != 0 {
		a := [2]byte{reverseBits(byte(t.KeyUsage)), reverseBits(byte(t.KeyUsage >> 8))}
		bits := a[:1]
		if a[1] != 0 {
			bits = a[:2]
		}
		if err := add(oidExtKeyUsage, true, asn1.BitString{Bytes: bits, BitLength: bitLength(bits)}); err != nil {
			return nil, err
		}
	}
	if len(t.ExtKeyUsage) > 0 {
		oids := make([]asn1.ObjectIdentifier, len(t.ExtKeyUsage))
		for i, u := range t.ExtKeyUsage {
			if oids[i] = extKeyUsageOIDs[u]; oids[i] == nil {
				return nil, errNoFastPath
			}
		}
		if err := add(oidExtExtendedKeyUsage, false, oids); err != nil {
			return nil, err
		}
	}
	maxPathLen := t.MaxPathLen
	if maxPathLen == 0 && !t.MaxPathLenZero {
		maxPathLen = -1
	}
	if err := add(oidExtBasicConstraints, true, basicConstraints{t.IsCA, maxPathLen}); err != nil {
		return nil, err
	}
	if err := add(oidExtSubjectKeyID, false, t.SubjectKeyId); err != nil {
		return nil, err
	}
	if len(aki) > 0 {
		if err := add(oidExtAuthorityKeyID, false, authorityKeyID{aki}); err != nil {
			return nil, err
		}
	}
	if len(t.OCSPServer) > 0 {
		var ads []accessDescription
		for _, u := range t.OCSPServer {
			ads = append(ads, accessDescription{oidAIAOCSP, asn1.RawValue{Tag: 6, Class: 2, Bytes: []byte(u)}})
		}
		if err := add(oidExtAIA, false, ads); err != nil {
			return nil, err
		}
	}
	if len(t.DNSNames) > 0 || len(t.IPAddresses) > 0 {
		var names []asn1.RawValue
		for _, n := range t.DNSNames {
			names = append(names, asn1.RawValue{Tag: 2, Class: 2, Bytes: []byte(n)})
		}
		for _, ip := range t.IPAddresses {
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4
			} else if len(ip) != net.IPv6len {
				return nil, errNoFastPath
			}
			names = append(names, asn1.RawValue{Tag: 7, Class: 2, Bytes: ip})
		}
		if err := add(oidExtSAN, false, names); err != nil {
			return nil, err
		}
	}
	if len(t.CRLDistributionPoints) > 0 {
		var dps []distributionPoint
		for _, u := range t.CRLDistributionPoints {
			var dp distributionPoint
			dp.Name.FullName = []asn1.RawValue{{Tag: 6, Class: 2, Bytes: []byte(u)}}
			dps = append(dps, dp)
		}
		if err := add(oidExtCRLDP, false, dps); err != nil {
			return nil, err
		}
	}
	for _, e := range t.ExtraExtensions {
		for _, x := range out {
			if x.Id.Equal(e.Id) {
				return nil, errNoFastPath // crypto/x509 would leave its own out
			}
		}
	}
	return append(out, t.ExtraExtensions...), nil
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
