package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

func TestMarshalSPKI(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, pub := range []crypto.PublicKey{&p256.PublicKey, &p384.PublicKey, &rsaKey.PublicKey, edPub} {
		want, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := marshalSPKI(pub); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%T: %x, %v\nwant %x", pub, got, err, want)
		}
	}
	if _, err := marshalSPKI(struct{}{}); err == nil {
		t.Error("marshalSPKI accepted an unknown key type")
	}
}

func TestMarshalName(t *testing.T) {
	atv := func(oid asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: oid, Value: v}
	}
	for _, n := range []pkix.Name{
		{},
		Name("DE8AA1A2B3C4D5X", "Test", "DE", "MO"),
		Name("DE*ABC*E123456*1", "Example & Co", "", "CPO"),
		Name("Bäckerei Müller", "Élan", "FR", ""),
		Name("", "", "", ""),
		{CommonName: "x", Organization: []string{"a", "b"}, Country: []string{"DE"}, SerialNumber: "42"},
		{ExtraNames: []pkix.AttributeTypeAndValue{atv(oidCN, "bad \xff utf-8")}},
		{ExtraNames: []pkix.AttributeTypeAndValue{atv(oidCN, 7)}},
		{ExtraNames: []pkix.AttributeTypeAndValue{atv(asn1.ObjectIdentifier{3, 1}, "bad OID")}},
		{ExtraNames: []pkix.AttributeTypeAndValue{atv(oidCN, asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte("raw")})}},
	} {
		checkMarshalName(t, n)
	}
}

// FuzzMarshalName compares marshalName with encoding/asn1 on arbitrary
// attribute values and types.
func FuzzMarshalName(f *testing.F) {
	f.Add("DE8AA1A2B3C4D5X", "Test", uint8(0))
	f.Add("DE*ABC*E1", "A & B", uint8(1))
	f.Add("\xff", "ä", uint8(2))
	f.Fuzz(func(t *testing.T, a, b string, arc uint8) {
		n := Name(a, b, a+b, b)
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{int(arc % 4), int(arc / 4)}, Value: b})
		checkMarshalName(t, n)
	})
}

func checkMarshalName(t *testing.T, n pkix.Name) {
	t.Helper()
	want, werr := asn1.Marshal(n.ToRDNSequence())
	got, err := marshalName(n)
	if (err != nil) != (werr != nil) || !bytes.Equal(got, want) {
		t.Errorf("%v: %x, %v\nwant %x, %v", n, got, err, want, werr)
	}
}

// TestFormatName: RFC 4514 order and escaping, with DC by keyword.
func TestFormatName(t *testing.T) {
	for _, tc := range []struct {
		cn, o, c, dc, want string
	}{
		{"CPO Sub-CA 2", "Stadtwerke Musterstadt Energie GmbH", "DE", "V2G", "DC=V2G,C=DE,O=Stadtwerke Musterstadt Energie GmbH,CN=CPO Sub-CA 2"},
		{"DE*SWM*E1*1", "", "", "CPO", "DC=CPO,CN=DE*SWM*E1*1"},
		{"Müller, Söhne + Co", "#1 \"Laden\"", "", "", `O=\#1 \"Laden\",CN=Müller\, Söhne \+ Co`},
	} {
		n := Name(tc.cn, tc.o, tc.c, tc.dc)
		der, err := asn1.Marshal(n.ToRDNSequence())
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatName(der); got != tc.want {
			t.Errorf("FormatName = %s, want %s", got, tc.want)
		}
	}
}
