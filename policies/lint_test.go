package policies_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/testcerts"
)

var now = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

// resign copies a test PKI certificate, lets mutate change the copy, and
// signs it with the original issuer.
func resign(t *testing.T, pki *testcerts.PKI, name string, mutate func(*x509.Certificate, *any)) *x509.Certificate {
	t.Helper()
	e := pki.Get(name)
	parent := pki.Get(e.Parent)
	tmpl := *e.Cert
	tmpl.RawSubject = nil
	tmpl.Subject = pkix.Name{ExtraNames: e.Cert.Subject.Names}
	tmpl.ExtraExtensions = nil
	tmpl.Extensions = nil
	var pub any = e.Key.Public()
	mutate(&tmpl, &pub)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, parent.Cert, pub, parent.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func withDC(dc string) func(*x509.Certificate, *any) {
	return func(c *x509.Certificate, _ *any) {
		var names []pkix.AttributeTypeAndValue
		for _, n := range c.Subject.ExtraNames {
			if !n.Type.Equal(policies.OIDDomainComponent) {
				names = append(names, n)
			}
		}
		if dc != "" {
			names = append(names, pkix.AttributeTypeAndValue{Type: policies.OIDDomainComponent, Value: dc})
		}
		c.Subject.ExtraNames = names
	}
}

func TestCheckViolations(t *testing.T) {
	pki, err := testcerts.Generate(1, now)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tests := []struct {
		name, entry, profile, want string
		mutate                     func(*x509.Certificate, *any)
	}{
		{"P-384 SECC key", "secc", policies.ISO2SECC, policies.CodeKeyAlgorithm, func(_ *x509.Certificate, pub *any) { *pub = p384.Public() }},
		{"SHA-384 signature", "secc", policies.ISO2SECC, policies.CodeSigAlgorithm, func(c *x509.Certificate, _ *any) { c.SignatureAlgorithm = x509.ECDSAWithSHA384 }},
		{"EKU on an ISO leaf", "secc", policies.ISO2SECC, policies.CodeExtKeyUsage, func(c *x509.Certificate, _ *any) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }},
		{"no DC", "secc", policies.ISO2SECC, policies.CodeSubjectDC, withDC("")},
		{"wrong DC", "secc", policies.ISO2SECC, policies.CodeSubjectDC, withDC("MO")},
		{"keyAgreement missing", "secc", policies.ISO2SECC, policies.CodeKeyUsage, func(c *x509.Certificate, _ *any) { c.KeyUsage = x509.KeyUsageDigitalSignature }},
		{"SECC valid a year", "secc", policies.ISO2SECC, policies.CodeValidity, func(c *x509.Certificate, _ *any) { c.NotAfter = c.NotBefore.AddDate(1, 0, 0) }},
		{"contract valid a week", "contract", policies.ISO2Contract, policies.CodeValidity, func(c *x509.Certificate, _ *any) { c.NotAfter = c.NotBefore.AddDate(0, 0, 7) }},
		{"leaf that is a CA", "secc", policies.ISO2SECC, policies.CodeBasicConstraints, func(c *x509.Certificate, _ *any) { c.IsCA = true; c.KeyUsage |= x509.KeyUsageCertSign }},
		{"no SKI", "secc", policies.ISO2SECC, policies.CodeSKI, func(c *x509.Certificate, _ *any) { c.SubjectKeyId = nil }},
		{"Sub-CA 2 with pathLen 1", "cpo-sub2", policies.ISO2CPOSub2, policies.CodePathLen, func(c *x509.Certificate, _ *any) { c.MaxPathLen = 1; c.MaxPathLenZero = false }},
		{"Sub-CA 1 without pathLen", "cpo-sub1", policies.ISO2CPOSub1, policies.CodePathLen, func(c *x509.Certificate, _ *any) { c.MaxPathLen = -1 }},
		{"EMAID with wrong check digit", "contract", policies.ISO2Contract, policies.CodeSubjectCN, func(c *x509.Certificate, _ *any) {
			c.Subject.ExtraNames[0].Value = "UKSWI123456791A"
		}},
		{"over 800 bytes", "secc", policies.ISO2SECC, policies.CodeDERSize, func(c *x509.Certificate, _ *any) {
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: make([]byte, 400)}}
		}},
		{"station without O", "charging-station", policies.OCPPChargingStation, policies.CodeSubjectO, func(c *x509.Certificate, _ *any) {
			c.Subject.ExtraNames = slices.DeleteFunc(c.Subject.ExtraNames, func(a pkix.AttributeTypeAndValue) bool { return a.Type.String() == "2.5.4.10" })
		}},
		{"server without SAN", "csms-server", policies.OCPPCSMSServer, policies.CodeSAN, func(c *x509.Certificate, _ *any) { c.DNSNames = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := resign(t, pki, tt.entry, tt.mutate)
			p, _ := policies.Lookup(tt.profile)
			vs := p.Check(c, policies.SECCBoth)
			var codes []string
			for _, v := range vs {
				codes = append(codes, v.Code)
			}
			if !slices.Contains(codes, tt.want) {
				t.Errorf("violations %v, want %s", codes, tt.want)
			}
		})
	}
	// The unmodified copy is clean: the mutations, not resign, cause the findings.
	if vs := pki.Get("secc").Profile.Check(resign(t, pki, "secc", func(*x509.Certificate, *any) {}), 0); len(vs) > 0 {
		t.Errorf("unmodified re-signed SECC: %v", vs)
	}
}

