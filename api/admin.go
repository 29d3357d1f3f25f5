package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/api/oauth"
	"github.com/pncpki/pncpki/ca"
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
	now := h.s.Now()
	id, exp := req.Msg.Id, now.Add(auth.MaxTTL)
	if req.Msg.ExpiresAt != nil {
		if e := req.Msg.ExpiresAt.AsTime(); e.Before(exp) {
			exp = e
		}
	}
	if req.Msg.Token != "" {
		c, err := h.s.Key.Verify(req.Msg.Token, now)
		if err != nil {
			return nil, newError(connect.CodeInvalidArgument, "request.invalid", fmt.Errorf("request.invalid: token: %w", err))
		}
		if id != "" && id != c.ID { // REST puts an id in the path
			return nil, newError(connect.CodeInvalidArgument, "request.invalid", fmt.Errorf("request.invalid: the token's id is %s, not %s", c.ID, id))
		}
		id, exp = c.ID, c.ExpiresAt.Time
	}
	if id == "" || len(id) > 64 {
		return nil, newError(connect.CodeInvalidArgument, "request.invalid", errors.New("request.invalid: id is the token's jti"))
	}
	if err := h.s.Store.RevokeToken(ctx, id, exp); err != nil {
		return nil, apiError(err)
	}
	h.s.revocations.add(id)
	return connect.NewResponse(&pncpkiv1.RevokeTokenResponse{}), nil
}

