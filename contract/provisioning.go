package contract

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// ProvisioningProfile is the OEM provisioning profile for a certificate's
// key: ISO 15118-2 (P-256), or ISO 15118-20's secp521r1 or Ed448 variant.
func ProvisioningProfile(leaf *x509.Certificate) string {
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P521() {
		return policies.ISO20OEMProv
	}
	if ed448x509.PublicKey(leaf) != nil {
		return policies.ISO20EdOEMProv
	}
	return policies.ISO2OEMProv
}

// MaxProvisioningChain bounds the sub-CAs sent with a provisioning
// certificate (ISO 15118-2: at most two below the root).
const MaxProvisioningChain = 2

// PutProvisioning registers an OEM provisioning certificate (DER leaf and
// its sub-CAs, leaf first) for the PCID in its CN. The leaf must fit the
// OEM provisioning profile of its ISO 15118 part and variant (its key
// tells: P-256 for -2, P-521 or Ed448 for -20); with OEM roots given, the
// chain must verify to one of them. The tenant must be an OEM ("" for an
// administrator acting for owner).
func (p *Pool) PutProvisioning(ctx context.Context, actingTenant, owner string, certs []*x509.Certificate, oemRoots []*x509.Certificate) (*store.ProvisioningCertificate, error) {
	if len(certs) == 0 || len(certs) > 1+MaxProvisioningChain {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("send the provisioning certificate and at most %d sub-CAs", MaxProvisioningChain)}
	}
	owner, err := p.oemOwner(ctx, actingTenant, owner)
	if err != nil {
		return nil, err
	}
	leaf := certs[0]
	prof, _ := policies.Lookup(ProvisioningProfile(leaf))
	if vs := prof.Check(leaf, policies.SECCBoth); len(vs) > 0 {
		return nil, &Error{Code: CodeInvalid, Message: "not an OEM provisioning certificate: " + vs.Error()}
	}
	pcid, err := policies.NormalizePCID(leaf.Subject.CommonName)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "PCID", Err: err}
	}
	if len(oemRoots) > 0 {
		if _, err := verifyChain(leaf, oemRoots, certs[1:], p.now()); err != nil {
			return nil, &Error{Code: CodeInvalid, Message: "the chain does not lead to an OEM root", Err: err}
		}
	}
	var chain []byte
	for _, c := range certs[1:] {
		chain = append(chain, c.Raw...)
	}
	rec := &store.ProvisioningCertificate{PCID: pcid, Tenant: owner, DER: leaf.Raw, Chain: chain, CreatedAt: p.now().UTC().Truncate(time.Millisecond)}
	if err := p.Store.PutProvisioningCertificate(ctx, rec); errors.Is(err, store.ErrExists) {
		return nil, &Error{Code: CodeForbidden, Message: "PCID " + pcid + " is another OEM's"}
	} else if err != nil {
		return nil, err
	}
	return rec, nil
}

// GetProvisioning returns the provisioning certificate of a PCID that the
// tenant may see ("" : any).
func (p *Pool) GetProvisioning(ctx context.Context, actingTenant, pcid string) (*store.ProvisioningCertificate, error) {
	n, err := policies.NormalizePCID(pcid)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "PCID", Err: err}
	}
	rec, err := p.Store.ProvisioningCertificate(ctx, n)
	if errors.Is(err, store.ErrNotFound) || err == nil && actingTenant != "" && rec.Tenant != actingTenant {
		return nil, &Error{Code: CodeNotFound, Message: "no provisioning certificate for " + n}
	}
	return rec, err
}

// ReadProvisioning is GetProvisioning for reading: an OEM sees its own
// vehicles' certificates, administrators and eMSPs every vehicle's (an
// eMSP encrypts contract keys for them; the certificate is public). Every
// API that reads provisioning certificates applies this rule.
func (p *Pool) ReadProvisioning(ctx context.Context, actingTenant, pcid string) (*store.ProvisioningCertificate, error) {
	if actingTenant != "" {
		if t, err := p.Store.Tenant(ctx, actingTenant); err == nil && t.Kind == policies.TenantEMSP {
			actingTenant = ""
		}
	}
	return p.GetProvisioning(ctx, actingTenant, pcid)
}

// DeleteProvisioning removes the provisioning certificate of a PCID.
func (p *Pool) DeleteProvisioning(ctx context.Context, actingTenant, pcid string) error {
	rec, err := p.GetProvisioning(ctx, actingTenant, pcid)
	if err != nil {
		return err
	}
	return p.Store.DeleteProvisioningCertificate(ctx, rec.PCID)
}

