package exi_test

import (
	"testing"

	"github.com/pncpki/pncpki/contract/exi"
)

// BenchmarkEncode and BenchmarkDecode code a CertificateInstallationReq
// with 20 root IDs and a 500-byte certificate.
func BenchmarkEncode(b *testing.B) {
	doc := sample(20)
	for b.Loop() {
		if _, err := exi.ISO2.Encode(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	in, err := exi.ISO2.Encode(sample(20))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := exi.ISO2.Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}
