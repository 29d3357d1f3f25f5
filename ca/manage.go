package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// CAConfig describes a CA to create or to request from an outside root.
type CAConfig struct {
	Name    string // unique, [a-z0-9-], e.g. "cpo-sub2"
	Profile string
	// Parent names the issuing CA held by pncpki; empty for a root.
	Parent                            string
	CommonName, Organization, Country string
	// KeyURI names an existing key; empty generates a P-256 key in
	// keys/<name>.key under the data directory.
	KeyURI   string
	Validity policies.Period
	// IssueFrom, when set, is when the new CA takes over issuance from
	// the CAs of its profile there are (store.CA.IssueFrom): a rollover.
	IssueFrom time.Time
}

var caName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidName reports whether name is a valid CA name: 1..63 lower-case
// letters, digits and '-', starting with a letter or digit.
func ValidName(name string) bool { return caName.MatchString(name) }

func (s *Service) prepareCA(ctx context.Context, cfg *CAConfig) (*policies.Profile, crypto.Signer, error) {
	if !caName.MatchString(cfg.Name) {
		return nil, nil, refuse(CodeBadRequest, "CA name %q: want lower-case letters, digits and '-'", cfg.Name)
	}
	p, err := policies.Lookup(cfg.Profile)
	if err != nil {
		return nil, nil, &Error{Code: CodeProfileUnknown, Message: err.Error()}
	}
	if !p.IsCA() {
		return nil, nil, refuse(CodeBadRequest, "%s is not a CA profile", p.Name)
	}
	if _, err := s.opts.Store.CA(ctx, cfg.Name); err == nil {
		return nil, nil, fmt.Errorf("CA %s: %w", cfg.Name, store.ErrExists)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, nil, err
	}
	if cfg.CommonName == "" {
		cfg.CommonName = cfg.Name
	}
	var signer crypto.Signer
	if cfg.KeyURI == "" {
		cfg.KeyURI = "softkms:path=" + filepath.Join("keys", cfg.Name+".key")
		if signer, err = GenerateKeyFileFor(FilePath(cfg.KeyURI, s.opts.DataDir), p.Keys); err != nil {
			return nil, nil, err
		}
	} else if signer, err = s.signers.Load(ctx, cfg.KeyURI); err != nil {
		return nil, nil, err
	}
	if vs := p.CheckKey(signer.Public()); len(vs) > 0 {
		return nil, nil, &Error{Code: CodeCSRProfile, Message: "CA key does not fit " + p.Name, Violations: vs}
	}
	return p, signer, nil
}

