package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Codes of external issuance.
const (
	// CodeUpstream says an upstream ecosystem did not sign a forwarded CSR.
	CodeUpstream = "upstream.failed"
	// CodeExternalRevoke refuses to revoke an upstream's certificate: only
	// its issuer can, through the ecosystem.
	CodeExternalRevoke = "certificate.external"
)

// External has the certificates of a profile signed by an upstream
// ecosystem instead of pncpki's own CA: a public ecosystem's V2G root is
// what vehicles on the road trust. pncpki checks the CSR and the tenant's
// policy as for its own issuance, forwards the CSR, checks the answer and
// records the certificate (under the CA Name, a store record without a
// key) before returning it.
type External struct {
	// Name is the issuer name the certificates are recorded under.
	Name string
	// URI names the upstream in the CA record (after store.ExternalKeyURI).
	URI string
	// Enroll forwards a CSR (DER) and returns the certificate, leaf
	// first, and its CAs up to (not necessarily including) the root.
	Enroll func(ctx context.Context, csr []byte) ([]*x509.Certificate, error)
	// CACerts returns the upstream's CA chain for the profile, issuer
	// first (EST cacerts answers with it); nil: the chain of the last
	// enrollment is not known before one.
	CACerts func(ctx context.Context) ([]*x509.Certificate, error)
}

// ExternalCACerts returns the upstream's CA chain of a profile whose
// certificates an upstream signs; ok is false for pncpki's own profiles.
func (s *Service) ExternalCACerts(ctx context.Context, profile string) (chain []*x509.Certificate, ok bool, err error) {
	x := s.external(profile)
	if x == nil {
		return nil, false, nil
	}
	if x.CACerts == nil {
		return nil, true, refuse(CodeUpstream, "the upstream's CA chain is not known")
	}
	chain, err = x.CACerts(ctx)
	if err != nil {
		return nil, true, &Error{Code: CodeUpstream, Message: "the upstream's CA chain", Err: err}
	}
	return chain, true, nil
}

// SetExternal has the certificates of profile signed by x (nil: by
// pncpki's own CAs again).
func (s *Service) SetExternal(profile string, x *External) {
	s.xmu.Lock()
	defer s.xmu.Unlock()
	if s.externals == nil {
		s.externals = map[string]*External{}
	}
	if x == nil {
		delete(s.externals, profile)
		return
	}
	s.externals[profile] = x
}

func (s *Service) external(profile string) *External {
	s.xmu.RLock()
	defer s.xmu.RUnlock()
	return s.externals[profile]
}

// issueExternal forwards a checked CSR to the upstream and records what it
// signed: the certificate must certify the CSR's key with its common name
// and be no CA.
func (s *Service) issueExternal(ctx context.Context, p *policies.Profile, x *External, csr *x509.CertificateRequest, subj policies.Subject, tenant string) (*Issued, error) {
	certs, err := x.Enroll(ctx, csr.Raw)
	if err != nil {
		return nil, &Error{Code: CodeUpstream, Message: "the upstream did not sign the CSR", Err: err}
	}
	if len(certs) < 2 {
		return nil, refuse(CodeUpstream, "the upstream answered %d certificates, want the certificate and its CA", len(certs))
	}
	leaf := certs[0]
	switch {
	case !publicKeysEqual(leaf.PublicKey, csr.PublicKey):
		return nil, refuse(CodeUpstream, "the upstream's certificate does not certify the CSR's key")
	case leaf.Subject.CommonName != subj.CommonName:
		return nil, refuse(CodeUpstream, "the upstream's certificate is for %q, not %q", leaf.Subject.CommonName, subj.CommonName)
	case leaf.IsCA:
		return nil, refuse(CodeUpstream, "the upstream answered a CA certificate")
	case ed448x509.CheckSignature(leaf, certs[1]) != nil:
		return nil, refuse(CodeUpstream, "the upstream's certificate is not signed by the CA it sent")
	}
	if err := s.externalCA(ctx, x, p, certs[1]); err != nil {
		return nil, err
	}
	rec := &store.Certificate{Issuer: x.Name, Serial: SerialHex(leaf.SerialNumber), Profile: p.Name, Tenant: tenant,
		CommonName: subj.CommonName, NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(), DER: leaf.Raw, CreatedAt: s.opts.Now().UTC()}
	if err := s.opts.Store.PutCertificate(ctx, rec); err != nil {
		return nil, fmt.Errorf("record certificate: %w", err)
	}
	is := &Issued{Record: rec, Chain: certs[1:], ChainPEM: chainPEM(certs[1:])}
	is.once.Do(func() { is.cert = leaf })
	return is, nil
}

// externalCA makes sure the store has the record of the upstream's CA;
// a new issuing CA certificate replaces the recorded one.
func (s *Service) externalCA(ctx context.Context, x *External, p *policies.Profile, issuer *x509.Certificate) error {
	rec, err := s.opts.Store.CA(ctx, x.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		profile := ""
		if len(p.Issuers) > 0 {
			profile = p.Issuers[0]
		}
		return s.opts.Store.CreateCA(ctx, &store.CA{Name: x.Name, Profile: profile, CertDER: issuer.Raw,
			KeyURI: store.ExternalKeyURI + x.URI, CreatedAt: s.opts.Now().UTC()})
	case err != nil:
		return err
	case !rec.External():
		return refuse(CodeIssuerMismatch, "CA %s is pncpki's own; name the upstream's CA differently", x.Name)
	case string(rec.CertDER) != string(issuer.Raw):
		return s.opts.Store.SetCACertificate(ctx, x.Name, issuer.Raw)
	}
	return nil
}
