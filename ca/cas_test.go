package ca_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/smallstep/certificates/cas/apiv1"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
)

func TestCAS(t *testing.T) {
	e := newEnv(t)
	var svc apiv1.CertificateAuthorityService = &ca.CAS{Service: e.svc, Profile: policies.ISO2SECC, Tenant: "cpo1"}
	key := p256(t)
	csr, err := ca.ParseCSR(csrFor(t, key, ca.Name("DE*ABC*E5", "Example CPO", "", "")))
	if err != nil {
		t.Fatal(err)
	}
	created, err := svc.CreateCertificate(&apiv1.CreateCertificateRequest{CSR: csr, Lifetime: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := created.Certificate
	if d := c.NotAfter.Sub(c.NotBefore); d != 30*24*time.Hour {
		t.Errorf("lifetime %v, want 30 days", d)
	}
	if len(created.CertificateChain) != 3 {
		t.Errorf("chain of %d", len(created.CertificateChain))
	}
	// The tenant policy applies through the adapter too.
	other, _ := ca.ParseCSR(csrFor(t, p256(t), ca.Name("DE*XYZ*E5", "", "", "")))
	if _, err := svc.CreateCertificate(&apiv1.CreateCertificateRequest{CSR: other}); ca.CodeOf(err) != ca.CodePolicyDenied {
		t.Errorf("foreign EVSEID through CAS: %v", err)
	}
	if _, err := svc.CreateCertificate(&apiv1.CreateCertificateRequest{Template: c}); ca.CodeOf(err) != ca.CodeBadRequest {
		t.Errorf("template without CSR: %v", err)
	}

	renewed, err := svc.RenewCertificate(&apiv1.RenewCertificateRequest{Template: c})
	if err != nil {
		t.Fatal(err)
	}
	r := renewed.Certificate
	if !key.PublicKey.Equal(r.PublicKey) || r.Subject.String() != c.Subject.String() || r.SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Errorf("renewal changed key or subject, or kept the serial")
	}
	stored, err := e.st.Certificate(t.Context(), "cpo-sub2", ca.SerialHex(r.SerialNumber))
	if err != nil || stored.Tenant != "cpo1" {
		t.Errorf("renewal not stored for the tenant: %+v %v", stored, err)
	}

	if _, err := svc.RevokeCertificate(&apiv1.RevokeCertificateRequest{SerialNumber: c.SerialNumber.String(), ReasonCode: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RenewCertificate(&apiv1.RenewCertificateRequest{Template: c}); ca.CodeOf(err) != ca.CodeAlreadyRevoked {
		t.Errorf("renewal of a revoked certificate: %v", err)
	}
	if _, err := svc.RevokeCertificate(&apiv1.RevokeCertificateRequest{Certificate: r, ReasonCode: 1}); err != nil {
		t.Fatal(err)
	}

	got, err := svc.(apiv1.CertificateAuthorityGetter).GetCertificateAuthority(&apiv1.GetCertificateAuthorityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(got.RootCertificate)
	inter := x509.NewCertPool()
	for _, i := range got.IntermediateCertificates {
		inter.AddCert(i)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: c.NotBefore.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("chain from GetCertificateAuthority does not verify: %v", err)
	}
}
