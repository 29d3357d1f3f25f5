package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/store"
)

// Reasons maps RFC 5280 CRLReason names to codes. removeFromCRL (8) is not
// a reason one revokes with.
var Reasons = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"cACompromise":         2,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"certificateHold":      6,
	"privilegeWithdrawn":   9,
	"aACompromise":         10,
}

// ParseReason accepts a reason name (case-insensitive) or its number.
func ParseReason(s string) (int, error) {
	for name, code := range Reasons {
		if strings.EqualFold(name, s) || fmt.Sprint(code) == s {
			return code, nil
		}
	}
	return 0, refuse(CodeBadReason, "unknown revocation reason %q", s)
}

var reasonNames = func() map[int]string {
	m := make(map[int]string, len(Reasons))
	for name, code := range Reasons {
		m[code] = name
	}
	return m
}()

// ReasonName returns the RFC 5280 name of a reason code.
func ReasonName(code int) string {
	if name, ok := reasonNames[code]; ok {
		return name
	}
	return fmt.Sprintf("reason(%d)", code)
}

// NormalizeSerial turns a hex serial as people type it (upper case, leading
// zeros, colons, 0x) into the store's form.
func NormalizeSerial(s string) (string, error) {
	h := strings.ToLower(strings.TrimPrefix(strings.ReplaceAll(strings.TrimSpace(s), ":", ""), "0x"))
	if len(h) == 0 || len(h) > 40 {
		return "", refuse(CodeBadRequest, "serial %q: want 1..40 hex digits", s)
	}
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || n.Sign() <= 0 {
		return "", refuse(CodeBadRequest, "serial %q is not a positive hex number", s)
	}
	return SerialHex(n), nil
}

// Revoke revokes a certificate. issuer may be empty when the serial is
// unique across CAs. The revocation is durable when Revoke returns.
func (s *Service) Revoke(ctx context.Context, issuer, serial string, reason int) (*store.Certificate, error) {
	if _, ok := reasonNames[reason]; !ok {
		return nil, refuse(CodeBadReason, "reason %d is not a revocation reason", reason)
	}
	serial, err := NormalizeSerial(serial)
	if err != nil {
		return nil, err
	}
	if issuer == "" {
		cs, err := s.opts.Store.Certificates(ctx, store.Filter{Serial: serial})
		if err != nil {
			return nil, err
		}
		switch len(cs) {
		case 0:
			return nil, refuse(CodeNotFound, "no certificate with serial %s", serial)
		case 1:
			issuer = cs[0].Issuer
		default:
			return nil, refuse(CodeAmbiguousSerial, "serial %s exists under several CAs: name the issuer", serial)
		}
	}
	if rec, err := s.opts.Store.CA(ctx, issuer); err == nil && rec.External() {
		return nil, refuse(CodeExternalRevoke, "%s/%s was signed by the upstream ecosystem (%s): revoke it there", issuer, serial, strings.TrimPrefix(rec.KeyURI, store.ExternalKeyURI))
	}
	c, err := s.opts.Store.Revoke(ctx, issuer, serial, reason, s.opts.Now().UTC().Truncate(time.Second))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, refuse(CodeNotFound, "no certificate %s under %s", serial, issuer)
	case errors.Is(err, store.ErrAlreadyRevoked):
		return c, &Error{Code: CodeAlreadyRevoked, Message: fmt.Sprintf("%s/%s was revoked on %s (%s)", issuer, serial, c.RevokedAt.Format(time.RFC3339), ReasonName(c.Reason)), Err: err}
	}
	return c, err
}

// CRLValidity is the default nextUpdate distance of generated CRLs.
const CRLValidity = 7 * 24 * time.Hour

// CRL generates and signs a new CRL for issuer with the next CRL number.
// validity 0 means CRLValidity.
func (s *Service) CRL(ctx context.Context, issuer string, validity time.Duration) ([]byte, error) {
	a, err := s.Authority(issuer)
	if err != nil {
		return nil, err
	}
	if a.Offline {
		return nil, offlineError(issuer)
	}
	if validity <= 0 {
		validity = CRLValidity
	}
	now := s.opts.Now().UTC().Truncate(time.Second)
	revoked, err := s.opts.Store.Revoked(ctx, issuer, now)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", issuer, err)
	}
	number, err := s.opts.Store.NextCRLNumber(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", issuer, err)
	}
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, c := range revoked {
		n, ok := new(big.Int).SetString(c.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("CRL %s: stored serial %q is not hex", issuer, c.Serial)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: c.RevokedAt, ReasonCode: c.Reason})
	}
	t := &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                now,
		NextUpdate:                now.Add(validity),
		RevokedCertificateEntries: entries,
		SignatureAlgorithm:        signatureAlgorithm(a.Signer.Public()),
	}
	var der []byte
	if key, ok := a.Signer.(ed448.PrivateKey); ok {
		der, err = createEd448CRL(t, a.Cert, key)
	} else {
		der, err = x509.CreateRevocationList(s.b.sigRand(), t, a.Cert, a.Signer)
	}
	if err != nil {
		return nil, fmt.Errorf("sign CRL %s: %w", issuer, err)
	}
	return der, nil
}

