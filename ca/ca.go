// Package ca runs the issuing certificate authorities: it checks CSRs
// against the profile and the tenant policy, builds and lints the
// certificate, signs it, records it in the store and only then returns it.
// It also revokes certificates and generates CRLs.
package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// MaxCSRSize bounds a CSR (PEM or DER) before it is parsed.
const MaxCSRSize = 64 << 10

// MaxRSABits bounds the RSA keys whose CSR signatures are checked.
const MaxRSABits = 8192

// Authority is one CA whose key pncpki holds.
type Authority struct {
	Name    string
	Profile *policies.Profile
	Cert    *x509.Certificate
	Signer  crypto.Signer
	// Chain is Cert followed by its issuers, as far as the store knows
	// them, root last.
	Chain []*x509.Certificate
	// ChainPEM is Chain in PEM, encoded once: every issuance answers
	// with it.
	ChainPEM []string
	// Offline is set when the CA's key file is not in this data
	// directory (a root kept on an offline machine): the CA's
	// certificate is known and its imported CRL served, but it signs
	// nothing here (Signer refuses with CodeCAOffline).
	Offline bool
	// IssueFrom is when the CA takes over issuance for its profile
	// (store.CA.IssueFrom); zero: from its creation.
	IssueFrom time.Time
	// Parent names the CA held here that signed this one ("" for a root
	// or an outside parent); Revoked is set once the parent revoked it.
	Parent  string
	Revoked bool

	keyURI string // as loaded: another in the store is loaded anew
}

