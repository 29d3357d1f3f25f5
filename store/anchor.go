package store

import (
	"context"
	"net/url"
	"time"
)

// TrustAnchor is a root certificate an administrator added to the trust
// anchors while pncd runs (the root certificate pool's add), or that pncd
// took over from an upstream ecosystem. Configured anchors (pncpki's own
// roots, --trust-anchors files) are not stored here.
type TrustAnchor struct {
	Use     string // an OCPP InstallCertificateUse name
	SHA256  string // fingerprint of DER, lower-case hex
	DER     []byte
	Source  string // who added it: "admin" or the upstream's URL
	AddedAt time.Time
}

// Audit actions of stored trust anchors.
const (
	AuditTrustAnchorAdd    = "trust_anchor.add"
	AuditTrustAnchorRemove = "trust_anchor.remove"
)

// TrustAnchors holds the stored trust anchors, one per use and fingerprint.
type TrustAnchors interface {
	// AddTrustAnchor stores an anchor; the same use and fingerprint again
	// is ErrExists.
	AddTrustAnchor(ctx context.Context, a *TrustAnchor) error
	// ListTrustAnchors returns every stored anchor by use and fingerprint.
	ListTrustAnchors(ctx context.Context) ([]*TrustAnchor, error)
	// RemoveTrustAnchor deletes one; an unknown one is ErrNotFound.
	RemoveTrustAnchor(ctx context.Context, use, sha256 string) error
}

// TrustAnchorAudit records an added or removed anchor.
func TrustAnchorAudit(ctx context.Context, action string, a *TrustAnchor) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: action, Object: a.SHA256, Detail: detail("use", a.Use, "source", a.Source)}
}

// EventEndpoint is a tenant's webhook subscription (OPNC's event
// endpoints): events of the enabled types within its scope are posted to
// URL, signed with HMAC-SHA256 under Secret.
type EventEndpoint struct {
	ID          string
	Tenant      string // "" for an administrator's endpoint
	URL         string
	Description string
	Events      []string // enabled event types
	WMIs        []string // an OEM's vehicles (PCID prefixes); empty: every vehicle the tenant may see
	Secret      string
	Enabled     bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Audit actions of event endpoints.
const (
	AuditEventEndpointPut    = "event_endpoint.put"
	AuditEventEndpointDelete = "event_endpoint.delete"
)

// EventEndpoints holds the webhook subscriptions.
type EventEndpoints interface {
	// PutEventEndpoint inserts an endpoint or replaces the one with its
	// ID; one of another tenant is ErrExists.
	PutEventEndpoint(ctx context.Context, e *EventEndpoint) error
	EventEndpoint(ctx context.Context, id string) (*EventEndpoint, error)
	// ListEventEndpoints returns a tenant's endpoints (all: ""), by ID.
	ListEventEndpoints(ctx context.Context, tenant string) ([]*EventEndpoint, error)
	DeleteEventEndpoint(ctx context.Context, id string) error
}

// EventEndpointAudit records a stored or removed endpoint; the secret
// stays out of the log.
func EventEndpointAudit(ctx context.Context, action string, e *EventEndpoint) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: action, Object: e.ID, Detail: detail("tenant", e.Tenant, "url", redactURL(e.URL), "events", e.Events)}
}

// redactURL drops credentials and the query, where webhook URLs carry
// tokens.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
