package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/smallstep/certificates/cas/apiv1"

	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// CAS exposes one profile of a Service through smallstep's cas/apiv1
// CertificateAuthorityService, so that step-ca, or other code written
// against that interface, issues through pncpki's profiles, tenant policy,
// lint and store. Requests are checked exactly as Service.Issue checks them.
type CAS struct {
	Service *Service
	Profile string // profile of the certificates created
	Issuer  string // CA name; empty picks the only CA for Profile
	Tenant  string // tenant whose policy applies; empty for an administrator
}

var (
	_ apiv1.CertificateAuthorityService = (*CAS)(nil)
	_ apiv1.CertificateAuthorityGetter  = (*CAS)(nil)
)

// validity turns a requested lifetime into whole days (0: profile default).
func validity(lifetime time.Duration) policies.Period {
	if lifetime <= 0 {
		return policies.Period{}
	}
	return policies.Period{Days: int((lifetime + 24*time.Hour - 1) / (24 * time.Hour))}
}

// CreateCertificate issues from req.CSR; the smallstep template is not
// used: the profile decides what the certificate holds.
func (c *CAS) CreateCertificate(req *apiv1.CreateCertificateRequest) (*apiv1.CreateCertificateResponse, error) {
	if req.CSR == nil {
		return nil, refuse(CodeBadRequest, "a CSR is required: pncpki issues only from CSRs")
	}
	iss, err := c.Service.Issue(context.Background(), Request{
		Profile: c.Profile, CSR: req.CSR.Raw, Tenant: c.Tenant, Issuer: c.Issuer, Validity: validity(req.Lifetime),
	})
	if err != nil {
		return nil, err
	}
	return &apiv1.CreateCertificateResponse{Certificate: iss.Cert(), CertificateChain: iss.Chain}, nil
}

// RenewCertificate re-issues the certificate in req.Template (one pncpki
// issued and has not revoked) for the same key and subject.
func (c *CAS) RenewCertificate(req *apiv1.RenewCertificateRequest) (*apiv1.RenewCertificateResponse, error) {
	if req.Template == nil {
		return nil, refuse(CodeBadRequest, "the certificate to renew is required")
	}
	issuer, err := c.issuer()
	if err != nil {
		return nil, err
	}
	iss, err := c.Service.Renew(context.Background(), issuer, SerialHex(req.Template.SerialNumber), validity(req.Lifetime))
	if err != nil {
		return nil, err
	}
	return &apiv1.RenewCertificateResponse{Certificate: iss.Cert(), CertificateChain: iss.Chain}, nil
}

// RevokeCertificate revokes req.Certificate, or the certificate with the
// decimal serial req.SerialNumber (smallstep's convention).
func (c *CAS) RevokeCertificate(req *apiv1.RevokeCertificateRequest) (*apiv1.RevokeCertificateResponse, error) {
	serial := new(big.Int)
	switch {
	case req.Certificate != nil:
		serial = req.Certificate.SerialNumber
	default:
		if _, ok := serial.SetString(req.SerialNumber, 10); !ok {
			return nil, refuse(CodeBadRequest, "serial %q is not a decimal number", req.SerialNumber)
		}
	}
	issuer, err := c.issuer()
	if err != nil {
		return nil, err
	}
	rec, err := c.Service.Revoke(context.Background(), issuer, SerialHex(serial), req.ReasonCode)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, err
	}
	a, _ := c.Service.Authority(issuer)
	return &apiv1.RevokeCertificateResponse{Certificate: cert, CertificateChain: a.Chain}, nil
}

// GetCertificateAuthority returns the root above the issuing CA and the
// intermediates between, nearest first.
func (c *CAS) GetCertificateAuthority(*apiv1.GetCertificateAuthorityRequest) (*apiv1.GetCertificateAuthorityResponse, error) {
	name, err := c.issuer()
	if err != nil {
		return nil, err
	}
	a, err := c.Service.Authority(name)
	if err != nil {
		return nil, err
	}
	n := len(a.Chain)
	return &apiv1.GetCertificateAuthorityResponse{RootCertificate: a.Chain[n-1], IntermediateCertificates: a.Chain[:n-1]}, nil
}

func (c *CAS) issuer() (string, error) {
	p, err := policies.Lookup(c.Profile)
	if err != nil {
		return "", &Error{Code: CodeProfileUnknown, Message: err.Error()}
	}
	a, err := c.Service.issuerFor(p, c.Issuer)
	if err != nil {
		return "", err
	}
	return a.Name, nil
}

// Renew re-issues a stored, unrevoked certificate for the same key and
// subject under the same issuer, profile and tenant; the tenant policy is
// applied again, so a tenant that lost an identifier cannot renew it.
func (s *Service) Renew(ctx context.Context, issuer, serial string, v policies.Period) (*Issued, error) {
	rec, err := s.opts.Store.Certificate(ctx, issuer, serial)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(CodeNotFound, "no certificate %s under %s", serial, issuer)
	} else if err != nil {
		return nil, err
	}
	if rec.Revoked() {
		return nil, refuse(CodeAlreadyRevoked, "%s/%s is revoked: it cannot be renewed", issuer, serial)
	}
	old, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("stored certificate %s/%s: %w", issuer, serial, err)
	}
	p, err := policies.Lookup(rec.Profile)
	if err != nil {
		return nil, err
	}
	a, err := s.Authority(issuer)
	if err != nil {
		return nil, err
	}
	subj := policies.Subject{CommonName: old.Subject.CommonName, DNSNames: old.DNSNames, IPAddresses: old.IPAddresses}
	if len(old.Subject.Organization) > 0 {
		subj.Organization = old.Subject.Organization[0]
	}
	if len(old.Subject.Country) > 0 {
		subj.Country = old.Subject.Country[0]
	}
	if rec.Tenant != "" {
		t, err := s.tenant(ctx, rec.Tenant)
		if err != nil {
			return nil, err
		}
		if err := t.Permit(p, subj); err != nil {
			return nil, &Error{Code: CodePolicyDenied, Message: "tenant policy refuses", Err: err}
		}
	}
	return s.issue(ctx, p, a, old.PublicKey, subj, v, rec.Tenant)
}
