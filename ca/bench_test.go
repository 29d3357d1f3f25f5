package ca_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
)

// BenchmarkIssue measures full issuance: parse and verify the CSR, apply
// profile and tenant policy, build and lint the certificate, sign it with
// the CPO Sub-CA 2 file key, and commit it durably to SQLite
// (synchronous=FULL) before returning. Concurrent issuances share commits.
func BenchmarkIssue(b *testing.B) {
	e := newEnv(b)
	csr := csrFor(b, p256(b), ca.Name("DE*ABC*E1", "Example CPO", "", "CPO"))
	req := ca.Request{Profile: policies.ISO2SECC, Tenant: "cpo1", CSR: csr}
	ctx := context.Background()
	b.SetParallelism(64) // issuances arrive concurrently, as from many stations
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.svc.Issue(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}

// BenchmarkCreateCertificate is the bare signing rate for comparison:
// x509.CreateCertificate of the same kind of leaf with the same CA key, no
// CSR, no policy, no store.
func BenchmarkCreateCertificate(b *testing.B) {
	e := newEnv(b)
	a, err := e.svc.Authority("cpo-sub2")
	if err != nil {
		b.Fatal(err)
	}
	pub := p256(b).Public()
	now := time.Now()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serial, _ := ca.NewSerial(now, rand.Reader)
			t := &x509.Certificate{
				SerialNumber: serial, Subject: ca.Name("DE*ABC*E1", "Example CPO", "", "CPO"),
				NotBefore: now, NotAfter: now.Add(60 * 24 * time.Hour),
				KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
				BasicConstraintsValid: true, SubjectKeyId: []byte{1, 2, 3, 4},
				SignatureAlgorithm: x509.ECDSAWithSHA256,
			}
			if _, err := x509.CreateCertificate(rand.Reader, t, a.Cert, pub, a.Signer); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}

// BenchmarkPureCrypto is the cryptographic floor of one issuance: verify
// the CSR's signature and sign a certificate (x509.CreateCertificate, which
// also verifies what it signed). bench/api.sh compares the server's CPU
// per certificate with it.
func BenchmarkPureCrypto(b *testing.B) {
	e := newEnv(b)
	a, err := e.svc.Authority("cpo-sub2")
	if err != nil {
		b.Fatal(err)
	}
	csrPEM := csrFor(b, p256(b), ca.Name("DE*ABC*E1", "Example CPO", "", "CPO"))
	now := time.Now()
	b.ResetTimer()
	for b.Loop() {
		csr, err := ca.ParseCSR(csrPEM)
		if err != nil {
			b.Fatal(err)
		}
		serial, _ := ca.NewSerial(now, rand.Reader)
		t := &x509.Certificate{
			SerialNumber: serial, Subject: ca.Name("DE*ABC*E1", "Example CPO", "", "CPO"),
			NotBefore: now, NotAfter: now.Add(60 * 24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
			BasicConstraintsValid: true, SubjectKeyId: []byte{1, 2, 3, 4}, SignatureAlgorithm: x509.ECDSAWithSHA256,
		}
		if _, err := x509.CreateCertificate(rand.Reader, t, a.Cert, csr.PublicKey, a.Signer); err != nil {
			b.Fatal(err)
		}
	}
}