// importedCheck is how long an offline CA's imported CRL is served from
// memory before the store is asked for a newer import (another replica's).
const importedCheck = time.Minute

// currentImportedCRL is CurrentCRL for an offline CA: its imported CRL.
func (s *Service) currentImportedCRL(ctx context.Context, a *Authority) ([]byte, error) {
	now := s.opts.Now()
	s.crls.mu.Lock()
	c, ok := s.crls.entries[a.Name]
	s.crls.mu.Unlock()
	if ok && now.Sub(c.checked) < importedCheck {
		return c.der, nil
	}
	crl, err := s.importedCRL(ctx, a)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(CodeCAOffline, "CA %s is offline and no CRL of it was imported (pncctl crl import)", a.Name)
	} else if err != nil {
		return nil, err
	}
	s.crls.mu.Lock()
	if s.crls.entries == nil {
		s.crls.entries = map[string]cachedCRL{}
	}
	s.crls.entries[a.Name] = cachedCRL{der: crl.Raw, produced: crl.ThisUpdate, next: crl.NextUpdate, checked: now}
	s.crls.mu.Unlock()
	return crl.Raw, nil
}

// crlCache keeps the last CRL of each issuer so that serving CRLs does not
// sign (and use up a CRL number) on every request.
type crlCache struct {
	mu      sync.Mutex
	entries map[string]cachedCRL
}

type cachedCRL struct {
	der      []byte
	revoked  string // fingerprint of the revoked serials it lists
	produced time.Time
	next     time.Time // its nextUpdate
	checked  time.Time // an imported one: when the store was last asked
}

// CRLTimes returns thisUpdate and nextUpdate of the CRL that CurrentCRL
// last produced for issuer in this process; ok is false before the first.
// The lifecycle metrics read it: a CRL that stops being refreshed shows as
// growing age long before relying parties see it expire.
func (s *Service) CRLTimes(issuer string) (thisUpdate, nextUpdate time.Time, ok bool) {
	s.crls.mu.Lock()
	defer s.crls.mu.Unlock()
	c, ok := s.crls.entries[issuer]
	return c.produced, c.next, ok
}

// CRLRefresh is how old a served CRL may get before CurrentCRL signs a new
// one even though nothing was revoked; well before its nextUpdate.
const CRLRefresh = time.Hour

// CurrentCRL returns an up-to-date CRL for issuer: the cached one while it
// lists exactly the current revocations and is younger than CRLRefresh,
// otherwise a newly signed one. A revocation therefore shows in the next
// CurrentCRL, from any process sharing the store. An offline CA's is the
// CRL imported for it (pncctl crl import).
func (s *Service) CurrentCRL(ctx context.Context, issuer string) ([]byte, error) {
	a, err := s.Authority(issuer)
	if err != nil {
		return nil, err
	}
	if a.Offline {
		return s.currentImportedCRL(ctx, a)
	}
	now := s.opts.Now()
	revoked, err := s.opts.Store.Revoked(ctx, issuer, now)
	if err != nil {
		return nil, err
	}
	var fp strings.Builder
	for _, c := range revoked {
		fp.WriteString(c.Serial)
		fp.WriteByte(',')
	}
	s.crls.mu.Lock()
	defer s.crls.mu.Unlock()
	if c, ok := s.crls.entries[issuer]; ok && c.revoked == fp.String() && now.Sub(c.produced) < CRLRefresh {
		return c.der, nil
	}
	der, err := s.CRL(ctx, issuer, 0)
	if err != nil {
		return nil, err
	}
	if s.crls.entries == nil {
		s.crls.entries = map[string]cachedCRL{}
	}
	// Times as signed (whole seconds), not as asked.
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", issuer, err)
	}
	s.crls.entries[issuer] = cachedCRL{der: der, revoked: fp.String(), produced: crl.ThisUpdate, next: crl.NextUpdate}
	return der, nil
}
