package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"

	"github.com/pncpki/pncpki/policies"
)

// CrossCertify issues a rollover certificate: the subject, key and
// extensions of root newName, signed by root oldName of the same profile.
// A charging station with OCPP's AdditionalRootCertificateCheck accepts a
// new CSMS root only in this form (signed by the root it replaces). The
// certificate is stored under oldName like any other it issued, so it can
// be listed and revoked.
func (s *Service) CrossCertify(ctx context.Context, newName, oldName string) (*Issued, error) {
	nw, err := s.Authority(newName)
	if err != nil {
		return nil, err
	}
	old, err := s.Authority(oldName)
	if err != nil {
		return nil, err
	}
	if nw.Profile.Role != policies.RoleRoot || old.Profile.Role != policies.RoleRoot || nw.Profile.Name != old.Profile.Name {
		return nil, refuse(CodeIssuerMismatch, "cross-certification needs two roots of one profile: %s is %s, %s is %s", newName, nw.Profile.Name, oldName, old.Profile.Name)
	}
	if old.Offline {
		return nil, offlineError(oldName)
	}
	if bytes.Equal(nw.Cert.RawSubjectPublicKeyInfo, old.Cert.RawSubjectPublicKeyInfo) {
		return nil, refuse(CodeBadRequest, "%s and %s have the same key", newName, oldName)
	}
	now := s.b.Now().UTC()
	serial, err := NewSerial(now, s.b.Rand)
	if err != nil {
		return nil, err
	}
	c := nw.Cert
	t := &x509.Certificate{
		SerialNumber: serial, RawSubject: c.RawSubject, Subject: c.Subject,
		NotBefore: now.Add(-s.b.Backdate), NotAfter: c.NotAfter,
		KeyUsage: c.KeyUsage, BasicConstraintsValid: true, IsCA: true, MaxPathLen: c.MaxPathLen, MaxPathLenZero: c.MaxPathLenZero,
		SubjectKeyId: c.SubjectKeyId, AuthorityKeyId: old.Cert.SubjectKeyId, PublicKey: c.PublicKey,
		SignatureAlgorithm: signatureAlgorithm(old.Signer.Public()),
	}
	if t.NotAfter.After(old.Cert.NotAfter) {
		t.NotAfter = old.Cert.NotAfter // never beyond the signer
	}
	der, err := x509.CreateCertificate(s.b.sigRand(), t, old.Cert, c.PublicKey, old.Signer)
	if err != nil {
		return nil, fmt.Errorf("cross-certify %s by %s: %w", newName, oldName, err)
	}
	return s.record(ctx, nw.Profile, old, t, der, c.Subject.CommonName, "", nil)
}