// TestCheckViolations20: the ISO 15118-20 profiles take P-521 keys signed
// with SHA-512 only, and the -2 ones never a P-521 key; a -20 DC is
// optional but must be the role's when present.
func TestCheckViolations20(t *testing.T) {
	pki20, err := testcerts.Generate20(1, now)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	for _, tt := range []struct {
		name, entry, profile, want string
		mutate                     func(*x509.Certificate, *any)
	}{
		{"P-256 key", "secc", policies.ISO20SECC, policies.CodeKeyAlgorithm, func(_ *x509.Certificate, pub *any) { *pub = p256.Public() }},
		{"SHA-256 signature", "contract", policies.ISO20Contract, policies.CodeSigAlgorithm, func(c *x509.Certificate, _ *any) { c.SignatureAlgorithm = x509.ECDSAWithSHA256 }},
		{"another role's DC", "oem-prov", policies.ISO20OEMProv, policies.CodeSubjectDC, withDC("MO")},
		{"keyAgreement on a contract", "contract", policies.ISO20Contract, policies.CodeKeyUsage, func(c *x509.Certificate, _ *any) {
			c.KeyUsage |= x509.KeyUsageKeyAgreement
		}},
		{"a -20 key under the -2 profile", "secc", policies.ISO2SECC, policies.CodeKeyAlgorithm, func(_ *x509.Certificate, pub *any) { *pub = p521.Public() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := resign(t, pki20, tt.entry, tt.mutate)
			p, _ := policies.Lookup(tt.profile)
			var codes []string
			for _, v := range p.Check(c, policies.SECCBoth) {
				codes = append(codes, v.Code)
			}
			if !slices.Contains(codes, tt.want) {
				t.Errorf("violations %v, want %s", codes, tt.want)
			}
		})
	}
	// Without a DC, a -20 certificate is clean.
	if vs := pki20.Get("secc").Profile.Check(resign(t, pki20, "secc", withDC("")), 0); len(vs) > 0 {
		t.Errorf("-20 SECC without DC: %v", vs)
	}
}

// TestCheckVariants20: a certificate of one ISO 15118-20 variant breaks
// the other's profile, and the Ed448 OEM provisioning certificate's X448
// key is required there and nowhere else.
func TestCheckVariants20(t *testing.T) {
	pki20, err := testcerts.Generate20(1, now)
	if err != nil {
		t.Fatal(err)
	}
	pki20ed, err := testcerts.Generate20Ed448(1, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		cert    *x509.Certificate
		profile string
		want    []string // violation codes that must be there; none: clean
	}{
		{"Ed448 SECC", pki20ed.Get("secc").Cert, policies.ISO20EdSECC, nil},
		{"P-521 SECC as Ed448", pki20.Get("secc").Cert, policies.ISO20EdSECC, []string{policies.CodeKeyAlgorithm, policies.CodeSigAlgorithm}},
		{"Ed448 SECC as P-521", pki20ed.Get("secc").Cert, policies.ISO20SECC, []string{policies.CodeKeyAlgorithm, policies.CodeSigAlgorithm}},
		{"Ed448 OEM provisioning", pki20ed.Get("oem-prov").Cert, policies.ISO20EdOEMProv, nil},
		{"its X448 key where none belongs", pki20ed.Get("oem-prov").Cert, policies.ISO20OEMProv, []string{policies.CodeAltKey}},
		{"an Ed448 OEM provisioning certificate without X448 key", pki20ed.Get("oem-sub2").Cert, policies.ISO20EdOEMProv, []string{policies.CodeAltKey}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := policies.Lookup(tt.profile)
			var codes []string
			for _, v := range p.Check(tt.cert, policies.SECCBoth) {
				codes = append(codes, v.Code)
			}
			if tt.want == nil && len(codes) > 0 {
				t.Errorf("violations %v, want none", codes)
			}
			for _, w := range tt.want {
				if !slices.Contains(codes, w) {
					t.Errorf("violations %v, want %s", codes, w)
				}
			}
		})
	}
}

func TestDetect(t *testing.T) {
	pki, err := testcerts.Generate(2, now)
	if err != nil {
		t.Fatal(err)
	}
	pki20, err := testcerts.Generate20(2, now)
	if err != nil {
		t.Fatal(err)
	}
	pki20ed, err := testcerts.Generate20Ed448(2, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range slices.Concat(pki.Entries, pki20.Entries, pki20ed.Entries) {
		p, vs := policies.Detect(e.Cert, policies.SECCBoth)
		if len(vs) > 0 {
			t.Errorf("%s detected as %s with violations %v", e.Name, p.Name, vs)
		}
		// CPO and CPS sub-CAs share every rule; anything else is exact.
		same := p.Name == e.Profile.Name ||
			strings.Replace(p.Name, "cpo-", "cps-", 1) == e.Profile.Name
		if !same {
			t.Errorf("%s detected as %s, want %s", e.Name, p.Name, e.Profile.Name)
		}
	}
}

func TestCheckCSRIgnoresMissingDCAndO(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name("CS-1", "", "", "")}, key)
	csr, _ := x509.ParseCertificateRequest(der)
	p, _ := policies.Lookup(policies.OCPPChargingStation)
	if vs := p.CheckCSR(csr, policies.SECCBoth); len(vs) > 0 {
		t.Errorf("CSR without O for a station: %v (the tenant supplies O)", vs)
	}
}
