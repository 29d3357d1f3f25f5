// Package ocsp is pncpki's OCSP responder (RFC 6960 with the RFC 5019
// lightweight profile) and client. Responses are signed by a delegated
// responder certificate per CA, pre-signed and cached, and re-checked
// against the store within a documented bound.
package ocsp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	_ "crypto/sha256" // CertID and signature hashes
	_ "crypto/sha512"
)

// OCSP response status codes (RFC 6960 4.2.1).
const (
	StatusSuccessful       = 0
	StatusMalformedRequest = 1
	StatusInternalError    = 2
	StatusTryLater         = 3
	StatusUnauthorized     = 6
)

// Certificate status values of a SingleResponse.
const (
	Good    = 0
	Revoked = 1
	Unknown = 2
)

// MaxRequestSize bounds an OCSP request. A single-certificate request with a
// nonce is under 200 bytes; 8 KiB leaves room for optional fields.
const MaxRequestSize = 8 << 10

// maxNonce bounds the nonce (RFC 8954: 1..32 octets; some clients send 128).
const maxNonce = 128

var (
	oidSHA1          = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidNonce         = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidBasicResponse = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidECDSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidRSASHA256     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
)

var hashOIDs = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{{oidSHA1, crypto.SHA1}, {oidSHA256, crypto.SHA256}, {oidSHA384, crypto.SHA384}, {oidSHA512, crypto.SHA512}}

// Hashes are the CertID hash algorithms the responder answers.
var Hashes = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

func hashOID(h crypto.Hash) asn1.ObjectIdentifier {
	for _, x := range hashOIDs {
		if x.hash == h {
			return x.oid
		}
	}
	return nil
}

type certID struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	IssuerKeyHash []byte
	SerialNumber  *big.Int
}

type singleRequest struct {
	Cert       certID
	Extensions []pkix.Extension `asn1:"explicit,tag:0,optional"`
}

type tbsRequest struct {
	Version       int           `asn1:"explicit,tag:0,default:0,optional"`
	RequestorName asn1.RawValue `asn1:"explicit,tag:1,optional"`
	RequestList   []singleRequest
	Extensions    []pkix.Extension `asn1:"explicit,tag:2,optional"`
}

