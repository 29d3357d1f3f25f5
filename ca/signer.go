package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"

	"go.step.sm/crypto/kms"
	"go.step.sm/crypto/kms/apiv1"
	_ "go.step.sm/crypto/kms/pkcs11" // pkcs11: key URIs (needs cgo)
	"go.step.sm/crypto/kms/softkms"
)

// Signers resolves key URIs to crypto.Signers through go.step.sm/crypto/kms
// and keeps the key managers open until Close. Key URIs:
//
//	softkms:path=keys/cpo-sub2.key           PEM file, relative to the data directory
//	pkcs11:module-path=/usr/lib/softhsm/libsofthsm2.so;token=pncpki;object=cpo-sub2?pin-value=1234
//
// A pkcs11 URI names both the token (module-path, token or slot-id, PIN)
// and the key (object and/or id); the key never leaves the token.
type Signers struct {
	BaseDir string
	kms     []apiv1.KeyManager
}

// Load returns the signer for a key URI.
func (s *Signers) Load(ctx context.Context, keyURI string) (crypto.Signer, error) {
	switch {
	case strings.HasPrefix(keyURI, "softkms:"):
		path := FilePath(keyURI, s.BaseDir)
		if err := checkKeyMode(path); err != nil {
			return nil, err
		}
		if key, err := readEd448KeyFile(path); key != nil || err != nil {
			return key, err
		}
		sig, err := (&softkms.SoftKMS{}).CreateSigner(&apiv1.CreateSignerRequest{SigningKey: path})
		if err != nil {
			return nil, fmt.Errorf("load key %s: %w", path, err)
		}
		return sig, nil
	case strings.HasPrefix(keyURI, "pkcs11:"):
		km, err := kms.New(ctx, apiv1.Options{Type: apiv1.PKCS11, URI: keyURI})
		if err != nil {
			return nil, fmt.Errorf("open PKCS#11 token: %w", err)
		}
		sig, err := km.CreateSigner(&apiv1.CreateSignerRequest{SigningKey: keyURI})
		if err != nil {
			km.Close()
			return nil, fmt.Errorf("find PKCS#11 key: %w", err)
		}
		s.kms = append(s.kms, km)
		return sig, nil
	}
	return nil, fmt.Errorf("unsupported key URI %q: want a softkms:path=FILE or a pkcs11: URI", redact(keyURI))
}

// Close closes every key manager opened by Load.
func (s *Signers) Close() error {
	var errs []error
	for _, km := range s.kms {
		errs = append(errs, km.Close())
	}
	s.kms = nil
	return errors.Join(errs...)
}

// redact drops the query (where a PIN may be) from a URI for messages.
func redact(uri string) string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i] + "?..."
	}
	return uri
}

// FilePath returns the file a softkms URI names, joined to baseDir when
// relative.
func FilePath(keyURI, baseDir string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(keyURI, "softkms:"), "path=")
	if !filepath.IsAbs(p) && baseDir != "" {
		p = filepath.Join(baseDir, p)
	}
	return p
}

// checkKeyMode refuses private key files that others can read.
func checkKeyMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("key file %s has mode %v: private keys must be 0600", path, fi.Mode().Perm())
	}
	return nil
}

// GenerateKeyFile creates a new ECDSA P-256 key in a PEM file of mode 0600
// (refusing to overwrite one) and returns it.
func GenerateKeyFile(path string) (crypto.Signer, error) {
	return GenerateKeyFileFor(path, policies.KeyP256)
}

// readEd448KeyFile reads a PEM PKCS#8 Ed448 key, which softkms does not
// know. It answers nil and no error for a file of another algorithm.
func readEd448KeyFile(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, nil
	}
	key, err := ed448x509.ParsePKCS8(b.Bytes)
	if errors.Is(err, ed448x509.ErrNotCurve448) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	k, ok := key.(ed448.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load key %s: an X448 key cannot sign", path)
	}
	return k, nil
}

// GenerateKeyFileFor is GenerateKeyFile for a key that fits rule: P-521
// for KeyP521 and Ed448 for KeyEd448 (ISO 15118-20), P-256 for the
// others.
func GenerateKeyFileFor(path string, rule policies.KeyRule) (crypto.Signer, error) {
	if rule == policies.KeyEd448 {
		_, key, err := ed448.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return key, WriteKeyFile(path, key)
	}
	curve := elliptic.P256()
	if rule == policies.KeyP521 {
		curve = elliptic.P521()
	}
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		return nil, err
	}
	return key, WriteKeyFile(path, key)
}

// WriteKeyFile writes a private key as PKCS#8 PEM with mode 0600, creating
// parent directories with mode 0700. It never overwrites a file.
func WriteKeyFile(path string, key crypto.Signer) error {
	var der []byte
	if k, ok := key.(ed448.PrivateKey); ok {
		der = ed448x509.MarshalPKCS8(k)
	} else {
		var err error
		if der, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
			return fmt.Errorf("marshal key: %w", err)
		}
	}
	return WriteKeyData(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// WriteKeyData writes the bytes of a key file (a copy of one, say) as
// WriteKeyFile does: mode 0600, synced, never over an existing file.
func WriteKeyData(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LoadSigner returns the signer of a key URI through the service's key
// managers (file or PKCS#11): for keys that sign outside the CAs, such as
// the CPS leaf's.
func (s *Service) LoadSigner(ctx context.Context, keyURI string) (crypto.Signer, error) {
	return s.signers.Load(ctx, keyURI)
}