// Options configure a Service.
type Options struct {
	Store store.Store
	// DataDir resolves relative softkms key paths.
	DataDir string
	// SECCForms restricts the SECC leaf CN forms (default: both).
	SECCForms policies.SECCForms
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand is the randomness for serials and signatures (default
	// crypto/rand). Deterministic only for test PKIs.
	Rand io.Reader
	// Backdate moves notBefore of issued certificates into the past to
	// absorb clock skew of relying parties (default 1 minute).
	Backdate time.Duration
	// PublicURL is the base URL of pncd as relying parties reach it, e.g.
	// "http://pki.example.com"; see Builder.PublicURL.
	PublicURL string
	// TenantTTL is how long a tenant read from the store is reused
	// (default 1 second): a change to a tenant's identifiers applies to
	// issuance within this time.
	TenantTTL time.Duration
	// MaxValidity replaces the maximum validity of the profiles it names
	// (Builder.MaxValidity): the data directory's api_client_days.
	MaxValidity map[string]policies.Period
	// CheckHierarchy, when set, sees every CA about to be created or
	// imported beside the CAs there already, before anything is stored
	// or recorded; an error refuses it. pncctl checks with it that every
	// installation answer of the hierarchy still fits (contract.Budget).
	CheckHierarchy func(ctx context.Context, planned *Authority, all []*Authority) error
}

// Builder builds certificates from profiles, lints them and signs them. It
// stores nothing: Service wraps it with the store, and testcerts uses it
// alone for test PKIs.
type Builder struct {
	Now       func() time.Time
	Rand      io.Reader
	SECCForms policies.SECCForms
	Backdate  time.Duration
	// PublicURL, when set, is where relying parties reach this PKI:
	// issued certificates point to PublicURL/ocsp (AIA) and to
	// PublicURL/crl/{issuer}.crl (CRL distribution point).
	PublicURL string
	// MaxValidity replaces the maximum validity of the profiles it names
	// (and their default, when that is longer): an operator's bound.
	MaxValidity map[string]policies.Period
}

// sigRand is the randomness for signatures: crypto/rand normally, nil
// (deterministic RFC 6979 ECDSA) when a custom Rand asks for reproducible
// test PKIs.
func (b *Builder) sigRand() io.Reader {
	if b.Rand == rand.Reader {
		return rand.Reader
	}
	return nil
}

// Service issues and revokes certificates for the CAs in the store.
type Service struct {
	opts    Options
	b       Builder
	signers Signers

	mu        sync.RWMutex
	auths     map[string]*Authority
	byProfile map[string][]*Authority // CAs by their profile name, sorted by name

	tmu     sync.Mutex
	tenants map[string]cachedTenant

	// work admits at most GOMAXPROCS+1 CSR checks and signatures at once
	// (one more than the CPUs, so none idles while the store's committer
	// waits on the disk). Past that, callers wait here instead of being
	// runnable: the committer, which runs once for many certificates, then
	// gets the CPU it needs instead of queueing behind hundreds of signers.
	work chan struct{}

	crls crlCache

	xmu       sync.RWMutex
	externals map[string]*External // by profile
}

type cachedTenant struct {
	t       *policies.Tenant
	fetched time.Time
}

// maxCachedTenants bounds the tenant cache; past it the cache starts over.
const maxCachedTenants = 4096

// tenant returns a tenant, from the cache when fresh.
func (s *Service) tenant(ctx context.Context, name string) (*policies.Tenant, error) {
	now := s.opts.Now()
	s.tmu.Lock()
	c, ok := s.tenants[name]
	s.tmu.Unlock()
	if ok && now.Sub(c.fetched) < s.opts.TenantTTL {
		return c.t, nil
	}
	t, err := s.opts.Store.Tenant(ctx, name)
	if err != nil {
		return nil, err
	}
	s.tmu.Lock()
	if len(s.tenants) >= maxCachedTenants {
		s.tenants = map[string]cachedTenant{}
	}
	s.tenants[name] = cachedTenant{t: t, fetched: now}
	s.tmu.Unlock()
	return t, nil
}

// New loads every non-pending CA of the store with its signer.
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Backdate == 0 {
		opts.Backdate = time.Minute
	}
	if opts.TenantTTL == 0 {
		opts.TenantTTL = time.Second
	}
	s := &Service{
		opts: opts,
		b: Builder{Now: opts.Now, Rand: opts.Rand, SECCForms: opts.SECCForms, Backdate: opts.Backdate, PublicURL: strings.TrimSuffix(opts.PublicURL, "/"),
			MaxValidity: opts.MaxValidity},
		signers: Signers{BaseDir: opts.DataDir},
		auths:   map[string]*Authority{},
		tenants: map[string]cachedTenant{},
		work:    make(chan struct{}, runtime.GOMAXPROCS(0)+1),
	}
	if err := s.Reload(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the key managers.
func (s *Service) Close() error { return s.signers.Close() }

// Store returns the store the service writes to.
func (s *Service) Store() store.Store { return s.opts.Store }

// Reload reads the CAs from the store, loading signers for new ones.
func (s *Service) Reload(ctx context.Context) error {
	cas, err := s.opts.Store.CAs(ctx)
	if err != nil {
		return fmt.Errorf("list CAs: %w", err)
	}
	certs := map[string]*x509.Certificate{}
	parents := map[string]string{}
	for _, c := range cas {
		if c.Pending() || c.External() {
			continue
		}
		cert, err := x509.ParseCertificate(c.CertDER)
		if err != nil {
			return fmt.Errorf("CA %s: parse certificate: %w", c.Name, err)
		}
		certs[c.Name], parents[c.Name] = cert, c.Parent
	}
	// A sub-CA whose certificate came from an outside or offline root
	// (ca csr, then ca import) has no parent recorded: its signature
	// names it, if the root is here.
	for name, cert := range certs {
		if parents[name] != "" || bytes.Equal(cert.RawIssuer, cert.RawSubject) {
			continue
		}
		for pname, pcert := range certs {
			if pname != name && bytes.Equal(cert.RawIssuer, pcert.RawSubject) && ed448x509.CheckSignature(cert, pcert) == nil {
				parents[name] = pname
				break
			}
		}
	}
	// A CA whose certificate its parent revoked issues no more.
	revoked := map[string]bool{}
	for name, cert := range certs {
		if parents[name] == "" {
			continue
		}
		rec, err := s.opts.Store.Certificate(ctx, parents[name], SerialHex(cert.SerialNumber))
		if err == nil && rec.Revoked() {
			revoked[name] = true
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("CA %s: revocation status: %w", name, err)
		}
	}
	// So does every CA below it.
	for name := range certs {
		for p, seen := parents[name], 0; p != "" && seen < 8; p, seen = parents[p], seen+1 {
			if revoked[p] {
				revoked[name] = true
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cas {
		cert := certs[c.Name]
		if cert == nil {
			continue
		}
		p, err := policies.Lookup(c.Profile)
		if err != nil {
			return fmt.Errorf("CA %s: %w", c.Name, err)
		}
		a := s.auths[c.Name]
		if a == nil || !bytes.Equal(a.Cert.Raw, cert.Raw) || a.keyURI != c.KeyURI || a.Offline || keyGone(c.KeyURI, s.opts.DataDir) {
			signer, offline, err := s.loadCAKey(ctx, c.Name, c.KeyURI, cert)
			if err != nil {
				return err
			}
			a = &Authority{Name: c.Name, Profile: p, Cert: cert, Signer: signer, Offline: offline, keyURI: c.KeyURI}
		}
		a.IssueFrom, a.Parent, a.Revoked = c.IssueFrom, parents[c.Name], revoked[c.Name]
		a.Chain = []*x509.Certificate{cert}
		for parent, seen := parents[c.Name], 0; parent != "" && certs[parent] != nil && seen < 8; parent, seen = parents[parent], seen+1 {
			a.Chain = append(a.Chain, certs[parent])
		}
		a.ChainPEM = chainPEM(a.Chain)
		s.auths[c.Name] = a
	}
	s.byProfile = map[string][]*Authority{}
	for _, a := range s.auths {
		s.byProfile[a.Profile.Name] = append(s.byProfile[a.Profile.Name], a)
	}
	for _, as := range s.byProfile {
		slices.SortFunc(as, func(a, b *Authority) int { return strings.Compare(a.Name, b.Name) })
	}
	return nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

// Authority returns a loaded CA by name.
func (s *Service) Authority(name string) (*Authority, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if a := s.auths[name]; a != nil {
		return a, nil
	}
	return nil, refuse(CodeIssuerUnknown, "no active CA named %q", name)
}

// Authorities returns the loaded CAs sorted by name.
func (s *Service) Authorities() []*Authority {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Authority, 0, len(s.auths))
	for _, a := range s.auths {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *Authority) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// issuerFor picks the CA that signs profile p: the named one, or the only
// CA whose profile may issue p.
func (s *Service) issuerFor(p *policies.Profile, name string) (*Authority, error) {
	if name != "" {
		a, err := s.Authority(name)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(p.Issuers, a.Profile.Name) {
			return nil, refuse(CodeIssuerMismatch, "CA %s (%s) cannot issue %s; issuers are %v", name, a.Profile.Name, p.Name, p.Issuers)
		}
		return a, nil
	}
	var found []*Authority
	s.mu.RLock()
	for _, ip := range p.Issuers {
		found = append(found, s.byProfile[ip]...)
	}
	s.mu.RUnlock()
	if len(found) == 0 {
		return nil, refuse(CodeIssuerUnknown, "no CA can issue %s (needs one of %v)", p.Name, p.Issuers)
	}
	return pickIssuer(p.Name, found, s.opts.Now())
}

// ParseCSR parses a PEM or DER CSR of at most MaxCSRSize bytes and verifies
// its self-signature.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > MaxCSRSize {
		return nil, refuse(CodeCSRTooLarge, "CSR is %d bytes, limit %d", len(data), MaxCSRSize)
	}
	der := data
	if trimmed := bytes.TrimSpace(data); bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		block, rest := pem.Decode(trimmed)
		if block == nil {
			return nil, refuse(CodeCSRMalformed, "PEM block cannot be decoded")
		}
		switch block.Type {
		case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
		case "CERTIFICATE":
			return nil, refuse(CodeCSRMalformed, "this is a certificate, not a CSR (PEM block CERTIFICATE, want CERTIFICATE REQUEST)")
		default:
			return nil, refuse(CodeCSRMalformed, "PEM block is %q, want CERTIFICATE REQUEST", block.Type)
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			// One request per call: a second block or anything else
			// after it would be silently ignored.
			return nil, refuse(CodeCSRMalformed, "data after the CSR's PEM block")
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, &Error{Code: CodeCSRMalformed, Message: "cannot parse CSR", Err: err}
	}
	// Bound the signature check: an RSA key of hundreds of thousands of
	// bits fits in 64 KiB and would take seconds to verify.
	if k, ok := csr.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() > MaxRSABits {
		return nil, refuse(CodeCSRProfile, "RSA key of %d bits; at most %d are accepted", k.N.BitLen(), MaxRSABits)
	}
	// ISO 15118-20's Ed448 variant: crypto/x509 leaves the key out.
	switch pub, err := ed448x509.CheckCSRSignature(csr); {
	case err == nil:
		csr.PublicKey = pub
		return csr, nil
	case !errors.Is(err, ed448x509.ErrNotCurve448):
		return nil, &Error{Code: CodeCSRSignature, Message: "CSR self-signature does not verify", Err: err}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, &Error{Code: CodeCSRSignature, Message: "CSR self-signature does not verify", Err: err}
	}
	return csr, nil
}

// Request asks for a certificate from a CSR.
type Request struct {
	Profile string
	CSR     []byte // PEM or DER
	// Tenant names the requesting tenant; empty means an administrator.
	Tenant string
	// Issuer names the CA; empty picks the only one able to issue Profile.
	Issuer string
	// Validity overrides the profile default (still capped by the profile
	// maximum and the issuer's notAfter).
	Validity policies.Period
	// Admin says an administrator asks (for Tenant, when set): only then
	// are AdminOnly profiles (api/client) issued.
	Admin bool
}

// Issued is a stored certificate with its issuer chain.
type Issued struct {
	Record *store.Certificate
	// Chain is the issuing CA's certificate and its issuers, root last,
	// and ChainPEM the same in PEM.
	Chain    []*x509.Certificate
	ChainPEM []string
	// Stored is how long the durable store took (the wait for the group
	// commit included), for stage timings.
	Stored time.Duration

	once sync.Once
	cert *x509.Certificate
}

// Cert returns the parsed certificate. It is parsed on first use: most
// callers need only Record.DER, and parsing every issued certificate cost
// about 8% of the issuance rate.
func (i *Issued) Cert() *x509.Certificate {
	i.once.Do(func() {
		var err error
		// Record.DER was made by x509.CreateCertificate, which checked it.
		if i.cert, err = x509.ParseCertificate(i.Record.DER); err != nil {
			panic(fmt.Sprintf("ca: issued certificate does not parse: %v", err))
		}
	})
	return i.cert
}

// Issue checks a CSR, builds, lints, signs and stores the certificate, and
// returns it. Nothing is stored when it refuses.
func (s *Service) Issue(ctx context.Context, req Request) (*Issued, error) {
	p, err := policies.Lookup(req.Profile)
	if err != nil {
		return nil, &Error{Code: CodeProfileUnknown, Message: err.Error()}
	}
	if p.Role == policies.RoleRoot {
		return nil, refuse(CodeProfileNotIssue, "%s is self-signed: create it with 'pncctl init' or 'pncctl ca create'", p.Name)
	}
	if p.AdminOnly && !req.Admin {
		return nil, &Error{Code: CodePolicyDenied, Message: p.Name + " certificates are issued by administrators only",
			Err: &policies.PolicyError{Code: policies.CodeProfileNotAllowed, Tenant: req.Tenant, Profile: p.Name, Detail: "only an administrator issues this profile"}}
	}
	release, err := s.admit(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	csr, err := ParseCSR(req.CSR)
	if err != nil {
		return nil, err
	}
	if vs := p.CheckCSR(csr, s.opts.SECCForms); len(vs) > 0 {
		return nil, &Error{Code: CodeCSRProfile, Message: "CSR does not fit " + p.Name, Violations: vs}
	}
	var tenant *policies.Tenant
	if req.Tenant != "" {
		tenant, err = s.tenant(ctx, req.Tenant)
		if errors.Is(err, store.ErrNotFound) {
			return nil, refuse(CodeTenantUnknown, "no tenant %q", req.Tenant)
		} else if err != nil {
			return nil, err
		}
	}
	subj := subjectFor(p, csr, tenant)
	if tenant != nil {
		if err := tenant.Permit(p, subj); err != nil {
			return nil, &Error{Code: CodePolicyDenied, Message: "tenant policy refuses", Err: err}
		}
	}
	if x := s.external(p.Name); x != nil && req.Issuer == "" {
		release() // the upstream's answer needs no CPU slot
		return s.issueExternal(ctx, p, x, csr, subj, req.Tenant)
	}
	issuer, err := s.issuerFor(p, req.Issuer)
	if err != nil {
		return nil, err
	}
	x, err := s.sign(p, issuer, csr.PublicKey, subj, req.Validity, req.Tenant)
	if err != nil {
		return nil, err
	}
	release() // waiting for the store needs no CPU slot
	return x.Record(ctx)
}

// admit waits for a CPU slot; release is safe to call more than once.
func (s *Service) admit(ctx context.Context) (release func(), err error) {
	select {
	case s.work <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-s.work }) }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// issue certifies pub, records the certificate and returns it.
func (s *Service) issue(ctx context.Context, p *policies.Profile, issuer *Authority, pub crypto.PublicKey, subj policies.Subject, validity policies.Period, tenant string) (*Issued, error) {
	x, err := s.sign(p, issuer, pub, subj, validity, tenant)
	if err != nil {
		return nil, err
	}
	return x.Record(ctx)
}

// sign builds, lints and signs the certificate of pub for tenant; Record
// stores it.
func (s *Service) sign(p *policies.Profile, issuer *Authority, pub crypto.PublicKey, subj policies.Subject, validity policies.Period, tenant string) (*Signed, error) {
	if issuer.Offline {
		return nil, offlineError(issuer.Name)
	}
	if issuer.Revoked {
		return nil, refuse(CodeIssuerUnknown, "CA %s was revoked by %s: it issues no more", issuer.Name, issuer.Parent)
	}
	t, der, err := s.b.certify(p, issuer, nil, pub, subj, validity)
	if err != nil {
		return nil, err
	}
	return &Signed{DER: der, Chain: issuer.Chain, s: s, p: p, issuer: issuer, t: t, cn: subj.CommonName, tenant: tenant}, nil
}

// Signed is a certificate signed but not yet stored (SignForKeyAs, and
// every issuance on its way to the store).
type Signed struct {
	// DER is the certificate, Chain its issuer's chain, root last.
	DER   []byte
	Chain []*x509.Certificate
	// Installation, set before Record, goes into the issuance's audit
	// entry (a contract certificate made for a vehicle's installation).
	Installation *store.Installation

	s          *Service
	p          *policies.Profile
	issuer     *Authority
	t          *x509.Certificate
	cn, tenant string
}

// Record stores the certificate and returns it, as Issue does.
func (x *Signed) Record(ctx context.Context) (*Issued, error) {
	return x.s.record(ctx, x.p, x.issuer, x.t, x.DER, x.cn, x.tenant, x.Installation)
}

// record stores an issued certificate, described by its template t (whose
// times are whole seconds, as encoded; its subject is in ExtraNames, so the
// common name comes separately) and its DER; only then is it returned.
func (s *Service) record(ctx context.Context, p *policies.Profile, issuer *Authority, t *x509.Certificate, der []byte, cn, tenant string, inst *store.Installation) (*Issued, error) {
	rec := &store.Certificate{
		Issuer: issuer.Name, Serial: SerialHex(t.SerialNumber), Profile: p.Name, Tenant: tenant,
		CommonName: cn, NotBefore: t.NotBefore, NotAfter: t.NotAfter,
		DER: der, CreatedAt: s.opts.Now().UTC(), Installation: inst,
	}
	t0 := time.Now()
	if err := s.opts.Store.PutCertificate(ctx, rec); err != nil {
		// A serial clash is astronomically unlikely with 80 random bits
		// per millisecond; the certificate is discarded, never returned.
		return nil, fmt.Errorf("record certificate: %w", err)
	}
	return &Issued{Record: rec, Chain: issuer.Chain, ChainPEM: issuer.ChainPEM, Stored: time.Since(t0)}, nil
}

// chainPEM encodes each certificate of chain in PEM.
func chainPEM(chain []*x509.Certificate) []string {
	pems := make([]string, len(chain))
	for i, c := range chain {
		pems[i] = CertificatePEM(c.Raw)
	}
	return pems
}

// Certify builds the certificate of profile p for pub, lints it and signs
// it with issuer, or self-signs it with self when issuer is nil (roots).
func (b *Builder) Certify(p *policies.Profile, issuer *Authority, self crypto.Signer, pub crypto.PublicKey, subj policies.Subject, validity policies.Period) (*x509.Certificate, error) {
	_, der, err := b.certify(p, issuer, self, pub, subj, validity)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse signed certificate: %w", err)
	}
	return cert, nil
}

// certify is Certify without parsing the result: it returns the template
// and the signed DER.
func (b *Builder) certify(p *policies.Profile, issuer *Authority, self crypto.Signer, pub crypto.PublicKey, subj policies.Subject, validity policies.Period) (*x509.Certificate, []byte, error) {
	t, err := b.template(p, issuer, pub, subj, validity)
	if err != nil {
		return nil, nil, err
	}
	parent, signer := t, self
	if issuer == nil {
		if self == nil || !publicKeysEqual(self.Public(), pub) {
			return nil, nil, errors.New("self-signed certificate needs the signer of its own key")
		}
	} else {
		parent, signer = issuer.Cert, issuer.Signer
	}
	der, err := b.sign(p, t, parent, signer)
	if err != nil {
		return nil, nil, err
	}
	return t, der, nil
}

// subjectFor builds the subject the certificate will carry: CN, O and C from
// the CSR (O from the tenant for station certificates when the CSR has
// none), DC from the profile; SANs only for server profiles.
func subjectFor(p *policies.Profile, csr *x509.CertificateRequest, t *policies.Tenant) policies.Subject {
	s := policies.Subject{CommonName: csr.Subject.CommonName}
	if len(csr.Subject.Organization) > 0 {
		s.Organization = csr.Subject.Organization[0]
	}
	if len(csr.Subject.Country) > 0 {
		s.Country = csr.Subject.Country[0]
	}
	if s.Organization == "" && p.RequireO && t != nil {
		s.Organization = t.Organization
	}
	if p.CN == policies.CNFQDN {
		s.DNSNames = append([]string{s.CommonName}, slices.DeleteFunc(slices.Clone(csr.DNSNames), func(n string) bool { return n == s.CommonName })...)
		s.IPAddresses = csr.IPAddresses
	}
	return s
}

// asn1NULL is the DER of ASN.1 NULL, the value of ocsp-nocheck.
var asn1NULL = []byte{0x05, 0x00}

var (
	oidCN      = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO       = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidCountry = asn1.ObjectIdentifier{2, 5, 4, 6}
)

// Name builds a subject in the order ISO 15118-2 test PKIs use: CN, O, C,
// DC. Empty parts are left out.
func Name(cn, org, country, dc string) pkix.Name {
	var n pkix.Name
	for _, a := range []struct {
		oid asn1.ObjectIdentifier
		v   string
	}{{oidCN, cn}, {oidO, org}, {oidCountry, country}, {policies.OIDDomainComponent, dc}} {
		if a.v != "" {
			n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: a.oid, Value: a.v})
		}
	}
	return n
}

// NewSerial returns a positive serial of 16 octets: the bits 01, the
// issuance time in 46 bits of Unix milliseconds, then 80 random bits. That is
// more than the 64 bits of CSPRNG output required, within RFC 5280's 20
// octets, and never shorter (the leading 01). The time prefix makes serials
// of one CA arrive in key order, so that the store appends to its serial
// index instead of writing to a random page of it for every certificate:
// that cost about 12 µs of CPU per certificate in SQLite.
func NewSerial(now time.Time, r io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b[6:]); err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	ms := uint64(now.UnixMilli())&(1<<46-1) | 1<<46
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	return new(big.Int).SetBytes(b), nil
}

