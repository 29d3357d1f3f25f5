package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// offlineKey stands in for the key of a CA whose key file is not in this
// data directory: an offline root. It has the CA's public key, so chains
// and OCSP issuer hashes work, and refuses every signature.
type offlineKey struct {
	name string
	pub  crypto.PublicKey
}

func (k offlineKey) Public() crypto.PublicKey { return k.pub }

func (k offlineKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, offlineError(k.name)
}

func offlineError(name string) *Error {
	return refuse(CodeCAOffline, "CA %s is offline: its key is not in this data directory; sign with pncctl on the machine that holds it (docs/key-ceremony.md)", name)
}

// loadCAKey returns a CA's signer, checked against its certificate. A key
// file that is not there makes the CA offline rather than failing the
// start: roots live on an offline machine, and pncd and pncctl run with
// only the keys they use.
func (s *Service) loadCAKey(ctx context.Context, name, keyURI string, cert *x509.Certificate) (crypto.Signer, bool, error) {
	if keyURI == store.OfflineKeyURI {
		return offlineKey{name: name, pub: ed448x509.CertificateKey(cert)}, true, nil
	}
	signer, err := s.signers.Load(ctx, keyURI)
	if errors.Is(err, os.ErrNotExist) {
		return offlineKey{name: name, pub: ed448x509.CertificateKey(cert)}, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("CA %s: %w", name, err)
	}
	if !publicKeysEqual(signer.Public(), ed448x509.CertificateKey(cert)) {
		return nil, false, fmt.Errorf("CA %s: key %s does not match its certificate", name, redact(keyURI))
	}
	return signer, false, nil
}

// keyGone reports whether a key file was taken away (the medium with an
// offline root's key unplugged): the next Reload makes its CA offline.
func keyGone(keyURI, dataDir string) bool {
	if !strings.HasPrefix(keyURI, "softkms:") {
		return false
	}
	_, err := os.Stat(FilePath(keyURI, dataDir))
	return errors.Is(err, os.ErrNotExist)
}

// pickIssuer chooses among the CAs whose profiles may issue profile:
// those that can sign now (key here, certificate valid, switch time
// passed) and, of those, the one that took over last. That is how a
// rollover moves issuance: the new CA of a profile, created with an
// IssueFrom, is picked from that time on, and the old one keeps only
// answering for what it issued. Equally recent CAs are ambiguous.
func pickIssuer(profile string, found []*Authority, now time.Time) (*Authority, error) {
	var usable []*Authority
	var offline, waiting []string
	for _, a := range found {
		switch {
		case a.Offline:
			offline = append(offline, a.Name)
		case a.Revoked || now.After(a.Cert.NotAfter) || a.IssueFrom.After(now):
			waiting = append(waiting, a.Name)
		default:
			usable = append(usable, a)
		}
	}
	if len(usable) == 0 {
		if len(offline) > 0 {
			return nil, refuse(CodeCAOffline, "the CAs that can issue %s are offline (%v) or not issuing now (%v): sign with pncctl where the key is", profile, offline, waiting)
		}
		return nil, refuse(CodeIssuerUnknown, "no CA issues %s now: %v are revoked, expired or take over later", profile, waiting)
	}
	latest := usable[0].IssueFrom
	for _, a := range usable[1:] {
		if a.IssueFrom.After(latest) {
			latest = a.IssueFrom
		}
	}
	usable = slices.DeleteFunc(usable, func(a *Authority) bool { return !a.IssueFrom.Equal(latest) })
	if len(usable) == 1 {
		return usable[0], nil
	}
	names := make([]string, len(usable))
	for i, a := range usable {
		names[i] = a.Name
	}
	return nil, refuse(CodeIssuerAmbiguous, "several CAs can issue %s (%v): name one", profile, names)
}

// MaxCRLSize bounds an imported CRL.
const MaxCRLSize = 4 << 20

// AuditCRLImport is the audit action of an imported CRL.
const AuditCRLImport = "crl.import"