type ocspRequest struct {
	TBSRequest tbsRequest
	Signature  asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

// Request is a parsed single-certificate OCSP request.
type Request struct {
	Hash           crypto.Hash
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	Serial         *big.Int
	// Nonce is the value of the nonce extension (the OCTET STRING's
	// content), nil when the request has none.
	Nonce []byte
}

// RequestError says why a request is malformed.
type RequestError struct{ Reason string }

func (e *RequestError) Error() string { return "malformed OCSP request: " + e.Reason }

func malformed(format string, args ...any) error {
	return &RequestError{Reason: fmt.Sprintf(format, args...)}
}

// DER contents of the CertID hash OIDs, for comparison without allocating.
var hashOIDBytes = func() map[crypto.Hash][]byte {
	m := map[crypto.Hash][]byte{}
	for _, h := range hashOIDs {
		der, _ := asn1.Marshal(h.oid)
		m[h.hash] = der[2:]
	}
	return m
}()

var nonceOIDBytes = func() []byte { der, _ := asn1.Marshal(oidNonce); return der[2:] }()

// ParseRequest parses a DER OCSP request holding exactly one certificate
// (RFC 5019 2.1.1), with an optional nonce. Signed requests are accepted
// and their signature ignored: the responder serves public information.
// The returned hashes and nonce alias der.
func ParseRequest(der []byte) (*Request, error) {
	if len(der) == 0 {
		return nil, malformed("empty")
	}
	if len(der) > MaxRequestSize {
		return nil, malformed("%d bytes, limit %d", len(der), MaxRequestSize)
	}
	input := cryptobyte.String(der)
	var ocspReq, tbs, list, single, id, alg, oid cryptobyte.String
	if !input.ReadASN1(&ocspReq, cbasn1.SEQUENCE) || !input.Empty() {
		return nil, malformed("not a DER SEQUENCE")
	}
	if !ocspReq.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, malformed("no tbsRequest")
	}
	if !ocspReq.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || !ocspReq.Empty() {
		return nil, malformed("bad optionalSignature")
	}
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, malformed("bad version")
	}
	if !tbs.SkipOptionalASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return nil, malformed("bad requestorName")
	}
	if !tbs.ReadASN1(&list, cbasn1.SEQUENCE) {
		return nil, malformed("no requestList")
	}
	if !list.ReadASN1(&single, cbasn1.SEQUENCE) || !list.Empty() {
		return nil, malformed("want exactly one certificate per request")
	}
	out := &Request{Serial: new(big.Int)}
	if !single.ReadASN1(&id, cbasn1.SEQUENCE) ||
		!single.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || !single.Empty() {
		return nil, malformed("bad Request")
	}
	if !id.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
		return nil, malformed("bad hashAlgorithm")
	}
	for h, b := range hashOIDBytes {
		if bytes.Equal(oid, b) {
			out.Hash = h
		}
	}
	if out.Hash == 0 {
		return nil, malformed("unsupported CertID hash algorithm")
	}
	if !alg.Empty() && (!alg.SkipASN1(cbasn1.NULL) || !alg.Empty()) {
		return nil, malformed("bad hashAlgorithm parameters")
	}
	if !id.ReadASN1Bytes(&out.IssuerNameHash, cbasn1.OCTET_STRING) ||
		!id.ReadASN1Bytes(&out.IssuerKeyHash, cbasn1.OCTET_STRING) ||
		!id.ReadASN1Integer(out.Serial) || !id.Empty() {
		return nil, malformed("bad CertID")
	}
	if len(out.IssuerNameHash) != out.Hash.Size() || len(out.IssuerKeyHash) != out.Hash.Size() {
		return nil, malformed("CertID hashes are not %v sized", out.Hash)
	}
	if out.Serial.Sign() <= 0 || out.Serial.BitLen() > 160 {
		return nil, malformed("serial number must be positive and at most 20 octets")
	}
	var exts cryptobyte.String
	var hasExts bool
	if !tbs.ReadOptionalASN1(&exts, &hasExts, cbasn1.Tag(2).Constructed().ContextSpecific()) || !tbs.Empty() {
		return nil, malformed("bad requestExtensions")
	}
	if hasExts {
		var seq cryptobyte.String
		if !exts.ReadASN1(&seq, cbasn1.SEQUENCE) || !exts.Empty() {
			return nil, malformed("bad requestExtensions")
		}
		for !seq.Empty() {
			var ext, extID cryptobyte.String
			var critical bool
			var value []byte
			if !seq.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1(&extID, cbasn1.OBJECT_IDENTIFIER) ||
				!ext.ReadOptionalASN1Boolean(&critical, cbasn1.BOOLEAN, false) ||
				!ext.ReadASN1Bytes(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
				return nil, malformed("bad extension")
			}
			if !bytes.Equal(extID, nonceOIDBytes) {
				if critical {
					return nil, malformed("unsupported critical extension")
				}
				continue
			}
			// The nonce is an OCTET STRING inside the extension value
			// (RFC 8954); accept a bare value from older clients too.
			v := cryptobyte.String(value)
			var nonce []byte
			if !v.ReadASN1Bytes(&nonce, cbasn1.OCTET_STRING) || !v.Empty() {
				nonce = value
			}
			if len(nonce) == 0 || len(nonce) > maxNonce {
				return nil, malformed("nonce of %d octets, want 1..%d", len(nonce), maxNonce)
			}
			out.Nonce = nonce
		}
	}
	return out, nil
}

// MarshalRequest builds a DER request for one certificate, with a nonce
// when nonce is not nil.
func MarshalRequest(h crypto.Hash, issuer *x509.Certificate, serial *big.Int, nonce []byte) ([]byte, error) {
	oid := hashOID(h)
	if oid == nil {
		return nil, fmt.Errorf("unsupported hash %v", h)
	}
	nameHash, keyHash, err := IssuerHashes(h, issuer)
	if err != nil {
		return nil, err
	}
	req := ocspRequest{TBSRequest: tbsRequest{RequestList: []singleRequest{{Cert: certID{
		HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue},
		NameHash:      nameHash, IssuerKeyHash: keyHash, SerialNumber: serial,
	}}}}}
	if nonce != nil {
		v, err := asn1.Marshal(nonce)
		if err != nil {
			return nil, err
		}
		req.TBSRequest.Extensions = []pkix.Extension{{Id: oidNonce, Value: v}}
	}
	return asn1.Marshal(req)
}

// IssuerHashes returns the CertID issuerNameHash and issuerKeyHash of an
// issuer certificate.
func IssuerHashes(h crypto.Hash, issuer *x509.Certificate) (nameHash, keyHash []byte, err error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, nil, fmt.Errorf("issuer public key: %w", err)
	}
	hn := h.New()
	hn.Write(issuer.RawSubject)
	hk := h.New()
	hk.Write(spki.PublicKey.RightAlign())
	return hn.Sum(nil), hk.Sum(nil), nil
}

// Response side.

type revokedInfo struct {
	RevocationTime time.Time       `asn1:"generalized"`
	Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"`
}