// Fingerprint is the SHA-256 of a certificate's DER in lower-case hex,
// the form pncpki stores and shows fingerprints in.
func Fingerprint(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return hex.EncodeToString(h[:])
}

// SerialHex is the store's form of a serial: lower-case hex, no leading
// zeros.
func SerialHex(n *big.Int) string { return n.Text(16) }

// SubjectKeyID is RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey
// bits.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	if k, ok := pub.(ed448.PublicKey); ok {
		h := sha1.Sum(k)
		return h[:], nil
	}
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		// The subjectPublicKey of an EC key is its uncompressed point.
		b, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		h := sha1.Sum(b)
		return h[:], nil
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	h := sha1.Sum(spki.Key.Bytes)
	return h[:], nil
}

// signatureAlgorithm picks the hash that fits the issuer key.
func signatureAlgorithm(pub crypto.PublicKey) x509.SignatureAlgorithm {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			return x509.ECDSAWithSHA384
		case elliptic.P521():
			return x509.ECDSAWithSHA512
		}
		return x509.ECDSAWithSHA256
	case *rsa.PublicKey:
		return x509.SHA256WithRSA
	}
	return x509.UnknownSignatureAlgorithm
}

// template builds the certificate for profile p, signed by issuer (nil for
// a self-signed root).
func (b *Builder) template(p *policies.Profile, issuer *Authority, pub crypto.PublicKey, subj policies.Subject, validity policies.Period) (*x509.Certificate, error) {
	issued := b.Now()
	serial, err := NewSerial(issued, b.Rand)
	if err != nil {
		return nil, err
	}
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, refuse(CodeCSRMalformed, "public key: %v", err)
	}
	if p.MaxDER > 0 {
		// Size-bound certificates (ISO 15118) take RFC 5280's second
		// method, 0100 and the low 60 bits of the SHA-1: 12 bytes less
		// in the SKI and in every child's AKI.
		ski = append([]byte(nil), ski[len(ski)-8:]...)
		ski[0] = 0x40 | ski[0]&0x0f
	}
	notBefore := issued.UTC().Truncate(time.Second).Add(-b.Backdate)
	maxValidity, defValidity := p.MaxValidity, p.DefaultValidity
	if m, ok := b.MaxValidity[p.Name]; ok {
		maxValidity = m
		if defValidity.AddTo(notBefore).After(m.AddTo(notBefore)) {
			defValidity = m
		}
	}
	if validity.IsZero() {
		validity = defValidity
	}
	notAfter := validity.AddTo(notBefore)
	if !maxValidity.IsZero() && notAfter.After(maxValidity.AddTo(notBefore)) {
		return nil, refuse(CodeBadRequest, "validity %s exceeds the %s maximum %s", validity, p.Name, maxValidity)
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              p.KeyUsage,
		ExtKeyUsage:           p.ExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  p.IsCA(),
		SubjectKeyId:          ski,
		PublicKey:             pub,
		DNSNames:              subj.DNSNames,
		IPAddresses:           subj.IPAddresses,
	}
	if p.IsCA() {
		t.MaxPathLen, t.MaxPathLenZero = p.PathLen, p.PathLen == 0
	}
	if issuer == nil && p.Keys == policies.KeyEd448 {
		// Tools that cannot check Ed448 signatures (zlint) tell a root
		// by its AKI, which the -20 vector PKI's roots carry too.
		t.AuthorityKeyId = ski
	}
	signerPub := pub
	if issuer != nil {
		if notAfter.After(issuer.Cert.NotAfter) {
			t.NotAfter = issuer.Cert.NotAfter // never beyond the issuer
		}
		if issuer.Cert.NotAfter.Before(issued) {
			return nil, refuse(CodeIssuerUnknown, "CA %s expired on %s", issuer.Name, issuer.Cert.NotAfter)
		}
		t.AuthorityKeyId = issuer.Cert.SubjectKeyId
		signerPub = issuer.Signer.Public()
		if b.PublicURL != "" && !p.OCSPNoCheck && !p.Offline {
			t.OCSPServer = []string{b.PublicURL + "/ocsp"}
			if !p.OCSPOnly {
				t.CRLDistributionPoints = []string{b.PublicURL + "/crl/" + issuer.Name + ".crl"}
			}
		}
	}
	if p.OCSPNoCheck {
		t.ExtraExtensions = append(t.ExtraExtensions, pkix.Extension{Id: policies.OIDOCSPNoCheck, Value: asn1NULL})
	}
	if subj.AltX448Key != nil {
		t.ExtraExtensions = append(t.ExtraExtensions, pkix.Extension{Id: ed448x509.OIDSubjectAltPublicKeyInfo,
			Value: ed448x509.MarshalX448PublicKey(subj.AltX448Key)})
	}
	t.SignatureAlgorithm = signatureAlgorithm(signerPub)
	t.Subject = Name(subj.CommonName, subj.Organization, subj.Country, p.DC)
	return t, nil
}

// sign lints the template, signs it with the issuer (parent == t for a
// self-signed root), and checks what only the encoding can show (DER size).
func (b *Builder) sign(p *policies.Profile, t, parent *x509.Certificate, signer crypto.Signer) ([]byte, error) {
	if vs := p.Check(t, b.SECCForms); len(vs) > 0 {
		return nil, &Error{Code: CodeLint, Message: "certificate would break " + p.Name, Violations: vs}
	}
	der, err := createCertificate(b.sigRand(), t, parent, signer)
	if errors.Is(err, errNoFastPath) {
		der, err = x509.CreateCertificate(b.sigRand(), t, parent, t.PublicKey, signer)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if p.MaxDER > 0 && len(der) > p.MaxDER {
		return nil, &Error{Code: CodeLint, Message: "certificate too large", Violations: policies.Violations{{
			Code: policies.CodeDERSize, Message: fmt.Sprintf("DER is %d bytes, limit %d ([V2G2-010])", len(der), p.MaxDER)}}}
	}
	return der, nil
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.opts.Now() }
