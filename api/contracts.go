package api

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/store"
)

type contracts struct{ s *Server }

func contractProto(c *store.Contract) *pncpkiv1.Contract {
	p := &pncpkiv1.Contract{Emaid: c.EMAID, Tenant: c.Tenant, Pcid: c.PCID, Default: c.Default, CreatedAt: timestamppb.New(c.CreatedAt)}
	if !c.ValidUntil.IsZero() {
		p.ValidUntil = timestamppb.New(c.ValidUntil)
	}
	if c.Cancelled() {
		p.CancelledAt = timestamppb.New(c.CancelledAt)
	}
	return p
}

// actingTenant is the tenant a call acts for: "" for administrators.
func actingTenant(ctx context.Context) string {
	if c := claimsFrom(ctx); c.Role != auth.RoleAdmin {
		return c.Tenant
	}
	return ""
}

// contractError maps the pool's refusals to API errors.
func contractError(err error) error {
	var pe *contract.Error
	if !errors.As(err, &pe) {
		return apiError(err)
	}
	c := connect.CodeInvalidArgument
	switch pe.Code {
	case contract.CodeNotFound:
		c = connect.CodeNotFound
	case contract.CodeForbidden:
		c = connect.CodePermissionDenied
	}
	return newError(c, pe.Code, pe)
}

func (h *contracts) pool() (*contract.Pool, error) {
	if h.s.Contracts == nil {
		return nil, newError(connect.CodeUnimplemented, "contract.disabled", errors.New("contract.disabled: this server has no contract pool"))
	}
	return h.s.Contracts, nil
}

func (h *contracts) PutContract(ctx context.Context, req *connect.Request[pncpkiv1.PutContractRequest]) (*connect.Response[pncpkiv1.PutContractResponse], error) {
	p, err := h.pool()
	if err != nil {
		return nil, err
	}
	in := req.Msg.Contract
	if in == nil {
		return nil, invalid("request.invalid", "contract is required")
	}
	c := store.Contract{EMAID: in.Emaid, Tenant: in.Tenant, PCID: in.Pcid, Default: in.Default}
	if in.ValidUntil != nil {
		c.ValidUntil = in.ValidUntil.AsTime()
	}
	out, err := p.Put(ctx, actingTenant(ctx), c)
	if err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.PutContractResponse{Contract: contractProto(out)}), nil
}

func (h *contracts) GetContract(ctx context.Context, req *connect.Request[pncpkiv1.GetContractRequest]) (*connect.Response[pncpkiv1.GetContractResponse], error) {
	p, err := h.pool()
	if err != nil {
		return nil, err
	}
	c, err := p.Get(ctx, actingTenant(ctx), req.Msg.Emaid)
	if err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.GetContractResponse{Contract: contractProto(c)}), nil
}

func (h *contracts) ListContracts(ctx context.Context, req *connect.Request[pncpkiv1.ListContractsRequest]) (*connect.Response[pncpkiv1.ListContractsResponse], error) {
	tenant := req.Msg.Tenant
	if t := actingTenant(ctx); t != "" {
		if tenant != "" && tenant != t {
			return nil, forbidden("a token of tenant %s cannot list tenant %s", t, tenant)
		}
		tenant = t
	}
	list, err := h.s.Store.ListContracts(ctx, tenant, req.Msg.Pcid)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListContractsResponse{}
	for _, c := range list {
		resp.Contracts = append(resp.Contracts, contractProto(c))
	}
	return connect.NewResponse(resp), nil
}

func (h *contracts) CancelContract(ctx context.Context, req *connect.Request[pncpkiv1.CancelContractRequest]) (*connect.Response[pncpkiv1.CancelContractResponse], error) {
	p, err := h.pool()
	if err != nil {
		return nil, err
	}
	c, revoked, err := p.Cancel(ctx, actingTenant(ctx), req.Msg.Emaid)
	if err != nil {
		if c != nil { // cancelled, but a revocation failed: say so
			return nil, apiError(fmt.Errorf("contract %s cancelled, %d certificates revoked, then: %w", c.EMAID, len(revoked), err))
		}
		return nil, contractError(err)
	}
	resp := &pncpkiv1.CancelContractResponse{Contract: contractProto(c)}
	for _, r := range revoked { // the pool's Revoked hook told OCSP
		resp.Revoked = append(resp.Revoked, toProto(r, h.s.Now()))
	}
	return connect.NewResponse(resp), nil
}
