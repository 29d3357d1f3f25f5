package ocsp

import (
	"context"
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
	switch {
	case err == nil && !due:
		return s, nil
	case a.Offline && err == nil:
		// Its CA cannot sign a successor here: the one there is serves
		// until it expires (pncpki_ocsp_responder_expiry_seconds).
		r.log.Warn("OCSP responder certificate of an offline CA is due for renewal; sign a new one where the CA's key is", "ca", a.Name, "not_after", s.Cert.NotAfter)
		return s, nil
	case a.Offline:
		return nil, fmt.Errorf("%w: no usable OCSP responder certificate (%v)", errOffline, err)
	case !errors.Is(err, os.ErrNotExist):
		r.log.Warn("OCSP responder certificate unusable; issuing a new one", "ca", a.Name, "err", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	iss, err := r.opts.CA.IssueForKey(ctx, policies.OCSPResponder, a.Name, key.Public(),
		policies.Subject{CommonName: responderCN(a.Cert.Subject.CommonName)}, policies.Period{})
	if err != nil {
		return nil, fmt.Errorf("issue OCSP responder certificate for %s: %w", a.Name, err)
	}
	// The key is named after the certificate's key ID, so loading the
	// certificate finds it; the certificate file is replaced atomically.
	if err := ca.WriteKeyFile(delegatedKeyPath(dir, a.Name, iss.Cert()), key); err != nil {
		return nil, err
	}
	tmp := certPath + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Cert().Raw}), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, certPath); err != nil {
		return nil, err
	}
	r.log.Info("issued OCSP responder certificate", "ca", a.Name, "serial", iss.Record.Serial, "not_after", iss.Cert().NotAfter)
	return NewResponseSigner(a.Cert, iss.Cert(), key)
}

// errOffline: a CA whose key is offline has no responder certificate
// here; its certificates get no OCSP answers.
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
	if err := cert.CheckSignatureFrom(a.Cert); err != nil {
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
