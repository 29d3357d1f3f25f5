package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

func requireAdmin(ctx context.Context) error {
	if c := claimsFrom(ctx); c.Role != auth.RoleAdmin {
		return forbidden("an administrator token is required")
	}
	return nil
}

type tenants struct{ s *Server }

func tenantProto(t *policies.Tenant) *pncpkiv1.Tenant {
	return &pncpkiv1.Tenant{Name: t.Name, Kind: string(t.Kind), Organization: t.Organization,
		OperatorIds: t.OperatorIDs, ProviderIds: t.ProviderIDs, DnsDomains: t.DNSDomains}
}

func (h *tenants) ListTenants(ctx context.Context, _ *connect.Request[pncpkiv1.ListTenantsRequest]) (*connect.Response[pncpkiv1.ListTenantsResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	ts, err := h.s.Store.Tenants(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListTenantsResponse{}
	for _, t := range ts {
		resp.Tenants = append(resp.Tenants, tenantProto(t))
	}
	return connect.NewResponse(resp), nil
}

func (h *tenants) CreateTenant(ctx context.Context, req *connect.Request[pncpkiv1.CreateTenantRequest]) (*connect.Response[pncpkiv1.CreateTenantResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	in := req.Msg.Tenant
	if in == nil {
		return nil, newError(connect.CodeInvalidArgument, "request.invalid", errors.New("request.invalid: tenant is required"))
	}
	if len(in.OperatorIds)+len(in.ProviderIds)+len(in.DnsDomains) > 1000 {
		return nil, newError(connect.CodeInvalidArgument, "request.invalid", errors.New("request.invalid: at most 1000 identifiers and domains"))
	}
	t := &policies.Tenant{Name: in.Name, Kind: policies.TenantKind(in.Kind), Organization: in.Organization,
		OperatorIDs: in.OperatorIds, ProviderIDs: in.ProviderIds, DNSDomains: in.DnsDomains}
	if err := t.Normalize(); err != nil {
		return nil, newError(connect.CodeInvalidArgument, CodeTenantInvalid, fmt.Errorf("tenant.invalid: %w", err))
	}
	if err := h.s.Store.CreateTenant(ctx, t); errors.Is(err, store.ErrExists) {
		return nil, newError(connect.CodeAlreadyExists, CodeTenantExists, fmt.Errorf("tenant.exists: %w", err))
	} else if err != nil {
		return nil, apiError(err)
	}
	return connect.NewResponse(&pncpkiv1.CreateTenantResponse{Tenant: tenantProto(t)}), nil
}

type tokens struct{ s *Server }

func (h *tokens) CreateToken(ctx context.Context, req *connect.Request[pncpkiv1.CreateTokenRequest]) (*connect.Response[pncpkiv1.CreateTokenResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	m := req.Msg
	if m.Tenant != "" {
		if _, err := h.s.Store.Tenant(ctx, m.Tenant); errors.Is(err, store.ErrNotFound) {
			return nil, newError(connect.CodeInvalidArgument, "tenant.unknown", fmt.Errorf("tenant.unknown: no tenant %q", m.Tenant))
		} else if err != nil {
			return nil, apiError(err)
		}
	}
	ttl := time.Duration(m.TtlSeconds) * time.Second
	now := h.s.Now()
	tok, err := h.s.Key.Mint(m.Subject, m.Tenant, m.Role, ttl, now)
	if err != nil {
		return nil, newError(connect.CodeInvalidArgument, "request.invalid", fmt.Errorf("request.invalid: %w", err))
	}
	c, err := h.s.Key.Verify(tok, now)
	if err != nil {
		return nil, apiError(err)
	}
	if err := h.s.Store.AppendAudit(ctx, store.TokenAudit(ctx, m.Subject, store.TokenDetail{ID: c.ID, Tenant: m.Tenant, Role: m.Role,
		TTL: ttl.String(), ExpiresAt: c.ExpiresAt.Time.UTC()})); err != nil {
		return nil, apiError(err)
	}
	return connect.NewResponse(&pncpkiv1.CreateTokenResponse{Token: tok, ExpiresAt: timestamppb.New(now.Add(ttl)), Id: c.ID}), nil
}

func (h *tokens) RevokeToken(ctx context.Context, req *connect.Request[pncpkiv1.RevokeTokenRequest]) (*connect.Response[pncpkiv1.RevokeTokenResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	id := req.Msg.Id
	if id == "" || len(id) > 64 {
		return nil, newError(connect.CodeInvalidArgument, "request.invalid", errors.New("request.invalid: id is the token's jti"))
	}
	now := h.s.Now()
	exp := now.Add(auth.MaxTTL)
	if req.Msg.ExpiresAt != nil {
		if e := req.Msg.ExpiresAt.AsTime(); e.Before(exp) {
			exp = e
		}
	}
	if err := h.s.Store.RevokeToken(ctx, id, exp); err != nil {
		return nil, apiError(err)
	}
	h.s.revocations.add(id)
	return connect.NewResponse(&pncpkiv1.RevokeTokenResponse{}), nil
}

type audit struct{ s *Server }

func (h *audit) ListAudit(ctx context.Context, req *connect.Request[pncpkiv1.ListAuditRequest]) (*connect.Response[pncpkiv1.ListAuditResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	es, err := h.s.Store.AuditLog(ctx, req.Msg.After, int(req.Msg.PageSize))
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListAuditResponse{}
	for _, e := range es {
		resp.Entries = append(resp.Entries, &pncpkiv1.AuditEntry{Seq: e.Seq, Time: timestamppb.New(e.Time), Actor: e.Actor,
			Action: e.Action, Object: e.Object, Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash})
	}
	return connect.NewResponse(resp), nil
}
