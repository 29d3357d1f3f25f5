package store

import (
	"context"
	"time"
)

// Station is a charging station registered with a CPO tenant. The OCPP
// bridge checks a station's CSRs against it: a station gets certificates
// only for itself, under its own tenant.
// Its JSON form (pncctl -o json) has the API's snake_case keys.
type Station struct {
	// ID is the OCPP identity: the last path segment of the station's
	// WebSocket URL and the Basic auth user name.
	ID     string `json:"id"`
	Tenant string `json:"tenant"` // owning CPO tenant
	// SerialNumber is the charge box serial number, the CN of its OCPP
	// charging-station certificate (OCPP 2.0.1 A00.FR.405).
	SerialNumber string `json:"serial_number,omitempty"`
	// EVSEIDs and SECCIDs are the identifiers a SECC certificate of this
	// station may carry as CN (normalised, without separators).
	EVSEIDs []string `json:"evse_ids,omitempty"`
	SECCIDs []string `json:"secc_ids,omitempty"`
	// OCPPVersion is "1.6", "2.0.1" or "2.1".
	OCPPVersion string `json:"ocpp_version"`
	// LastSeen is when the station last spoke through pncd's OCPP proxy
	// (kept at most every few minutes); zero if it never did. The
	// registration does not set it.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// EXIResponseLimit is the longest exiResponse (base64 characters) the
	// station takes: registered by its operator or reported by the
	// station (OCPPCommCtrlr.FieldLength); 0 leaves the default of its
	// OCPP version or of the data directory.
	EXIResponseLimit int       `json:"exi_response_limit,omitempty"`
	CreatedAt        time.Time `json:"created_at,omitzero"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
}

// Audit actions of the station registry and the OCPP bridge.
const (
	AuditStationPut    = "station.put"
	AuditStationDelete = "station.delete"
)

// StationAudit records a registered or changed station.
func StationAudit(ctx context.Context, s *Station) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: AuditStationPut, Object: s.ID,
		Detail: detail("tenant", s.Tenant, "serial_number", s.SerialNumber, "evse_ids", s.EVSEIDs, "secc_ids", s.SECCIDs, "ocpp_version", s.OCPPVersion, "exi_response_limit", s.EXIResponseLimit)}
}

// StationDeleteAudit records a removed station.
func StationDeleteAudit(ctx context.Context, id string) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: AuditStationDelete, Object: id, Detail: "{}"}
}

// StationCall is a request pncpki sent a station (CertificateSigned,
// InstallCertificate, TriggerMessage, ...) and has no answer to yet: it is
// sent again when the station reconnects, to whichever replica.
type StationCall struct {
	Station string
	ID      string // OCPP-J message ID
	Action  string
	Dialect string // payload dialect ("1.6", "2.0.1", "2.1")
	Payload []byte // JSON
	Created time.Time
}

// MaxStationCalls bounds the unanswered calls kept per station; past it the
// oldest is dropped (the station's own retries recover).
const MaxStationCalls = 16

// InstalledCertificate is a certificate a station reported holding
// (GetInstalledCertificateIds) or accepted from pncpki, by its OCPP
// CertificateHashData (lowercase hex, serial without leading zeros).
type InstalledCertificate struct {
	Type           string // OCPP certificate type, e.g. V2GRootCertificate
	HashAlgorithm  string
	IssuerNameHash string
	IssuerKeyHash  string
	SerialNumber   string
	SeenAt         time.Time
}

// StationCallResult is what a station's answer to a call changes.
type StationCallResult struct {
	// ReplaceTypes are the certificate types whose records Installed
	// replaces (a GetInstalledCertificateIds answer); others are kept.
	ReplaceTypes []string
	Installed    []InstalledCertificate
	// Removed are certificates the station no longer holds, by issuer key
	// hash and serial number.
	Removed []InstalledCertificate
	Audit   []*AuditEntry
}

// Stations is the station registry of a store.
type Stations interface {
	// PutStation registers a station or replaces its registration; a
	// station never moves to another tenant (ErrExists).
	PutStation(ctx context.Context, s *Station) error
	Station(ctx context.Context, id string) (*Station, error)
	// ListStations returns the stations of tenant (all when empty), by ID.
	ListStations(ctx context.Context, tenant string) ([]*Station, error)
	// DeleteStation removes a station with its calls and certificates.
	DeleteStation(ctx context.Context, id string) error

	// PutStationCall records an unanswered call (at most MaxStationCalls
	// per station, the oldest dropped).
	PutStationCall(ctx context.Context, c *StationCall) error
	// StationCall returns one unanswered call (ErrNotFound when it is not
	// pncpki's or was answered already).
	StationCall(ctx context.Context, station, id string) (*StationCall, error)
	// TouchStation records that the station spoke at at (not audited: it
	// changes no registration). An unknown station is no error.
	TouchStation(ctx context.Context, id string, at time.Time) error
	// StationCalls returns a station's unanswered calls, oldest first.
	StationCalls(ctx context.Context, station string) ([]*StationCall, error)
	// FinishStationCall records, in one transaction, what a station's
	// answer changed: the call (id; "" for a call the store did not keep)
	// is no longer pending, the station's installed certificates change as
	// r says, and r's audit entries are appended.
	FinishStationCall(ctx context.Context, station, id string, r StationCallResult) error
	InstalledCertificates(ctx context.Context, station string) ([]InstalledCertificate, error)
}
