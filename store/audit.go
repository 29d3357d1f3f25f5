package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pncpki/pncpki/policies"
)

// AuditEntry is one record of the append-only audit log. Each entry's Hash
// covers its fields and the previous entry's hash, so the log is a chain: a
// changed or removed entry breaks every hash after it.
type AuditEntry struct {
	Seq      int64
	Time     time.Time // microsecond precision
	Actor    string    // who: "pncctl:alice", a tenant, "pncd", ...
	Action   string    // e.g. certificate.issue, certificate.revoke, tenant.create
	Object   string    // e.g. cpo-sub2/4f1a..., a tenant or CA name
	Detail   string    // JSON object with the particulars
	PrevHash []byte
	Hash     []byte
}

// Audit actions written by the stores.
const (
	AuditTenantCreate      = "tenant.create"
	AuditCACreate          = "ca.create"
	AuditCACertificate     = "ca.certificate"
	AuditCAKey             = "ca.key"
	AuditCertificateIssue  = "certificate.issue"
	AuditCertificateRevoke = "certificate.revoke"
	AuditTokenRevoke       = "token.revoke"
)

type actorKey struct{}

// WithActor records who acts in ctx; every change a store makes with that
// context is audited under this name.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor of ctx, "system" when none was set.
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "system"
}

// AuditHash computes an entry's hash from the previous hash and its fields:
// SHA-256 over prev, seq, time (µs) and the length-prefixed strings.
func AuditHash(prev []byte, e *AuditEntry) []byte {
	h := sha256.New()
	b := make([]byte, 0, 4+len(prev)+16+16+len(e.Actor)+len(e.Action)+len(e.Object)+len(e.Detail))
	b = binary.BigEndian.AppendUint32(b, uint32(len(prev)))
	b = append(b, prev...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	for _, s := range []string{e.Actor, e.Action, e.Object, e.Detail} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	h.Write(b)
	return h.Sum(nil)
}

// Chain fills e's Seq, PrevHash and Hash to follow the entry with sequence
// number seq and hash prev (0 and nil for the first), and truncates its
// time to what the stores keep.
func Chain(e *AuditEntry, seq int64, prev []byte) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Seq, e.PrevHash = seq+1, prev
	e.Hash = AuditHash(prev, e)
}

// VerifyAudit checks that entries continue the chain after (seq, prev) and
// that every hash is right. It returns the last sequence number and hash,
// to verify the next page with.
func VerifyAudit(seq int64, prev []byte, entries []*AuditEntry) (int64, []byte, error) {
	for _, e := range entries {
		if e.Seq != seq+1 {
			return seq, prev, fmt.Errorf("audit log: entry %d follows %d: entries are missing", e.Seq, seq)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			return seq, prev, fmt.Errorf("audit log: entry %d does not carry the hash of entry %d", e.Seq, seq)
		}
		if !bytes.Equal(AuditHash(prev, e), e.Hash) {
			return seq, prev, fmt.Errorf("audit log: entry %d was altered (hash mismatch)", e.Seq)
		}
		seq, prev = e.Seq, e.Hash
	}
	return seq, prev, nil
}

// WalkAudit reads s's whole audit log, page entries at a time, checks
// every link with VerifyAudit and hands each entry to visit (which may be
// nil). It returns the last sequence number and hash.
func WalkAudit(ctx context.Context, s Store, page int, visit func(*AuditEntry)) (int64, []byte, error) {
	page = PageLimit(page) // the stores' own bound: a shorter page ends the log
	var seq int64
	var prev []byte
	for {
		entries, err := s.AuditLog(ctx, seq, page)
		if err != nil {
			return seq, prev, err
		}
		if seq, prev, err = VerifyAudit(seq, prev, entries); err != nil {
			return seq, prev, err
		}
		if visit != nil {
			for _, e := range entries {
				visit(e)
			}
		}
		if len(entries) < page {
			return seq, prev, nil
		}
	}
}

func detail(kv ...any) string {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// RedactKeyURI drops a key URI's query, where a PIN may be.
func RedactKeyURI(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?..."
	}
	return u
}

// The entries the stores write for their changes, shared by every
// implementation so that they audit alike.

// TenantAudit records a created tenant.
func TenantAudit(ctx context.Context, t *policies.Tenant) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: AuditTenantCreate, Object: t.Name,
		Detail: detail("kind", t.Kind, "organization", t.Organization, "operator_ids", t.OperatorIDs, "provider_ids", t.ProviderIDs, "dns_domains", t.DNSDomains)}
}

// CAAudit records a created CA.
func CAAudit(ctx context.Context, ca *CA) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: AuditCACreate, Object: ca.Name,
		Detail: detail("profile", ca.Profile, "parent", ca.Parent, "key", RedactKeyURI(ca.KeyURI), "pending", ca.Pending(), "certificate_sha256", fingerprint(ca.CertDER), "issue_from", issueFrom(ca.IssueFrom))}
}

// issueFrom is a CA's switch time for its audit entry: "" when it issues
// from its creation.
func issueFrom(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// CAKeyAudit records where a CA's key went.
func CAKeyAudit(ctx context.Context, name, keyURI string) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: AuditCAKey, Object: name, Detail: detail("key", RedactKeyURI(keyURI))}
}

// CACertificateAudit records the certificate installed for a pending CA.
func CACertificateAudit(ctx context.Context, name string, der []byte) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: AuditCACertificate, Object: name, Detail: detail("certificate_sha256", fingerprint(der))}
}

// issueDetail is IssueAudit's detail; a struct marshals faster than a map
// on the issuance path.
type issueDetail struct {
	Profile      string        `json:"profile"`
	Tenant       string        `json:"tenant"`
	CommonName   string        `json:"common_name"`
	NotAfter     time.Time     `json:"not_after"`
	Fingerprint  string        `json:"certificate_sha256"`
	Installation *Installation `json:"installation,omitempty"`
}

// IssueAudit records an issued certificate.
func IssueAudit(actor string, c *Certificate) *AuditEntry {
	b, _ := json.Marshal(issueDetail{c.Profile, c.Tenant, c.CommonName, c.NotAfter, fingerprint(c.DER), c.Installation})
	return &AuditEntry{Actor: actor, Action: AuditCertificateIssue, Object: c.Issuer + "/" + c.Serial, Detail: string(b)}
}

// AuditTokenCreate records a minted API token: tokens are audited, never
// stored, and 'pncctl token list' reads them back from the log.
const AuditTokenCreate = "token.create"

// TokenDetail is the detail of a token.create entry.
type TokenDetail struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Role      string    `json:"role"`
	TTL       string    `json:"ttl"`
	ExpiresAt time.Time `json:"expires_at"`
}

// TokenAudit records a token minted for subject.
func TokenAudit(ctx context.Context, subject string, d TokenDetail) *AuditEntry {
	b, _ := json.Marshal(d)
	return &AuditEntry{Actor: ActorFrom(ctx), Action: AuditTokenCreate, Object: subject, Detail: string(b)}
}

// RevokeAudit records a revocation.
func RevokeAudit(ctx context.Context, issuer, serial string, reason int, at time.Time) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: AuditCertificateRevoke, Object: issuer + "/" + serial,
		Detail: detail("reason", reason, "revoked_at", at.UTC())}
}

func fingerprint(der []byte) string {
	if len(der) == 0 {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