// CreateCA creates a root (no Parent) or a sub-CA signed by Parent, stores
// it (a sub-CA also as a certificate of its parent, so it can be revoked)
// and makes it available for issuing.
func (s *Service) CreateCA(ctx context.Context, cfg CAConfig) (*Authority, error) {
	p, signer, err := s.prepareCA(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	subj := policies.Subject{CommonName: cfg.CommonName, Organization: cfg.Organization, Country: cfg.Country}
	var parent *Authority
	if p.Role == policies.RoleRoot {
		if cfg.Parent != "" {
			return nil, refuse(CodeBadRequest, "%s is a root: it has no parent", p.Name)
		}
	} else if parent, err = s.issuerFor(p, cfg.Parent); err != nil {
		return nil, err
	}
	var cert *x509.Certificate
	var signed *Signed
	if parent == nil {
		cert, err = s.b.Certify(p, nil, signer, signer.Public(), subj, cfg.Validity)
	} else if signed, err = s.sign(p, parent, signer.Public(), subj, cfg.Validity, ""); err == nil {
		cert, err = x509.ParseCertificate(signed.DER)
	}
	if err != nil {
		return nil, err
	}
	if err := s.checkHierarchy(ctx, cfg.Name, p, cert, signer, parent); err != nil {
		return nil, err
	}
	if signed != nil {
		if _, err := signed.Record(ctx); err != nil {
			return nil, err
		}
	}
	rec := &store.CA{Name: cfg.Name, Profile: p.Name, CertDER: cert.Raw, KeyURI: cfg.KeyURI, CreatedAt: s.opts.Now().UTC(), IssueFrom: cfg.IssueFrom}
	if parent != nil {
		rec.Parent = parent.Name
	}
	if err := s.opts.Store.CreateCA(ctx, rec); err != nil {
		return nil, err
	}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s.Authority(cfg.Name)
}

// RequestCA creates the key (or uses KeyURI) of a sub-CA that an outside
// root will certify, stores the CA as pending and returns the DER CSR to
// send to the root operator. ImportCACertificate completes it.
func (s *Service) RequestCA(ctx context.Context, cfg CAConfig) ([]byte, error) {
	p, signer, err := s.prepareCA(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	if p.Role == policies.RoleRoot {
		return nil, refuse(CodeBadRequest, "%s is self-signed; it needs no CSR", p.Name)
	}
	csr, err := x509.CreateCertificateRequest(s.b.sigRand(), &x509.CertificateRequest{
		Subject:            Name(cfg.CommonName, cfg.Organization, cfg.Country, p.DC),
		SignatureAlgorithm: signatureAlgorithm(signer.Public()),
	}, signer)
	if err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}
	rec := &store.CA{Name: cfg.Name, Profile: p.Name, KeyURI: cfg.KeyURI, CreatedAt: s.opts.Now().UTC(), IssueFrom: cfg.IssueFrom}
	if err := s.opts.Store.CreateCA(ctx, rec); err != nil {
		return nil, err
	}
	return csr, nil
}

// ImportCACertificate installs the certificate an outside root signed for a
// pending CA, after checking that it certifies the CA's key and fits its
// profile. An empty name picks the pending CA whose key it certifies.
func (s *Service) ImportCACertificate(ctx context.Context, name string, der []byte) (*Authority, error) {
	if name == "" {
		var err error
		if name, err = s.pendingFor(ctx, der); err != nil {
			return nil, err
		}
	}
	rec, err := s.opts.Store.CA(ctx, name)
	if err != nil {
		return nil, err
	}
	if !rec.Pending() {
		return nil, refuse(CodeBadRequest, "CA %s already has a certificate", name)
	}
	cert, err := s.checkCACert(ctx, rec.Profile, rec.KeyURI, der)
	if err != nil {
		return nil, err
	}
	if err := s.checkImport(ctx, name, rec.Profile, rec.KeyURI, rec.Parent, cert); err != nil {
		return nil, err
	}
	if err := s.opts.Store.SetCACertificate(ctx, name, cert.Raw); err != nil {
		return nil, err
	}
	// Signed by a CA held here, such as an offline root: recorded as a
	// certificate of it too, so that its imported CRL revokes it here
	// and OCSP answers for it.
	if parent := s.SignedBy(cert.RawIssuer, func(p *x509.Certificate) error { return ed448x509.CheckSignature(cert, p) }); parent != nil {
		if err := s.opts.Store.PutCertificate(ctx, &store.Certificate{Issuer: parent.Name, Serial: SerialHex(cert.SerialNumber),
			Profile: rec.Profile, CommonName: cert.Subject.CommonName, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
			DER: cert.Raw, CreatedAt: s.opts.Now().UTC()}); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("record %s as a certificate of %s: %w", name, parent.Name, err)
		}
	}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s.Authority(name)
}

