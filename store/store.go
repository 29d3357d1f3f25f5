// Package store is the persistence of pncpki behind one interface: tenants,
// certificate authorities, issued certificates, revocations, serials and CRL
// numbers. Implementations (SQLite in store/sqlite, PostgreSQL later) must
// pass the conformance suite in store/storetest.
package store

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/pncpki/pncpki/policies"
)

// Errors every implementation returns (wrapped) so callers can test with
// errors.Is.
var (
	ErrNotFound        = errors.New("not found")
	ErrExists          = errors.New("already exists")
	ErrDuplicateSerial = errors.New("serial number already used by this issuer")
	ErrAlreadyRevoked  = errors.New("certificate already revoked")
)

// CA is a certificate authority that pncpki holds the key of. A CA whose
// certificate is still being signed by an outside root (CSR out, certificate
// not yet in) has an empty CertDER and is pending.
type CA struct {
	Name      string // stable, unique, e.g. "cpo-sub2"
	Profile   string // profile name, e.g. "iso15118-2/cpo-sub2"
	Parent    string // name of the issuing CA if pncpki holds it, else ""
	CertDER   []byte
	KeyURI    string // softkms:path=... or pkcs11:...
	CreatedAt time.Time
	// IssueFrom, when set, is when the CA takes over issuance from the
	// CAs of its profile that came before it (rollover): pncpki picks it
	// for its profile from then on, while the older ones keep answering
	// OCSP and publishing CRLs. Zero: from its creation.
	IssueFrom time.Time
}

// Pending reports whether the CA still waits for its certificate.
func (c *CA) Pending() bool { return len(c.CertDER) == 0 }

// OfflineKeyURI is the key URI of a CA whose key is on an offline
// machine (pncctl init --root-dir): its certificate is here, its key
// never is.
const OfflineKeyURI = "offline:"

// ExternalKeyURI prefixes the key URI of an external CA: an upstream
// ecosystem's CA whose certificates pncpki forwarded CSRs for and
// recorded. Its key is not pncpki's; the rest of the URI names the
// upstream.
const ExternalKeyURI = "external:"

// External reports whether the CA is an upstream's, recorded only as the
// issuer of the certificates it signed for pncpki's tenants.
func (c *CA) External() bool { return strings.HasPrefix(c.KeyURI, ExternalKeyURI) }

// Certificate is an issued certificate and its revocation state.
type Certificate struct {
	Issuer     string // CA name
	Serial     string // lower-case hex without leading zeros
	Profile    string
	Tenant     string
	CommonName string
	NotBefore  time.Time
	NotAfter   time.Time
	DER        []byte
	CreatedAt  time.Time
	RevokedAt  time.Time // zero while not revoked
	Reason     int       // RFC 5280 CRLReason, valid when RevokedAt is set
	// Installation, for a contract certificate issued for a vehicle's
	// installation or update, goes into the issuance's audit entry; it is
	// not kept with the certificate.
	Installation *Installation
}

// Installation is what the audit entry of a contract certificate says of
// the installation it was issued for: the station that asked, and the
// exiResponse limit its answer was measured against and where that limit
// came from (the station's own, the data directory's, the OCPP version's).
type Installation struct {
	Station          string `json:"station,omitempty"`
	EXIResponseLimit int    `json:"exi_response_limit"`
	LimitSource      string `json:"limit_source,omitempty"`
}

// Revoked reports whether the certificate has been revoked.
func (c *Certificate) Revoked() bool { return !c.RevokedAt.IsZero() }

// Status is "revoked", "expired" or "valid" at time now.
func (c *Certificate) Status(now time.Time) string {
	switch {
	case c.Revoked():
		return "revoked"
	case now.After(c.NotAfter):
		return "expired"
	default:
		return "valid"
	}
}

// CertStatus is a certificate's revocation state, as OCSP pre-signing
// reads it in bulk.
type CertStatus struct {
	Serial    string
	Profile   string
	NotAfter  time.Time
	RevokedAt time.Time // zero while not revoked
	Reason    int
}

// Revocation is one entry of the store's revocation feed.
type Revocation struct {
	Seq    int64
	Issuer string
	Serial string
}

// Filter selects certificates. Zero fields do not filter.
type Filter struct {
	Issuer     string
	Serial     string
	Profile    string
	Tenant     string
	CommonName string // exact: an EMAID finds its contract certificates
	// CommonNames selects the CNs equal to any of these (at most
	// MaxCommonNames).
	CommonNames []string
	// CommonNamePrefix selects the CNs that start with it (bytewise, through
	// the CN index).
	CommonNamePrefix string
	Revoked          *bool
	ExpiringBefore   time.Time // notAfter before this
	ExpiringAfter    time.Time // notAfter at or after this
	Limit            int       // at most MaxPage; 0 means MaxPage.
	Offset           int
	// ByExpiry lists the soonest notAfter first (then issuer and serial),
	// not the newest first: what an expiry window wants, and what its
	// index gives in order where sorting a wide window by age would read
	// every certificate in it.
	ByExpiry bool
	// After continues a listing after this certificate (keyset paging:
	// unlike Offset, a deep page costs what the first one does).
	After *Cursor
}

