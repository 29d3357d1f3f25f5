package contract

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// MaxProvisioningChain bounds the sub-CAs sent with a provisioning
// certificate (ISO 15118-2: at most two below the root).
const MaxProvisioningChain = 2

// PutProvisioning registers an OEM provisioning certificate (DER leaf and
// its sub-CAs, leaf first) for the PCID in its CN. The leaf must fit the
// OEM provisioning profile; with OEM roots given, the chain must verify to
// one of them. The tenant must be an OEM ("" for an administrator acting
// for owner).
func (p *Pool) PutProvisioning(ctx context.Context, actingTenant, owner string, certs []*x509.Certificate, oemRoots *x509.CertPool) (*store.ProvisioningCertificate, error) {
	if len(certs) == 0 || len(certs) > 1+MaxProvisioningChain {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("send the provisioning certificate and at most %d sub-CAs", MaxProvisioningChain)}
	}
	if actingTenant != "" {
		if owner != "" && owner != actingTenant {
			return nil, &Error{Code: CodeForbidden, Message: fmt.Sprintf("tenant %s cannot register certificates of tenant %s", actingTenant, owner)}
		}
		owner = actingTenant
	}
	t, err := p.Store.Tenant(ctx, owner)
	if errors.Is(err, store.ErrNotFound) || owner == "" {
		return nil, &Error{Code: CodeInvalid, Message: "no OEM tenant " + owner}
	} else if err != nil {
		return nil, err
	}
	if t.Kind != policies.TenantOEM {
		return nil, &Error{Code: CodeForbidden, Message: fmt.Sprintf("tenant %s is a %s, not an OEM", t.Name, t.Kind)}
	}
	leaf := certs[0]
	prof, _ := policies.Lookup(policies.ISO2OEMProv)
	if vs := prof.Check(leaf, policies.SECCBoth); len(vs) > 0 {
		return nil, &Error{Code: CodeInvalid, Message: "not an OEM provisioning certificate: " + vs.Error()}
	}
	pcid, err := policies.NormalizePCID(leaf.Subject.CommonName)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "PCID", Err: err}
	}
	if oemRoots != nil {
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: oemRoots, Intermediates: inter, CurrentTime: p.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
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

// DeleteProvisioning removes the provisioning certificate of a PCID.
func (p *Pool) DeleteProvisioning(ctx context.Context, actingTenant, pcid string) error {
	rec, err := p.GetProvisioning(ctx, actingTenant, pcid)
	if err != nil {
		return err
	}
	return p.Store.DeleteProvisioningCertificate(ctx, rec.PCID)
}
