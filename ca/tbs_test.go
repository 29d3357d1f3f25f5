package ca_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/testcerts"
)

// TestTBSMatchesCreateCertificate: for every profile of the test PKI (and
// a server certificate with IP addresses, a root, an RSA-free P-384
// issuer), the certificates pncpki encodes itself are byte for byte what
// x509.CreateCertificate makes of the same template with the same
// deterministic signature.
func TestTBSMatchesCreateCertificate(t *testing.T) {
	pki, err := testcerts.Generate(3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b := &ca.Builder{Now: time.Now, Rand: rand.Reader, PublicURL: "http://pki.example.com"}
	compare := func(t *testing.T, tmpl, parent *x509.Certificate, signer *ecdsa.PrivateKey) {
		t.Helper()
		fast, err := ca.CreateFast(nil, tmpl, parent, signer)
		if err != nil {
			t.Fatalf("fast path: %v", err)
		}
		want, err := x509.CreateCertificate(nil, tmpl, parent, tmpl.PublicKey, signer)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, want) {
			got, _ := x509.ParseCertificate(fast)
			exp, _ := x509.ParseCertificate(want)
			t.Fatalf("DER differs\n got %x\nwant %x", got.RawTBSCertificate, exp.RawTBSCertificate)
		}
		c, err := x509.ParseCertificate(fast)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckSignatureFrom(parent); err != nil && parent != tmpl {
			t.Fatalf("signature: %v", err)
		}
	}
	pki20, err := testcerts.Generate20(3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []struct {
		prefix string
		pki    *testcerts.PKI
	}{{"", pki}, {"iso15118-20/", pki20}} {
		pki := set.pki
		for _, e := range pki.Entries {
			t.Run(set.prefix+e.Name, func(t *testing.T) {
				subj := policies.Subject{CommonName: e.Cert.Subject.CommonName, DNSNames: e.Cert.DNSNames, IPAddresses: e.Cert.IPAddresses}
				if len(e.Cert.Subject.Organization) > 0 {
					subj.Organization = e.Cert.Subject.Organization[0]
				}
				if e.Parent == "" {
					tmpl, err := b.Template(e.Profile, nil, e.Key.Public(), subj, policies.Period{})
					if err != nil {
						t.Fatal(err)
					}
					compare(t, tmpl, tmpl, e.Key)
					return
				}
				p := pki.Get(e.Parent)
				issuer := &ca.Authority{Name: p.Name, Profile: p.Profile, Cert: p.Cert, Signer: p.Key}
				tmpl, err := b.Template(e.Profile, issuer, e.Key.Public(), subj, policies.Period{})
				if err != nil {
					t.Fatal(err)
				}
				compare(t, tmpl, p.Cert, p.Key)
			})
		}
	}
	t.Run("server with IP addresses", func(t *testing.T) {
		p := pki.Get("csms-root")
		prof, _ := policies.Lookup(policies.OCPPCSMSServer)
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl, err := b.Template(prof, &ca.Authority{Name: p.Name, Profile: p.Profile, Cert: p.Cert, Signer: p.Key}, k.Public(),
			policies.Subject{CommonName: "csms.example.com", DNSNames: []string{"csms.example.com", "b.example.com"},
				IPAddresses: []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")}}, policies.Period{})
		if err != nil {
			t.Fatal(err)
		}
		compare(t, tmpl, p.Cert, p.Key)
	})
	t.Run("not on the fast path", func(t *testing.T) {
		p := pki.Get("csms-root")
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: p.Cert.SerialNumber, SubjectKeyId: []byte{1}, BasicConstraintsValid: true,
			PublicKey: k.Public(), SignatureAlgorithm: x509.ECDSAWithSHA256, EmailAddresses: []string{"a@example.com"}}
		if _, err := ca.CreateFast(nil, tmpl, p.Cert, p.Key); err == nil {
			t.Error("a template with e-mail addresses took the fast path")
		}
		if _, err := ca.CreateFast(nil, tmpl, p.Cert, k); err == nil {
			t.Error("a key that is not the issuer's took the fast path")
		}
	})
}

// TestMaxDER: the size MaxDER gives before signing is never below the
// certificate's and only as far above it as the signature came out
// shorter than its longest; in a few hundred signatures some reach it.
func TestMaxDER(t *testing.T) {
	e := newEnv(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		profile, issuer string
		subj            policies.Subject
	}{
		{policies.ISO2Contract, "mo-sub2", policies.Subject{CommonName: "DE8AAC12345678D"}},
		{policies.ISO2Contract, "mo-sub2", policies.Subject{CommonName: "DE8AAC12345678D", Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE"}},
		{policies.ISO2CPOSub2, "cpo-sub1", policies.Subject{CommonName: "CPO Sub-CA 2", Organization: "Example CPO"}},
	}
	for _, tc := range tests {
		t.Run(tc.profile+"/"+tc.subj.CommonName, func(t *testing.T) {
			max, err := e.svc.MaxDER(tc.profile, tc.issuer, &key.PublicKey, tc.subj, policies.Period{})
			if err != nil {
				t.Fatal(err)
			}
			reached := false
			for range 300 {
				s, err := e.svc.SignForKeyAs("", tc.profile, tc.issuer, &key.PublicKey, tc.subj, policies.Period{})
				if err != nil {
					t.Fatal(err)
				}
				if len(s.DER) > max {
					t.Fatalf("certificate of %d bytes, over the bound of %d", len(s.DER), max)
				}
				if max-len(s.DER) > 8 {
					t.Fatalf("certificate of %d bytes, %d under the bound", len(s.DER), max-len(s.DER))
				}
				reached = reached || len(s.DER) == max
			}
			if !reached {
				t.Fatalf("no certificate reached the bound of %d bytes", max)
			}
		})
	}
}

// TestLongestSize: a certificate counted with its longest signature is
// as long as the longest of many signings of the same template.
func TestLongestSize(t *testing.T) {
	pki, err := testcerts.Generate(3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		key, _ := ecdsa.GenerateKey(curve, rand.Reader)
		parent := pki.Get("mo-sub2").Cert
		tmpl := *pki.Get("contract").Cert
		tmpl.SignatureAlgorithm = map[elliptic.Curve]x509.SignatureAlgorithm{elliptic.P256(): x509.ECDSAWithSHA256, elliptic.P384(): x509.ECDSAWithSHA384}[curve]
		parentCopy := *parent
		parentCopy.PublicKey = nil
		longest, want := 0, 0
		for range 300 {
			der, err := x509.CreateCertificate(rand.Reader, &tmpl, &parentCopy, tmpl.PublicKey, key)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := x509.ParseCertificate(der)
			longest = max(longest, len(der))
			if n := ca.LongestSize(c); want == 0 {
				want = n
			} else if n != want {
				t.Fatalf("%s: LongestSize %d, earlier %d", curve.Params().Name, n, want)
			}
		}
		if longest != want {
			t.Errorf("%s: LongestSize %d, longest signing %d", curve.Params().Name, want, longest)
		}
	}
}