// PutOEMSubCA registers an OEM sub-CA certificate of tenant (an OEM; ""
// for an administrator acting for owner). It must fit the OEM Sub-CA 1 or
// 2 profile and, with OEM roots given, lead to one of them through the
// sub-CAs registered before; then installation requests of the OEM's
// vehicles verify without a provisioning certificate registered per PCID.
func (p *Pool) PutOEMSubCA(ctx context.Context, actingTenant, owner string, cert *x509.Certificate, oemRoots []*x509.Certificate) (*store.OEMSubCA, error) {
	owner, err := p.oemOwner(ctx, actingTenant, owner)
	if err != nil {
		return nil, err
	}
	fits := false
	for _, name := range []string{policies.ISO2OEMSub1, policies.ISO2OEMSub2} {
		prof, _ := policies.Lookup(name)
		if len(prof.Check(cert, policies.SECCBoth)) == 0 {
			fits = true
		}
	}
	if !fits {
		return nil, &Error{Code: CodeInvalid, Message: "not an OEM Sub-CA 1 or 2 certificate"}
	}
	if len(oemRoots) > 0 {
		known, err := p.OEMSubCAs(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(oemRoots), Intermediates: pool(known), CurrentTime: p.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return nil, &Error{Code: CodeInvalid, Message: "the sub-CA does not lead to an OEM root", Err: err}
		}
	}
	rec := &store.OEMSubCA{SHA256: ca.Fingerprint(cert), Tenant: owner, DER: cert.Raw, CreatedAt: p.now().UTC().Truncate(time.Millisecond)}
	if err := p.Store.PutOEMSubCA(ctx, rec); errors.Is(err, store.ErrExists) {
		return nil, &Error{Code: CodeForbidden, Message: "the sub-CA is another OEM's"}
	} else if err != nil {
		return nil, err
	}
	return rec, nil
}

// ListOEMSubCAs returns the registered sub-CAs a tenant may see ("": all).
func (p *Pool) ListOEMSubCAs(ctx context.Context, actingTenant string) ([]*store.OEMSubCA, error) {
	return p.Store.OEMSubCAs(ctx, actingTenant)
}

// DeleteOEMSubCA removes a registered sub-CA by its SHA-256 fingerprint.
func (p *Pool) DeleteOEMSubCA(ctx context.Context, actingTenant, fingerprint string) error {
	list, err := p.Store.OEMSubCAs(ctx, actingTenant)
	if err != nil {
		return err
	}
	for _, c := range list {
		if c.SHA256 == strings.ToLower(fingerprint) {
			return p.Store.DeleteOEMSubCA(ctx, c.SHA256)
		}
	}
	return &Error{Code: CodeNotFound, Message: "no sub-CA " + fingerprint}
}

// OEMSubCAs returns every registered OEM sub-CA, parsed: the installer's
// intermediates.
func (p *Pool) OEMSubCAs(ctx context.Context) ([]*x509.Certificate, error) {
	list, err := p.Store.OEMSubCAs(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]*x509.Certificate, 0, len(list))
	for _, c := range list {
		cert, err := x509.ParseCertificate(c.DER)
		if err != nil {
			return nil, fmt.Errorf("OEM sub-CA %s: %w", c.SHA256, err)
		}
		out = append(out, cert)
	}
	return out, nil
}

// oemOwner resolves who registers: the acting OEM, or owner for an
// administrator; the owner must be an OEM tenant.
func (p *Pool) oemOwner(ctx context.Context, actingTenant, owner string) (string, error) {
	if actingTenant != "" {
		if owner != "" && owner != actingTenant {
			return "", &Error{Code: CodeForbidden, Message: fmt.Sprintf("tenant %s cannot register certificates of tenant %s", actingTenant, owner)}
		}
		owner = actingTenant
	}
	t, err := p.Store.Tenant(ctx, owner)
	if errors.Is(err, store.ErrNotFound) || owner == "" {
		return "", &Error{Code: CodeInvalid, Message: "no OEM tenant " + owner}
	} else if err != nil {
		return "", err
	}
	if t.Kind != policies.TenantOEM {
		return "", &Error{Code: CodeForbidden, Message: fmt.Sprintf("tenant %s is a %s, not an OEM", t.Name, t.Kind)}
	}
	return owner, nil
}
