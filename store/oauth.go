package store

import (
	"context"
	"time"
)

// OAuthClient is a client of the OAuth2 client-credentials token endpoint
// (the Open Plug&Charge protocols' way in): it gets tokens for its tenant
// and role. Only the SHA-256 of its secret is kept; the secret is random
// and long, so no slow hash is needed.
type OAuthClient struct {
	ID           string
	Tenant       string // "" for an administrator client
	Role         string
	SecretSHA256 []byte
	CreatedAt    time.Time
	RevokedAt    time.Time // zero while usable
}

// Audit actions of OAuth clients.
const (
	AuditOAuthClientCreate = "oauth_client.create"
	AuditOAuthClientRevoke = "oauth_client.revoke"
)

// OAuthClients is the OAuth client registry of a store.
type OAuthClients interface {
	// CreateOAuthClient adds a client; an existing ID is ErrExists.
	CreateOAuthClient(ctx context.Context, c *OAuthClient) error
	OAuthClient(ctx context.Context, id string) (*OAuthClient, error)
	// ListOAuthClients returns a tenant's clients (all: ""), by ID.
	ListOAuthClients(ctx context.Context, tenant string) ([]*OAuthClient, error)
	// RevokeOAuthClient marks a client revoked.
	RevokeOAuthClient(ctx context.Context, id string, at time.Time) error
}

// OAuthClientAudit records a created or revoked client.
func OAuthClientAudit(ctx context.Context, action string, c *OAuthClient) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: action, Object: c.ID, Detail: detail("tenant", c.Tenant, "role", c.Role)}
}
