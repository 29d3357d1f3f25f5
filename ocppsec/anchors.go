package ocppsec

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Use is what a trust anchor is trusted for; the names are OCPP's
// InstallCertificateUse values.
type Use string

// Trust anchor uses.
const (
	UseV2G          Use = "V2GRootCertificate"
	UseMO           Use = "MORootCertificate"
	UseCSMS         Use = "CSMSRootCertificate"
	UseManufacturer Use = "ManufacturerRootCertificate" // the station maker's firmware root, not a vehicle OEM root
	UseOEM          Use = "OEMRootCertificate"          // vehicle OEM roots; installable from OCPP 2.1 on
)

// Uses lists the trust anchor uses in a stable order.
var Uses = []Use{UseV2G, UseMO, UseCSMS, UseManufacturer, UseOEM}

// UseCSMSRollover holds rollover certificates: a newer CSMS root's key and
// subject signed by an older CSMS root (ca.Service.CrossCertify), which
// stations with AdditionalRootCertificateCheck need to accept the newer
// root. They are not trust anchors themselves.
const UseCSMSRollover Use = "CSMSRootRollover"

// Anchors are the trust anchors per use: configuration, not code. Several
// V2G roots (public ecosystems and private environments) are normal.
type Anchors map[Use][]*x509.Certificate

// rootUse maps our root profiles to their use.
var rootUse = map[string]Use{
	policies.ISO2V2GRoot:  UseV2G,
	policies.ISO2MORoot:   UseMO,
	policies.ISO2OEMRoot:  UseOEM,
	policies.OCPPCSMSRoot: UseCSMS,
	// ISO 15118-20 roots serve the same uses: OCPP names no -20 use.
	policies.ISO20V2GRoot: UseV2G,
	policies.ISO20MORoot:  UseMO,
	policies.ISO20OEMRoot: UseOEM,

	policies.ISO20EdV2GRoot: UseV2G,
	policies.ISO20EdMORoot:  UseMO,
	policies.ISO20EdOEMRoot: UseOEM,
}

// AnchorsFrom collects the roots of the CA service (our own and imported
// foreign roots, by profile), the CSMS root rollover certificates in st,
// and then the PEM files in dir/<Use>/*.pem (dir may be empty). Every
// anchor must be a self-signed CA certificate.
func AnchorsFrom(ctx context.Context, svc *ca.Service, st store.Store, dir string) (Anchors, error) {
	a := Anchors{}
	if svc != nil {
		for _, auth := range svc.Authorities() {
			if u, ok := rootUse[auth.Profile.Name]; ok {
				if err := a.Add(u, auth.Cert); err != nil {
					return nil, err
				}
			}
		}
	}
	if st != nil {
		live := false
		recs, err := st.Certificates(ctx, store.Filter{Profile: policies.OCPPCSMSRoot, Revoked: &live})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			c, err := x509.ParseCertificate(r.DER)
			if err != nil {
				return nil, fmt.Errorf("rollover certificate %s/%s: %w", r.Issuer, r.Serial, err)
			}
			if err := a.AddRollover(c); err != nil {
				return nil, err
			}
		}
	}
	if dir == "" {
		return a, nil
	}
	for _, u := range Uses {
		files, _ := filepath.Glob(filepath.Join(dir, string(u), "*.pem"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			certs, err := ParsePEMChain(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			for _, c := range certs {
				if err := a.Add(u, c); err != nil {
					return nil, fmt.Errorf("%s: %w", f, err)
				}
			}
		}
	}
	return a, nil
}

// Add adds a root for use u; it refuses anything but a self-signed CA
// certificate, so that only real roots are ever sent with
// InstallCertificate.
func (a Anchors) Add(u Use, c *x509.Certificate) error {
	if err := IsRoot(c); err != nil {
		return err
	}
	if !slices.ContainsFunc(a[u], func(x *x509.Certificate) bool { return x.Equal(c) }) {
		a[u] = append(a[u], c)
	}
	return nil
}

// AddRollover adds a CSMS root rollover certificate: a CA certificate for
// the key of a CSMS anchor, signed by another CSMS anchor.
func (a Anchors) AddRollover(c *x509.Certificate) error {
	if !c.BasicConstraintsValid || !c.IsCA {
		return fmt.Errorf("rollover %s is not a CA certificate", c.Subject)
	}
	if a.rolloverOf(c) == nil || a.rolloverSigner(c) == nil {
		return fmt.Errorf("rollover %s is not a CSMS root's key signed by another CSMS root", c.Subject)
	}
	a[UseCSMSRollover] = append(a[UseCSMSRollover], c)
	return nil
}

// rolloverOf returns the CSMS root whose key the rollover certificate
// carries.
func (a Anchors) rolloverOf(c *x509.Certificate) *x509.Certificate {
	for _, r := range a[UseCSMS] {
		if bytes.Equal(r.RawSubjectPublicKeyInfo, c.RawSubjectPublicKeyInfo) {
			return r
		}
	}
	return nil
}

// rolloverSigner returns the CSMS root that signed the rollover certificate.
func (a Anchors) rolloverSigner(c *x509.Certificate) *x509.Certificate {
	for _, r := range a[UseCSMS] {
		if !bytes.Equal(r.RawSubjectPublicKeyInfo, c.RawSubjectPublicKeyInfo) && ed448x509.CheckSignature(c, r) == nil {
			return r
		}
	}
	return nil
}

// IsRoot checks that c is a self-signed CA certificate.
func IsRoot(c *x509.Certificate) error {
	if !c.BasicConstraintsValid || !c.IsCA {
		return fmt.Errorf("%s is not a CA certificate", c.Subject)
	}
	if !bytes.Equal(c.RawIssuer, c.RawSubject) || ed448x509.CheckSignature(c, c) != nil {
		return fmt.Errorf("%s is not self-signed", c.Subject)
	}
	return nil
}

// Pool returns the roots of the given uses as a pool.
func (a Anchors) Pool(uses ...Use) *x509.CertPool {
	p := x509.NewCertPool()
	for _, u := range uses {
		for _, c := range a[u] {
			p.AddCert(c)
		}
	}
	return p
}

// MaxChain bounds the certificates read from one PEM chain.
const MaxChain = 8

// ParsePEMChain parses PEM certificates (leaf first in OCPP chains).
func ParsePEMChain(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", b.Type)
		}
		if len(out) == MaxChain {
			return nil, fmt.Errorf("more than %d certificates", MaxChain)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// EncodePEMChain encodes certificates as concatenated PEM.
func EncodePEMChain(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.WriteString(ca.CertificatePEM(c.Raw))
	}
	return b.String()
}