// OrderBy is the filter's ORDER BY clause for the SQL stores.
func (f Filter) OrderBy() string {
	if f.ByExpiry {
		return " ORDER BY not_after, issuer, serial"
	}
	return " ORDER BY created_at DESC, issuer, serial"
}

// ProfileCount is how many certificates of a profile are valid, expired
// (unrevoked, past notAfter) and revoked.
type ProfileCount struct {
	Profile string `json:"profile"`
	Valid   int64  `json:"valid"`
	Expired int64  `json:"expired"`
	Revoked int64  `json:"revoked"`
}

// HistogramColumn is the time a Histogram buckets by.
type HistogramColumn string

// The columns a Histogram buckets by.
const (
	HistogramExpiry   HistogramColumn = "not_after"
	HistogramIssuance HistogramColumn = "created_at"
)

// Cursor is a position in a listing's order (newest first, or soonest
// expiry first with ByExpiry; then issuer and serial): the last
// certificate of the previous page. Time is its created_at or not_after.
type Cursor struct {
	Time           time.Time
	Issuer, Serial string
}

// MaxCommonNames bounds Filter.CommonNames, as SQL parameters.
const MaxCommonNames = 4096

// MaxPage bounds one listing.
const MaxPage = 1000

// PageLimit turns a requested page size into the one to use: MaxPage for
// zero, negative or larger values.
func PageLimit(n int) int {
	if n <= 0 || n > MaxPage {
		return MaxPage
	}
	return n
}