// ImportCA adds an existing CA (certificate and key) of an operator who
// already runs a PKI. An empty profile is detected from the certificate.
func (s *Service) ImportCA(ctx context.Context, name, profile, keyURI, parent string, der []byte) (*Authority, error) {
	if !caName.MatchString(name) {
		return nil, refuse(CodeBadRequest, "CA name %q: want lower-case letters, digits and '-'", name)
	}
	if profile == "" {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, refuse(CodeBadRequest, "parse CA certificate: %v", err)
		}
		ps := policies.Matching(c, s.opts.SECCForms)
		if parent != "" {
			pa, err := s.Authority(parent)
			if err != nil {
				return nil, err
			}
			ps = slices.DeleteFunc(ps, func(p *policies.Profile) bool { return !slices.Contains(p.Issuers, pa.Profile.Name) })
		}
		switch len(ps) {
		case 0:
			p, vs := policies.Detect(c, s.opts.SECCForms)
			return nil, &Error{Code: CodeLint, Message: "CA certificate fits no profile; closest is " + p.Name, Violations: vs}
		case 1:
			profile = ps[0].Name
		default:
			names := make([]string, len(ps))
			for i, p := range ps {
				names[i] = p.Name
			}
			return nil, refuse(CodeBadRequest, "CA certificate fits %v: name the profile", names)
		}
	}
	cert, err := s.checkCACert(ctx, profile, keyURI, der)
	if err != nil {
		return nil, err
	}
	if parent != "" {
		pa, err := s.Authority(parent)
		if err != nil {
			return nil, err
		}
		if err := ed448x509.CheckSignature(cert, pa.Cert); err != nil {
			return nil, refuse(CodeBadRequest, "CA certificate is not signed by %s: %v", parent, err)
		}
	}
	if err := s.checkImport(ctx, name, profile, keyURI, parent, cert); err != nil {
		return nil, err
	}
	if err := s.opts.Store.CreateCA(ctx, &store.CA{Name: name, Profile: profile, Parent: parent, CertDER: cert.Raw, KeyURI: keyURI, CreatedAt: s.opts.Now().UTC()}); err != nil {
		return nil, err
	}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s.Authority(name)
}

// checkHierarchy hands a CA about to be stored to Options.CheckHierarchy:
// an Authority as Reload will make it, beside the ones there are.
func (s *Service) checkHierarchy(ctx context.Context, name string, p *policies.Profile, cert *x509.Certificate, signer crypto.Signer, parent *Authority) error {
	if s.opts.CheckHierarchy == nil {
		return nil
	}
	a := &Authority{Name: name, Profile: p, Cert: cert, Signer: signer, Chain: []*x509.Certificate{cert}}
	if parent != nil {
		a.Chain = append(a.Chain, parent.Chain...)
	}
	return s.opts.CheckHierarchy(ctx, a, s.Authorities())
}

// checkImport is checkHierarchy for an imported CA certificate.
func (s *Service) checkImport(ctx context.Context, name, profile, keyURI, parent string, cert *x509.Certificate) error {
	if s.opts.CheckHierarchy == nil {
		return nil
	}
	p, err := policies.Lookup(profile)
	if err != nil {
		return err
	}
	signer, err := s.signers.Load(ctx, keyURI)
	if err != nil {
		return err
	}
	var pa *Authority
	if parent != "" {
		if pa, err = s.Authority(parent); err != nil {
			return err
		}
	}
	return s.checkHierarchy(ctx, name, p, cert, signer, pa)
}

// pendingFor finds the pending CA whose key a certificate certifies.
func (s *Service) pendingFor(ctx context.Context, der []byte) (string, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", refuse(CodeBadRequest, "parse CA certificate: %v", err)
	}
	cas, err := s.opts.Store.CAs(ctx)
	if err != nil {
		return "", err
	}
	var pending []string
	for _, c := range cas {
		if !c.Pending() {
			continue
		}
		pending = append(pending, c.Name)
		signer, err := s.signers.Load(ctx, c.KeyURI)
		if err != nil {
			return "", fmt.Errorf("CA %s: %w", c.Name, err)
		}
		if publicKeysEqual(signer.Public(), ed448x509.CertificateKey(cert)) {
			return c.Name, nil
		}
	}
	return "", refuse(CodeBadRequest, "no pending CA has the key this certificate certifies (pending: %v)", pending)
}

