package datadir

import (
	"bytes"
	"testing"
	"time"

	"github.com/pncpki/pncpki/testcerts"
)

func TestParseCertificates(t *testing.T) {
	pki, err := testcerts.Generate(1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a, b := pki.Get("secc").Cert, pki.Get("cpo-sub2").Cert
	mixed := append([]byte("junk before\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), EncodePEM(a, b)...)
	for name, tt := range map[string]struct {
		in   []byte
		want int
	}{
		"DER":               {a.Raw, 1},
		"PEM chain":         {EncodePEM(a, b), 2},
		"other blocks skip": {mixed, 2},
	} {
		got, err := ParseCertificates(tt.in)
		if err != nil || len(got) != tt.want || !bytes.Equal(got[0].Raw, a.Raw) {
			t.Errorf("%s: %d certificates, %v", name, len(got), err)
		}
	}
	for name, in := range map[string][]byte{
		"empty":        nil,
		"garbage":      []byte("garbage"),
		"no cert PEM":  []byte("-----BEGIN X-----\nAAAA\n-----END X-----\n"),
		"broken inner": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
	} {
		if _, err := ParseCertificates(in); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func FuzzParseCertificates(f *testing.F) {
	pki, _ := testcerts.Generate(1, time.Now())
	f.Add(pki.Get("secc").Cert.Raw)
	f.Add(EncodePEM(pki.Get("secc").Cert, pki.Get("cpo-sub2").Cert))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificates(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
	})
}
