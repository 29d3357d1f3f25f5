package ocsp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
)

// delegated returns a response signer for a CA: its delegated responder
// certificate from DataDir/ocsp when that is still in the first two thirds
// of its life, else a newly issued one. With UseCAKey the CA signs itself.
func (r *Responder) delegated(ctx context.Context, a *ca.Authority) (*ResponseSigner, error) {
	if r.opts.UseCAKey {
		if a.Offline {
			return nil, fmt.Errorf("%w: no CA key to sign with", errOffline)
		}
		return NewResponseSigner(a.Cert, a.Cert, a.Signer)
	}
	dir := filepath.Join(r.opts.DataDir, "ocsp")
	certPath := filepath.Join(dir, a.Name+".pem")
	s, due, err := r.loadDelegated(a, certPath)
	// An offline CA cannot sign a successor here, nor may a revoked one:
	// the responder there is serves until it expires
	// (pncpki_ocsp_responder_expiry_seconds).
	cannotSign := a.Offline || a.Revoked
	switch {
	case err == nil && !due:
		return s, nil
	case cannotSign && err == nil:
		if a.Offline {
			r.warnHourly("offline-responder/"+a.Name, "OCSP responder certificate of an offline CA is due for renewal; sign a new one where the CA's key is (pncctl ocsp responder-csr)", "ca", a.Name, "not_after", s.Cert.NotAfter)
		}
		return s, nil
	case cannotSign:
		return nil, fmt.Errorf("%w: no usable OCSP responder certificate (%v)", errOffline, err)
	case !errors.Is(err, os.ErrNotExist):
		r.log.Warn("OCSP responder certificate unusable; issuing a new one", "ca", a.Name, "err", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	iss, err := r.opts.CA.IssueForKey(ctx, policies.OCSPResponder, a.Name, key.Public(),
		policies.Subject{CommonName: responderCN(a.Cert.Subject.CommonName)}, r.opts.ResponderValidity)
	if err != nil {
		return nil, fmt.Errorf("issue OCSP responder certificate for %s: %w", a.Name, err)
	}
	// The key is named after the certificate's key ID, so loading the
	// certificate finds it; the certificate file is replaced atomically.
	if err := ca.WriteKeyFile(delegatedKeyPath(dir, a.Name, iss.Cert()), key); err != nil {
		return nil, err
	}
	if err := writeResponderCert(certPath, iss.Cert()); err != nil {
		return nil, err
	}
	r.log.Info("issued OCSP responder certificate", "ca", a.Name, "serial", iss.Record.Serial, "not_after", iss.Cert().NotAfter)
	return NewResponseSigner(a.Cert, iss.Cert(), key)
}

// errOffline: a CA whose key is offline (or that was revoked) has no
// responder certificate here; its certificates get no OCSP answers.
var errOffline = errors.New("CA offline")

func delegatedKeyPath(dir, caName string, cert *x509.Certificate) string {
	return filepath.Join(dir, caName+"-"+hex.EncodeToString(cert.SubjectKeyId)+".key")
}

// loadDelegated loads a CA's delegated responder; due reports that it is
// past the first two thirds of its life. An expired one is an error.
func (r *Responder) loadDelegated(a *ca.Authority, certPath string) (s *ResponseSigner, due bool, err error) {
	data, err := os.ReadFile(certPath)
	if err != nil {
		return nil, false, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, false, fmt.Errorf("%s: no PEM", certPath)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, false, err
	}
	if err := ed448x509.CheckSignature(cert, a.Cert); err != nil {
		return nil, false, fmt.Errorf("%s is not signed by the current %s certificate: %w", certPath, a.Name, err)
	}
	now := r.opts.Now()
	if now.After(cert.NotAfter) {
		return nil, false, fmt.Errorf("%s expired at %s", certPath, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	due = now.After(cert.NotBefore.Add(life * 2 / 3))
	signer, err := (&ca.Signers{}).Load(context.Background(), "softkms:path="+delegatedKeyPath(filepath.Dir(certPath), a.Name, cert))
	if err != nil {
		return nil, false, err
	}
	s, err = NewResponseSigner(a.Cert, cert, signer)
	return s, due, err
}

// responderCN names a CA's delegated responder after the CA, shortening
// the CA's name so that the whole stays within a CN's 64 characters.
func responderCN(caCN string) string {
	const suffix = " OCSP Responder"
	if len(caCN)+len(suffix) > 64 {
		caCN = caCN[:64-len(suffix)]
		for !utf8.ValidString(caCN) {
			caCN = caCN[:len(caCN)-1]
		}
		caCN = strings.TrimRight(caCN, " ")
	}
	if caCN == "" {
		return strings.TrimSpace(suffix)
	}
	return caCN + suffix
}

// pendingKeyPath is where RequestResponder keeps the key of a responder
// whose certificate an offline CA has yet to sign.
func pendingKeyPath(dataDir, caName string) string {
	return filepath.Join(dataDir, "ocsp", caName+"-pending.key")
}

// RequestResponder makes the key of a new delegated responder for an
// offline CA (DataDir/ocsp, mode 0600) and returns its CSR: the CA signs
// it where its key is ('pncctl ca sign --profile ocsp/responder'), and
// ImportResponder installs the certificate. The key never leaves the
// online side.
func RequestResponder(dataDir string, a *ca.Authority) ([]byte, error) {
	path := pendingKeyPath(dataDir, a.Name)
	os.Remove(path) // a request not completed before is superseded
	key, err := ca.GenerateKeyFile(path)
	if err != nil {
		return nil, err
	}
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: ca.Name(responderCN(a.Cert.Subject.CommonName), "", "", ""),
	}, key)
}

// ImportResponder installs a delegated responder certificate that CA a
// signed elsewhere for the key RequestResponder made. Responders pick it
// up at their next Reload.
func ImportResponder(dataDir string, a *ca.Authority, cert *x509.Certificate) error {
	if err := ed448x509.CheckSignature(cert, a.Cert); err != nil {
		return fmt.Errorf("the responder certificate is not signed by %s: %w", a.Name, err)
	}
	p, err := policies.Lookup(policies.OCSPResponder)
	if err != nil {
		return err
	}
	if vs := p.Check(cert, policies.SECCBoth); len(vs) > 0 {
		return fmt.Errorf("the responder certificate does not fit %s: %w", p.Name, vs)
	}
	pending := pendingKeyPath(dataDir, a.Name)
	signer, err := (&ca.Signers{}).Load(context.Background(), "softkms:path="+pending)
	if err != nil {
		return fmt.Errorf("the key of the responder request: %w", err)
	}
	if !signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		return fmt.Errorf("the responder certificate is not for the key of the pending request (%s)", pending)
	}
	dir := filepath.Join(dataDir, "ocsp")
	if err := os.Rename(pending, delegatedKeyPath(dir, a.Name, cert)); err != nil {
		return err
	}
	return writeResponderCert(filepath.Join(dir, a.Name+".pem"), cert)
}

// writeResponderCert replaces a CA's responder certificate file
// atomically: its key, named after the certificate's key ID, is in place
// first, so that loading the certificate always finds it.
func writeResponderCert(certPath string, cert *x509.Certificate) error {
	tmp := certPath + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, certPath)
}