// ImportCRL takes in a CRL that an offline CA of this service signed on
// the machine holding its key (a root's ARL): its signature must verify
// with the CA's certificate, its nextUpdate must lie ahead and its CRL
// number must exceed the last imported one. The revocations it lists are
// applied to the certificates the store holds under the CA (so OCSP
// answers revoked for a revoked sub-CA), then it is kept as the CA's
// CRL, which CurrentCRL serves. It returns the CA's name and how many
// certificates it newly revoked.
func (s *Service) ImportCRL(ctx context.Context, der []byte) (string, int, error) {
	if len(der) > MaxCRLSize {
		return "", 0, refuse(CodeBadRequest, "CRL is %d bytes, limit %d", len(der), MaxCRLSize)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return "", 0, refuse(CodeBadRequest, "parse CRL: %v", err)
	}
	a := s.SignedBy(crl.RawIssuer, func(c *x509.Certificate) error { return ed448x509.CheckCRLSignature(crl, c) })
	switch {
	case a == nil:
		return "", 0, refuse(CodeIssuerUnknown, "the CRL of %q is not signed by a CA held here", FormatName(crl.RawIssuer))
	case !a.Offline:
		return "", 0, refuse(CodeBadRequest, "CA %s is online here: pncd signs its CRLs itself", a.Name)
	case !crl.NextUpdate.After(s.opts.Now()):
		return "", 0, refuse(CodeBadRequest, "the CRL of %s expired at %s (nextUpdate)", a.Name, crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	if old, err := s.importedCRL(ctx, a); err == nil && crl.Number.Cmp(old.Number) <= 0 {
		return "", 0, refuse(CodeBadRequest, "the CRL of %s has number %v; the one imported before has %v", a.Name, crl.Number, old.Number)
	}
	n := 0
	for _, e := range crl.RevokedCertificateEntries {
		_, err := s.opts.Store.Revoke(ctx, a.Name, SerialHex(e.SerialNumber), e.ReasonCode, e.RevocationTime)
		switch {
		case err == nil:
			n++
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrAlreadyRevoked):
		default:
			return "", 0, fmt.Errorf("apply the revocation of %s/%s: %w", a.Name, SerialHex(e.SerialNumber), err)
		}
	}
	sum := sha256.Sum256(der)
	audit := &store.AuditEntry{Actor: store.ActorFrom(ctx), Action: AuditCRLImport, Object: a.Name,
		Detail: fmt.Sprintf(`{"crl_number":%q,"this_update":%q,"next_update":%q,"entries":%d,"newly_revoked":%d,"crl_sha256":%q}`,
			crl.Number.String(), crl.ThisUpdate.UTC().Format(time.RFC3339), crl.NextUpdate.UTC().Format(time.RFC3339),
			len(crl.RevokedCertificateEntries), n, hex.EncodeToString(sum[:]))}
	if err := s.opts.Store.PutImportedCRL(ctx, a.Name, der, audit); err != nil {
		return "", 0, fmt.Errorf("keep the CRL of %s: %w", a.Name, err)
	}
	s.crls.mu.Lock()
	delete(s.crls.entries, a.Name) // served from the store from now on
	s.crls.mu.Unlock()
	return a.Name, n, nil
}

// importedCRL reads the CRL last imported for an offline CA, checking its
// signature again.
func (s *Service) importedCRL(ctx context.Context, a *Authority) (*x509.RevocationList, error) {
	der, err := s.opts.Store.ImportedCRL(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("imported CRL of %s: %w", a.Name, err)
	}
	if err := ed448x509.CheckCRLSignature(crl, a.Cert); err != nil {
		return nil, fmt.Errorf("imported CRL of %s: %w", a.Name, err)
	}
	return crl, nil
}

// SignedBy returns the CA held here whose subject is issuer and whose
// certificate verifies a signature (a certificate's or a CRL's
// CheckSignatureFrom), or nil.
func (s *Service) SignedBy(issuer []byte, verify func(*x509.Certificate) error) *Authority {
	for _, a := range s.Authorities() {
		if bytes.Equal(issuer, a.Cert.RawSubject) && verify(a.Cert) == nil {
			return a
		}
	}
	return nil
}

// CertifyCA signs a sub-CA's CSR with a CA held here: what an offline
// root does on the machine that holds its key, for a sub-CA whose key
// was made on the online side ('pncctl ca csr'), or for the online
// side's delegated OCSP responder of the root (ocsp.RequestResponder). The certificate has the
// CSR's key and subject (CN, O, C) and the profile's extensions, and is
// recorded as one the issuer issued, so that the issuer's CRL can revoke
// it. issuer may be empty when only one CA can sign the profile.
func (s *Service) CertifyCA(ctx context.Context, csrData []byte, profile, issuer string, validity policies.Period) (*Issued, error) {
	csr, err := ParseCSR(csrData)
	if err != nil {
		return nil, err
	}
	p, err := policies.Lookup(profile)
	if err != nil {
		return nil, &Error{Code: CodeProfileUnknown, Message: err.Error()}
	}
	if (!p.IsCA() || p.Role == policies.RoleRoot) && p.Name != policies.OCSPResponder {
		return nil, refuse(CodeBadRequest, "%s is neither a sub-CA profile nor %s", p.Name, policies.OCSPResponder)
	}
	if vs := p.CheckKey(csr.PublicKey); len(vs) > 0 {
		return nil, &Error{Code: CodeCSRProfile, Message: "CSR key does not fit " + p.Name, Violations: vs}
	}
	parent, err := s.issuerFor(p, issuer)
	if err != nil {
		return nil, err
	}
	first := func(v []string) string {
		if len(v) == 0 {
			return ""
		}
		return v[0]
	}
	subj := policies.Subject{CommonName: csr.Subject.CommonName, Organization: first(csr.Subject.Organization), Country: first(csr.Subject.Country)}
	if subj.CommonName == "" {
		return nil, refuse(CodeCSRProfile, "the CSR has no CN")
	}
	signed, err := s.sign(p, parent, csr.PublicKey, subj, validity, "")
	if err != nil {
		return nil, err
	}
	return signed.Record(ctx)
}