// Where renders the filter's conditions as an SQL WHERE clause ("" when it
// selects everything) with its arguments, for the SQL stores:
// placeholder(i) writes the i-th (1-based) parameter, timeArg converts a
// time to the store's column type, and bytewise is the CN column compared
// bytewise (a collation clause where the database's default is not).
// Limit and Offset are left to the caller.
func (f Filter) Where(placeholder func(i int) string, timeArg func(time.Time) any, bytewise string) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, cond+placeholder(len(args)))
	}
	p := func(v any) string {
		args = append(args, v)
		return placeholder(len(args))
	}
	if f.CommonNamePrefix != "" {
		// Every CN that starts with the prefix sorts between it and it
		// followed by the largest code point.
		add(bytewise+" >= ", f.CommonNamePrefix)
		add(bytewise+" < ", f.CommonNamePrefix+"\U0010FFFF")
	}
	if !f.ExpiringAfter.IsZero() {
		add("not_after >= ", timeArg(f.ExpiringAfter))
	}
	if c := f.After; c != nil {
		col, after := "created_at", " < "
		if f.ByExpiry {
			col, after = "not_after", " > "
		}
		t := timeArg(c.Time)
		conds = append(conds, "("+col+after+p(t)+" OR "+col+" = "+p(t)+" AND (issuer > "+p(c.Issuer)+" OR issuer = "+p(c.Issuer)+" AND serial > "+p(c.Serial)+"))")
	}
	if len(f.CommonNames) > 0 {
		ps := make([]string, len(f.CommonNames))
		for i, cn := range f.CommonNames {
			ps[i] = p(cn)
		}
		conds = append(conds, "common_name IN ("+strings.Join(ps, ", ")+")")
	}
	for _, c := range []struct{ col, v string }{{"issuer", f.Issuer}, {"serial", f.Serial}, {"profile", f.Profile}, {"tenant", f.Tenant}, {"common_name", f.CommonName}} {
		if c.v != "" {
			add(c.col+" = ", c.v)
		}
	}
	if f.Revoked != nil {
		if *f.Revoked {
			conds = append(conds, "revoked_at IS NOT NULL")
		} else {
			conds = append(conds, "revoked_at IS NULL")
		}
	}
	if !f.ExpiringBefore.IsZero() {
		add("not_after < ", timeArg(f.ExpiringBefore))
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Store is the persistence interface. All methods are safe for concurrent
// use. A method that writes returns only after the write is durable, and
// every change (tenant, CA, certificate, revocation) is appended to the
// audit log in the same transaction, under the actor of its context
// (WithActor).
type Store interface {
	CreateTenant(ctx context.Context, t *policies.Tenant) error
	Tenant(ctx context.Context, name string) (*policies.Tenant, error)
	Tenants(ctx context.Context) ([]*policies.Tenant, error)

	CreateCA(ctx context.Context, ca *CA) error
	// SetCACertificate installs the certificate of a pending CA.
	SetCACertificate(ctx context.Context, name string, der []byte) error
	// SetCAKey records where a CA's key is now: OfflineKeyURI once it
	// went to an offline machine.
	SetCAKey(ctx context.Context, name, keyURI string) error
	CA(ctx context.Context, name string) (*CA, error)
	CAs(ctx context.Context) ([]*CA, error)

	// PutCertificate records an issued certificate. The pair (Issuer,
	// Serial) is unique: a second one fails with ErrDuplicateSerial.
	PutCertificate(ctx context.Context, c *Certificate) error
	Certificate(ctx context.Context, issuer, serial string) (*Certificate, error)
	// CountCertificates counts what Certificates would list without its
	// page bounds.
	CountCertificates(ctx context.Context, f Filter) (int64, error)
	// ProfileCounts counts the certificates of tenant ("": all) per
	// profile by their status at at. It reads every certificate of the
	// scope: callers cache it (api.Server does).
	ProfileCounts(ctx context.Context, tenant string, at time.Time) ([]ProfileCount, error)
	// Histogram counts what f selects per issuer in n buckets of width
	// from from, by the time col says (HistogramExpiry: notAfter,
	// HistogramIssuance: when stored).
	Histogram(ctx context.Context, f Filter, col HistogramColumn, from time.Time, width time.Duration, n int) (map[string][]int64, error)
	Certificates(ctx context.Context, f Filter) ([]*Certificate, error)
	// Revoke marks a certificate revoked and returns it.
	Revoke(ctx context.Context, issuer, serial string, reason int, at time.Time) (*Certificate, error)
	// Revoked returns the revoked certificates of an issuer that are not
	// yet expired at notAfterFrom (for CRLs).
	Revoked(ctx context.Context, issuer string, notAfterFrom time.Time) ([]*Certificate, error)
	// Live returns up to limit certificates of issuer that have not
	// expired at at, with a serial after the given one in serial order
	// (keyset paging: pass the last serial of a page to get the next),
	// with what OCSP needs to answer for them.
	Live(ctx context.Context, issuer string, at time.Time, after string, limit int) ([]CertStatus, error)
	// Revocations returns the revocations after sequence number after, in
	// order, at most limit: every process sharing the store follows them
	// to drop cached OCSP answers, even without Redis.
	Revocations(ctx context.Context, after int64, limit int) ([]Revocation, error)
	// RevocationCursor returns the sequence number of the latest
	// revocation (0 when there is none).
	RevocationCursor(ctx context.Context) (int64, error)
	// AppendAudit appends entries that no other store method writes (token
	// issuance, denied requests); it fills their Seq and hashes.
	AppendAudit(ctx context.Context, entries ...*AuditEntry) error
	// AuditLog returns up to limit entries after sequence number after.
	AuditLog(ctx context.Context, after int64, limit int) ([]*AuditEntry, error)
	// AuditActions is AuditLog for the entries whose action is one of
	// actions (token.create, ...): read through an index, not the whole
	// log.
	AuditActions(ctx context.Context, actions []string, after int64, limit int) ([]*AuditEntry, error)
	// AuditHead returns the last entry's sequence number and hash (0 and
	// nil for an empty log).
	AuditHead(ctx context.Context) (int64, []byte, error)
	// NextCRLNumber increments and returns the CRL number of an issuer; it
	// never returns the same number twice for the same issuer.
	NextCRLNumber(ctx context.Context, issuer string) (int64, error)

	Stations
	Contracts
	ProvisioningCertificates
	OEMSubCAs
	ContractDeposits
	Installations
	OAuthClients
	TrustAnchors
	EventEndpoints

	// RevokeToken records that the API token with this ID (its jti) is no
	// longer valid; kept until expiresAt, when the token dies anyway.
	RevokeToken(ctx context.Context, id string, expiresAt time.Time) error
	// RevokedTokens returns the IDs of revoked tokens that expire after at.
	RevokedTokens(ctx context.Context, at time.Time) ([]string, error)

	// PutImportedCRL keeps der as the current CRL of issuer, an offline
	// CA that signed it elsewhere (pncctl crl import), with its audit
	// entry: every replica on the store serves it.
	PutImportedCRL(ctx context.Context, issuer string, der []byte, audit *AuditEntry) error
	// ImportedCRL returns the CRL last imported for issuer; ErrNotFound
	// when there is none.
	ImportedCRL(ctx context.Context, issuer string) ([]byte, error)

	Close() error
}

// Unavailable reports whether err says the store cannot be reached (a
// refused, reset or timed-out connection), rather than that a request was
// wrong: the API answers 503 for it, so that clients retry.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// A driver's word that the connection failed before the request was
	// sent (pgconn: a closed connection).
	var retry interface{ SafeToRetry() bool }
	if errors.As(err, &retry) && retry.SafeToRetry() {
		return true
	}
	// A database's own word that it is going away or not there yet
	// (PostgreSQL's SQLSTATE, which its driver's errors carry): class 08,
	// connection exception; 57P01 to 57P03, shut down, crashed, starting.
	var se interface{ SQLState() string }
	if errors.As(err, &se) {
		code := se.SQLState()
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03" || code == "53300"
	}
	return false
}
