// Package contract holds the contract side of Plug and Charge: the
// contract pool that binds an eMSP's contracts (EMAIDs) to vehicles
// (PCIDs). Installing contract certificates through ISO 15118-2
// CertificateInstallation builds on it.
package contract

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Error codes of the pool.
const (
	CodeInvalid   = "contract.invalid"   // a malformed EMAID, PCID or contract
	CodeNotFound  = "contract.not_found" // no such contract (or not the tenant's)
	CodeForbidden = "contract.forbidden" // the tenant may not touch this contract
	CodeCancelled = "contract.cancelled" // the contract was cancelled
)

// Error is a refused pool operation with a stable code.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// reasonCessationOfOperation is RFC 5280's reason for a contract that ended.
const reasonCessationOfOperation = 5

// Pool manages contracts and their certificates.
type Pool struct {
	Store store.Store
	CA    *ca.Service
	// Revoked, when set, hears about every certificate revoked because
	// its contract was cancelled (e.g. to tell the OCSP responders).
	Revoked func(ctx context.Context, rec *store.Certificate)
	// Changed, when set, hears about every contract created, changed or
	// cancelled after the store has it (e.g. to publish events).
	Changed func(ctx context.Context, change Change, c *store.Contract)
	Now     func() time.Time
}

// Change is what happened to a contract.
type Change string

// Contract changes.
const (
	ContractCreated Change = "created"
	ContractUpdated Change = "updated"
	ContractDeleted Change = "deleted"
)

func (p *Pool) changed(ctx context.Context, change Change, c *store.Contract) {
	if p.Changed != nil {
		p.Changed(ctx, change, c)
	}
}

func (p *Pool) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Put creates or changes a contract of tenant (an eMSP, or "" for an
// administrator acting for the contract's existing or given owner). The
// EMAID is normalised and check-digit verified and must be under one of the
// eMSP's provider IDs; the PCID is normalised.
func (p *Pool) Put(ctx context.Context, actingTenant string, c store.Contract) (*store.Contract, error) {
	e, err := policies.ParseEMAID(c.EMAID)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "EMAID", Err: err}
	}
	c.EMAID = e.String()
	if c.PCID, err = policies.NormalizePCID(c.PCID); err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "PCID", Err: err}
	}
	if actingTenant != "" {
		if c.Tenant != "" && c.Tenant != actingTenant {
			return nil, &Error{Code: CodeForbidden, Message: fmt.Sprintf("tenant %s cannot create contracts of tenant %s", actingTenant, c.Tenant)}
		}
		c.Tenant = actingTenant
	}
	if c.Tenant == "" {
		return nil, &Error{Code: CodeInvalid, Message: "a contract needs its eMSP tenant"}
	}
	t, err := p.Store.Tenant(ctx, c.Tenant)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &Error{Code: CodeInvalid, Message: "no tenant " + c.Tenant}
	} else if err != nil {
		return nil, err
	}
	prof, _ := policies.Lookup(policies.ISO2Contract)
	if err := t.Permit(prof, policies.Subject{CommonName: c.EMAID}); err != nil {
		return nil, &Error{Code: CodeForbidden, Message: "tenant policy refuses", Err: err}
	}
	c.CreatedAt = p.now().UTC().Truncate(time.Millisecond)
	change := ContractCreated
	if p.Changed != nil { // only a listener needs to know which
		if _, err := p.Store.Contract(ctx, c.EMAID); err == nil {
			change = ContractUpdated
		}
	}
	if err := p.Store.PutContract(ctx, &c); errors.Is(err, store.ErrExists) {
		return nil, &Error{Code: CodeForbidden, Message: "contract " + c.EMAID + " is another tenant's or cancelled"}
	} else if err != nil {
		return nil, err
	}
	p.changed(ctx, change, &c)
	return &c, nil
}

// Get returns a contract the tenant may see ("" : any); another tenant's
// contract is not found.
func (p *Pool) Get(ctx context.Context, actingTenant, emaid string) (*store.Contract, error) {
	e, err := policies.ParseEMAID(emaid)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "EMAID", Err: err}
	}
	c, err := p.Store.Contract(ctx, e.String())
	if errors.Is(err, store.ErrNotFound) || err == nil && actingTenant != "" && c.Tenant != actingTenant {
		return nil, &Error{Code: CodeNotFound, Message: "no contract " + e.String()}
	}
	return c, err
}

// Cancel cancels a contract and revokes its contract certificates
// (reason cessationOfOperation); from then on Authorize answers
// ContractCancelled for it. The revocations are durable before Cancel
// returns them.
func (p *Pool) Cancel(ctx context.Context, actingTenant, emaid string) (*store.Contract, []*store.Certificate, error) {
	c, err := p.Get(ctx, actingTenant, emaid)
	if err != nil {
		return nil, nil, err
	}
	if c, err = p.Store.CancelContract(ctx, c.EMAID, p.now()); err != nil {
		return nil, nil, err
	}
	p.changed(ctx, ContractDeleted, c)
	var revoked []*store.Certificate
	for offset := 0; ; offset += store.MaxPage {
		page, err := p.Store.Certificates(ctx, store.Filter{Profile: policies.ISO2Contract, CommonName: c.EMAID, Limit: store.MaxPage, Offset: offset})
		if err != nil {
			return c, revoked, err
		}
		for _, rec := range page {
			if rec.Revoked() {
				continue
			}
			if e, err := policies.ParseEMAID(rec.CommonName); err != nil || e.String() != c.EMAID {
				continue
			}
			r, err := p.CA.Revoke(ctx, rec.Issuer, rec.Serial, reasonCessationOfOperation)
			if err != nil {
				return c, revoked, fmt.Errorf("revoke %s/%s: %w", rec.Issuer, rec.Serial, err)
			}
			revoked = append(revoked, r)
			if p.Revoked != nil {
				p.Revoked(ctx, r)
			}
		}
		if len(page) < store.MaxPage {
			break
		}
	}
	return c, revoked, nil
}

// Cancelled reports whether the contract of an EMAID is cancelled or past
// its validity; an unknown EMAID is not cancelled (a foreign eMSP's).
func (p *Pool) Cancelled(ctx context.Context, emaid string) (bool, error) {
	e, err := policies.ParseEMAID(emaid)
	if err != nil {
		return false, nil
	}
	c, err := p.Store.Contract(ctx, e.String())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return c.Cancelled() || !c.ValidUntil.IsZero() && p.now().After(c.ValidUntil), nil
}