// ListTokens reads the tokens from the audit log, through its action
// index: token.create entries carry what was minted, token.revoke ones
// what was taken back.
func (h *tokens) ListTokens(ctx context.Context, req *connect.Request[pncpkiv1.ListTokensRequest]) (*connect.Response[pncpkiv1.ListTokensResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	var minted []*pncpkiv1.Token
	revoked := map[string]bool{}
	const page = 1000
	for after := int64(0); ; {
		es, err := h.s.Store.AuditActions(ctx, []string{store.AuditTokenCreate, store.AuditTokenRevoke}, after, page)
		if err != nil {
			return nil, apiError(err)
		}
		for _, e := range es {
			switch e.Action {
			case store.AuditTokenCreate:
				var td store.TokenDetail
				if json.Unmarshal([]byte(e.Detail), &td) == nil && td.ID != "" {
					minted = append(minted, &pncpkiv1.Token{Id: td.ID, Subject: e.Object, Tenant: td.Tenant, Role: td.Role,
						CreatedAt: timestamppb.New(e.Time), ExpiresAt: timestamppb.New(td.ExpiresAt)})
				}
			case store.AuditTokenRevoke:
				revoked[e.Object] = true
			}
		}
		if len(es) < page {
			break
		}
		after = es[len(es)-1].Seq
	}
	now := h.s.Now()
	resp := &pncpkiv1.ListTokensResponse{}
	for _, t := range minted {
		t.State = "valid"
		switch {
		case revoked[t.Id]:
			t.State = "revoked"
		case now.After(t.ExpiresAt.AsTime()):
			t.State = "expired"
		}
		if t.State == "valid" || req.Msg.All {
			resp.Tokens = append(resp.Tokens, t)
		}
	}
	return connect.NewResponse(resp), nil
}

func oauthClientProto(c *store.OAuthClient) *pncpkiv1.OAuthClient {
	p := &pncpkiv1.OAuthClient{Id: c.ID, Tenant: c.Tenant, Role: c.Role, CreatedAt: timestamppb.New(c.CreatedAt)}
	if !c.RevokedAt.IsZero() {
		p.RevokedAt = timestamppb.New(c.RevokedAt)
	}
	return p
}

func (h *tokens) CreateOAuthClient(ctx context.Context, req *connect.Request[pncpkiv1.CreateOAuthClientRequest]) (*connect.Response[pncpkiv1.CreateOAuthClientResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	m := req.Msg
	role := m.Role
	if role == "" {
		role = auth.RoleOperator
	}
	switch {
	case !oauth.ValidClientID(m.Id):
		return nil, newError(connect.CodeInvalidArgument, "request.invalid", errors.New("request.invalid: id: want 1 to 64 letters, digits, '.', '_' or '-'"))
	case role != auth.RoleAdmin && role != auth.RoleOperator:
		return nil, newError(connect.CodeInvalidArgument, "request.invalid", fmt.Errorf("request.invalid: role %q: want %s or %s", role, auth.RoleAdmin, auth.RoleOperator))
	case role == auth.RoleAdmin && m.Tenant != "":
		return nil, newError(connect.CodeInvalidArgument, "request.invalid", errors.New("request.invalid: an administrator client acts for every tenant: no tenant"))
	case role == auth.RoleOperator:
		if _, err := h.s.Store.Tenant(ctx, m.Tenant); errors.Is(err, store.ErrNotFound) || m.Tenant == "" {
			return nil, newError(connect.CodeInvalidArgument, ca.CodeTenantUnknown, fmt.Errorf("%s: no tenant %q", ca.CodeTenantUnknown, m.Tenant))
		} else if err != nil {
			return nil, apiError(err)
		}
	}
	now := h.s.Now()
	secret, err := oauth.CreateClient(ctx, h.s.Store, m.Id, m.Tenant, role, now)
	if errors.Is(err, store.ErrExists) {
		return nil, newError(connect.CodeAlreadyExists, CodeOAuthClientExists, fmt.Errorf("%s: %w", CodeOAuthClientExists, err))
	} else if err != nil {
		return nil, apiError(err)
	}
	c, err := h.s.Store.OAuthClient(ctx, m.Id)
	if err != nil {
		return nil, apiError(err)
	}
	return connect.NewResponse(&pncpkiv1.CreateOAuthClientResponse{Client: oauthClientProto(c), Secret: secret}), nil
}

func (h *tokens) ListOAuthClients(ctx context.Context, req *connect.Request[pncpkiv1.ListOAuthClientsRequest]) (*connect.Response[pncpkiv1.ListOAuthClientsResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	cs, err := h.s.Store.ListOAuthClients(ctx, req.Msg.Tenant)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListOAuthClientsResponse{}
	for _, c := range cs {
		resp.Clients = append(resp.Clients, oauthClientProto(c))
	}
	return connect.NewResponse(resp), nil
}

func (h *tokens) RevokeOAuthClient(ctx context.Context, req *connect.Request[pncpkiv1.RevokeOAuthClientRequest]) (*connect.Response[pncpkiv1.RevokeOAuthClientResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := h.s.Store.RevokeOAuthClient(ctx, req.Msg.Id, h.s.Now()); errors.Is(err, store.ErrNotFound) {
		return nil, newError(connect.CodeNotFound, CodeOAuthClientNotFound, fmt.Errorf("%s: no OAuth client %q", CodeOAuthClientNotFound, req.Msg.Id))
	} else if err != nil {
		return nil, apiError(err)
	}
	return connect.NewResponse(&pncpkiv1.RevokeOAuthClientResponse{}), nil
}

type audit struct{ s *Server }

func (h *audit) VerifyAudit(ctx context.Context, _ *connect.Request[pncpkiv1.VerifyAuditRequest]) (*connect.Response[pncpkiv1.VerifyAuditResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	resp := &pncpkiv1.VerifyAuditResponse{Intact: true}
	seq, head, err := store.WalkAudit(ctx, h.s.Store, 0, func(*store.AuditEntry) { resp.Entries++ })
	switch {
	case store.Unavailable(err):
		return nil, apiError(err)
	case err != nil:
		resp.Intact, resp.Error = false, err.Error()
	}
	resp.HeadSeq, resp.HeadHash = seq, head
	return connect.NewResponse(resp), nil
}

func (h *audit) ListAudit(ctx context.Context, req *connect.Request[pncpkiv1.ListAuditRequest]) (*connect.Response[pncpkiv1.ListAuditResponse], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	m := req.Msg
	if len(m.Actions) > 32 {
		return nil, newError(connect.CodeInvalidArgument, ca.CodeBadRequest, errors.New("request.invalid: at most 32 actions"))
	}
	var es []*store.AuditEntry
	var err error
	if len(m.Actions) > 0 {
		es, err = h.s.Store.AuditActions(ctx, m.Actions, m.After, int(m.PageSize))
	} else {
		es, err = h.s.Store.AuditLog(ctx, m.After, int(m.PageSize))
	}
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListAuditResponse{}
	if resp.HeadSeq, _, err = h.s.Store.AuditHead(ctx); err != nil {
		return nil, apiError(err)
	}
	for _, e := range es {
		resp.Entries = append(resp.Entries, &pncpkiv1.AuditEntry{Seq: e.Seq, Time: timestamppb.New(e.Time), Actor: e.Actor,
			Action: e.Action, Object: e.Object, Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash})
	}
	return connect.NewResponse(resp), nil
}