func (s *Service) checkCACert(ctx context.Context, profile, keyURI string, der []byte) (*x509.Certificate, error) {
	p, err := policies.Lookup(profile)
	if err != nil {
		return nil, &Error{Code: CodeProfileUnknown, Message: err.Error()}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, refuse(CodeBadRequest, "parse CA certificate: %v", err)
	}
	if vs := p.Check(cert, s.opts.SECCForms); len(vs) > 0 {
		return nil, &Error{Code: CodeLint, Message: "CA certificate does not fit " + p.Name, Violations: vs}
	}
	signer, err := s.signers.Load(ctx, keyURI)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(signer.Public(), ed448x509.CertificateKey(cert)) {
		return nil, refuse(CodeBadRequest, "certificate does not certify the key %s", redact(keyURI))
	}
	return cert, nil
}

// IssueForKey issues a certificate of profile for a public key the caller
// already holds (no CSR): used for the CPS leaf and test PKIs. The same
// lint and store rules apply as for Issue.
func (s *Service) IssueForKey(ctx context.Context, profile, issuerName string, pub crypto.PublicKey, subj policies.Subject, validity policies.Period) (*Issued, error) {
	return s.IssueForKeyAs(ctx, "", profile, issuerName, pub, subj, validity)
}

// IssueForKeyAs is IssueForKey for a tenant, recorded as the certificate's
// owner: the contract service issues an eMSP's contract certificates for
// keys it generates itself.
func (s *Service) IssueForKeyAs(ctx context.Context, tenant, profile, issuerName string, pub crypto.PublicKey, subj policies.Subject, validity policies.Period) (*Issued, error) {
	x, err := s.SignForKeyAs(tenant, profile, issuerName, pub, subj, validity)
	if err != nil {
		return nil, err
	}
	return x.Record(ctx)
}

// SignForKeyAs is the first half of IssueForKeyAs: it builds, lints and
// signs the certificate; Record stores it. In between, the caller may build
// its answer around the DER while the store commits (an installation
// response is encrypted and signed meanwhile), but nothing may leave the
// process before Record has succeeded.
func (s *Service) SignForKeyAs(tenant, profile, issuerName string, pub crypto.PublicKey, subj policies.Subject, validity policies.Period) (*Signed, error) {
	p, err := policies.Lookup(profile)
	if err != nil {
		return nil, &Error{Code: CodeProfileUnknown, Message: err.Error()}
	}
	issuer, err := s.issuerFor(p, issuerName)
	if err != nil {
		return nil, err
	}
	return s.sign(p, issuer, pub, subj, validity, tenant)
}

// MaxDER is the largest DER encoding the certificate that SignForKeyAs
// would sign for these arguments can have: every byte but the signature's
// is encoded as it will be, and the ECDSA signature counted at its longest
// (it is up to two bytes shorter). An installation answer is measured with
// it before its contract certificate exists.
func (s *Service) MaxDER(profile, issuerName string, pub crypto.PublicKey, subj policies.Subject, validity policies.Period) (int, error) {
	p, err := policies.Lookup(profile)
	if err != nil {
		return 0, &Error{Code: CodeProfileUnknown, Message: err.Error()}
	}
	issuer, err := s.issuerFor(p, issuerName)
	if err != nil {
		return 0, err
	}
	return s.MaxDERFrom(issuer, profile, pub, subj, validity)
}

// MaxDERFrom is MaxDER for an issuer given as an Authority, which may be
// one not stored yet (the planned CA of Options.CheckHierarchy).
func (s *Service) MaxDERFrom(issuer *Authority, profile string, pub crypto.PublicKey, subj policies.Subject, validity policies.Period) (int, error) {
	p, err := policies.Lookup(profile)
	if err != nil {
		return 0, &Error{Code: CodeProfileUnknown, Message: err.Error()}
	}
	t, err := s.b.template(p, issuer, pub, subj, validity)
	if err != nil {
		return 0, err
	}
	n, err := maxCertificateDER(t, issuer.Cert)
	if err != nil {
		return 0, fmt.Errorf("size of a %s certificate from %s: %w", profile, issuer.Name, err)
	}
	return n, nil
}
