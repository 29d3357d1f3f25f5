package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The two encoders here give the bytes of x509.MarshalPKIXPublicKey and of
// asn1.Marshal(name.ToRDNSequence()) for what pncpki issues (P-256 keys,
// one string attribute per RDN) without encoding/asn1's reflection, which
// cost 4 µs and 70 allocations per certificate; anything else falls back
// to those functions. TestMarshalSPKI and FuzzMarshalName compare them.

// p256SPKIPrefix is the DER of a P-256 SubjectPublicKeyInfo up to the
// uncompressed point: SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 },
// BIT STRING of 66 bytes, no unused bits }.
var p256SPKIPrefix = []byte{
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
}

// marshalSPKI is x509.MarshalPKIXPublicKey.
func marshalSPKI(pub crypto.PublicKey) ([]byte, error) {
	if k, ok := pub.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
		if point, err := k.Bytes(); err == nil {
			return append(append(make([]byte, 0, len(p256SPKIPrefix)+len(point)), p256SPKIPrefix...), point...), nil
		}
	}
	if k, ok := pub.(ed448.PublicKey); ok {
		return ed448x509.MarshalPublicKey(k), nil
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// errNameFallback says a name is not one marshalName encodes itself.
var errNameFallback = errors.New("name needs encoding/asn1")

// marshalName is asn1.Marshal(n.ToRDNSequence()).
func marshalName(n pkix.Name) ([]byte, error) {
	rdns := n.ToRDNSequence()
	der, err := marshalRDNs(rdns)
	if errors.Is(err, errNameFallback) {
		return asn1.Marshal(rdns)
	}
	return der, err
}

func marshalRDNs(rdns pkix.RDNSequence) ([]byte, error) {
	size := 2
	for _, rdn := range rdns {
		// A SET OF with more than one member is sorted by encoding/asn1.
		if len(rdn) != 1 {
			return nil, errNameFallback
		}
		s, ok := rdn[0].Value.(string)
		if !ok {
			return nil, errNameFallback
		}
		if !utf8.ValidString(s) {
			return nil, errors.New("asn1: string not valid UTF-8")
		}
		size += len(s) + 4*len(rdn[0].Type) + 16
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, rdn := range rdns {
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(rdn[0].Type)
					s := rdn[0].Value.(string)
					b.AddASN1(stringTag(s), func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
				})
			})
		}
	})
	return b.Bytes()
}

// stringTag is encoding/asn1's choice for an untagged Go string:
// PrintableString when every byte is printable (no '*', no '&'), else
// UTF8String.
func stringTag(s string) cbasn1.Tag {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			'\'' <= c && c <= ')' || '+' <= c && c <= '/' || c == ' ' || c == ':' || c == '=' || c == '?') {
			return cbasn1.UTF8String
		}
	}
	return cbasn1.PrintableString
}

// nameKeywords are the attribute types FormatName writes by keyword;
// pkix.Name.String knows no DC and writes it as
// 0.9.2342.19200300.100.1.25=#13..., unreadable in every ISO 15118 name.
var nameKeywords = map[string]string{
	"2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST",
	"2.5.4.9": "STREET", "2.5.4.17": "POSTALCODE", "2.5.4.5": "SERIALNUMBER",
	"0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
}

// FormatName writes a DER name as RFC 4514 does (last RDN first, values
// escaped), with DC and the other usual attributes by keyword.
func FormatName(raw []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) > 0 {
		return "#" + hex.EncodeToString(raw)
	}
	parts := make([]string, 0, len(rdns))
	for i := len(rdns) - 1; i >= 0; i-- {
		var atvs []string
		for _, atv := range rdns[i] {
			key := nameKeywords[atv.Type.String()]
			if key == "" {
				key = atv.Type.String()
			}
			atvs = append(atvs, key+"="+escapeDN(fmt.Sprint(atv.Value)))
		}
		parts = append(parts, strings.Join(atvs, "+"))
	}
	return strings.Join(parts, ",")
}

// escapeDN escapes an attribute value as RFC 4514 2.4 asks.
func escapeDN(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case strings.ContainsRune(`,+"\<>;`, r),
			i == 0 && (r == ' ' || r == '#'),
			i == len(s)-1 && r == ' ':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