type singleResponse struct {
	CertID     certID
	Good       asn1.Flag        `asn1:"tag:0,optional"`
	Revoked    revokedInfo      `asn1:"tag:1,optional"`
	Unknown    asn1.Flag        `asn1:"tag:2,optional"`
	ThisUpdate time.Time        `asn1:"generalized"`
	NextUpdate time.Time        `asn1:"generalized,explicit,tag:0,optional"`
	Extensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type responseData struct {
	Version     int `asn1:"optional,default:0,explicit,tag:0"`
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []singleResponse
	Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type basicResponse struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type responseBytes struct {
	ResponseType asn1.ObjectIdentifier
	Response     []byte
}

type ocspResponse struct {
	Status   asn1.Enumerated
	Response responseBytes `asn1:"explicit,tag:0,optional"`
}

// ErrorResponse returns the DER of an unsuccessful response (no body).
func ErrorResponse(status int) []byte {
	return []byte{0x30, 0x03, 0x0a, 0x01, byte(status)}
}

// Template is what a response says about one certificate.
type Template struct {
	Hash       crypto.Hash // CertID hash, as in the request
	Serial     *big.Int
	Status     int // Good, Revoked or Unknown
	RevokedAt  time.Time
	Reason     int
	ThisUpdate time.Time
	NextUpdate time.Time
	Nonce      []byte // echoed in responseExtensions when set
}

// ResponseSigner signs responses for one issuer: with a delegated
// responder certificate (included in the response) or with the CA key.
type ResponseSigner struct {
	Issuer *x509.Certificate
	// Cert is the delegated responder certificate, or the issuer itself
	// when the CA key signs.
	Cert   *x509.Certificate
	Signer crypto.Signer

	responderID []byte // DER of ResponderID byKey
}

// NewResponseSigner checks that cert certifies signer's key and prepares
// the responder ID.
func NewResponseSigner(issuer, cert *x509.Certificate, signer crypto.Signer) (*ResponseSigner, error) {
	if k, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(cert.PublicKey) {
		return nil, errors.New("OCSP signer key does not match its certificate")
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, err
	}
	keyHash := sha1.Sum(spki.PublicKey.RightAlign())
	octets, _ := asn1.Marshal(keyHash[:])
	id, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: octets})
	if err != nil {
		return nil, err
	}
	return &ResponseSigner{Issuer: issuer, Cert: cert, Signer: signer, responderID: id}, nil
}

// Sign builds and signs a successful response.
func (s *ResponseSigner) Sign(t Template, producedAt time.Time) ([]byte, error) {
	oid := hashOID(t.Hash)
	if oid == nil {
		return nil, fmt.Errorf("unsupported hash %v", t.Hash)
	}
	nameHash, keyHash, err := IssuerHashes(t.Hash, s.Issuer)
	if err != nil {
		return nil, err
	}
	single := singleResponse{
		CertID: certID{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue},
			NameHash:      nameHash, IssuerKeyHash: keyHash, SerialNumber: t.Serial,
		},
		ThisUpdate: t.ThisUpdate.UTC().Truncate(time.Second),
		NextUpdate: t.NextUpdate.UTC().Truncate(time.Second),
	}
	switch t.Status {
	case Good:
		single.Good = true
	case Revoked:
		single.Revoked = revokedInfo{RevocationTime: t.RevokedAt.UTC().Truncate(time.Second), Reason: asn1.Enumerated(t.Reason)}
	default:
		single.Unknown = true
	}
	data := responseData{
		ResponderID: asn1.RawValue{FullBytes: s.responderID},
		ProducedAt:  producedAt.UTC().Truncate(time.Second),
		Responses:   []singleResponse{single},
	}
	if t.Nonce != nil {
		v, err := asn1.Marshal(t.Nonce)
		if err != nil {
			return nil, err
		}
		data.Extensions = []pkix.Extension{{Id: oidNonce, Value: v}}
	}
	tbs, err := asn1.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("marshal response data: %w", err)
	}
	algo, hash, err := signatureAlgorithm(s.Signer.Public())
	if err != nil {
		return nil, err
	}
	h := hash.New()
	h.Write(tbs)
	sig, err := s.Signer.Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		return nil, fmt.Errorf("sign OCSP response: %w", err)
	}
	basic := basicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: algo,
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	}
	if !bytes.Equal(s.Cert.Raw, s.Issuer.Raw) {
		basic.Certificates = []asn1.RawValue{{FullBytes: s.Cert.Raw}}
	}
	b, err := asn1.Marshal(basic)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(ocspResponse{Response: responseBytes{ResponseType: oidBasicResponse, Response: b}})
}

func signatureAlgorithm(pub crypto.PublicKey) (pkix.AlgorithmIdentifier, crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P384() {
			return pkix.AlgorithmIdentifier{Algorithm: oidECDSASHA384}, crypto.SHA384, nil
		}
		return pkix.AlgorithmIdentifier{Algorithm: oidECDSASHA256}, crypto.SHA256, nil
	case *rsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: oidRSASHA256, Parameters: asn1.NullRawValue}, crypto.SHA256, nil
	}
	return pkix.AlgorithmIdentifier{}, 0, fmt.Errorf("unsupported OCSP signer key %T", pub)
}
