package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Config is the data directory's settings, in DIR/config.json, so that
// pncd and pncctl agree on them.
type Config struct {
	// PublicURL is the base URL relying parties reach pncd at: issued
	// certificates carry PublicURL/ocsp (AIA) and PublicURL/crl/{ca}.crl.
	PublicURL string `json:"public_url"`
	// EXIResponseLimit is the exiResponse limit, in base64 characters,
	// the hierarchy is planned for (pncctl --exi-limit): setup refuses a
	// CA whose installation answers would exceed it, and pncd applies it
	// to OCPP 2.0.1 and 1.6 stations that have no limit of their own.
	// 0 is OCPP 2.0.1's 5,600.
	EXIResponseLimit int `json:"exi_response_limit,omitempty"`
	// APIClientDays bounds the lifetime of api/client certificates (a
	// credential that acts for a tenant), 1 to 365; 0 is the profile's
	// 30 days.
	APIClientDays int `json:"api_client_days,omitempty"`
	// AuditKey is the key URI (softkms: or pkcs11:) of the key that signs
	// audit checkpoints; empty is DefaultAuditKey, made on first use.
	AuditKey string `json:"audit_key,omitempty"`
	// Store is the PostgreSQL URL of the store, without its password,
	// when the directory's store is not its SQLite file: pncd and pncctl
	// given no store URL use it (the password from PGPASSWORD or
	// ~/.pgpass), so that a directory on PostgreSQL is not mistaken for an
	// empty SQLite one.
	Store string `json:"store,omitempty"`
}

// DefaultAuditKey is the audit checkpoint key's file, relative to the
// data directory.
const DefaultAuditKey = "softkms:path=keys/audit.key"

// EXIResponseLimit's default, OCPP 2.0.1's schema limit, and its bounds:
// no installation answer is shorter than 1,000 characters (stations that
// take less than the schema's exist: they report it in FieldLength), and
// 2.1's exiResponse maximum is the ceiling.
const (
	DefaultEXIResponseLimit = 5600
	MinEXIResponseLimit     = 1000
	MaxEXIResponseLimit     = 17000
)

// EXILimit is the planned exiResponse limit (EXIResponseLimit or 5,600).
func (c Config) EXILimit() int {
	if c.EXIResponseLimit == 0 {
		return DefaultEXIResponseLimit
	}
	return c.EXIResponseLimit
}

// HTTPSWarning is what pncd and pncctl say of an https public URL, empty
// for an http one. Issued certificates carry it in their CRL distribution
// points and OCSP URLs, and relying parties are expected to fetch status
// over plain HTTP: RFC 5280 4.2.1.13 names HTTP and LDAP URIs for CRLs
// (zlint warns otherwise: w_distribution_point_missing_ldap_or_uri), and
// a station may be unable to check the TLS certificate of the server that
// tells it whether certificates are revoked.
func (c Config) HTTPSWarning() string {
	if !strings.HasPrefix(strings.ToLower(c.PublicURL), "https://") {
		return ""
	}
	return "the public URL " + c.PublicURL + " is https: relying parties fetch CRLs and OCSP answers over plain http (RFC 5280 4.2.1.13); make pncd reachable over http at that host and prefer an http public URL"
}

// DefaultPublicURL matches pncd's default listen address, so a demo works
// out of the box; production sets its own with --public-url.
const DefaultPublicURL = "http://127.0.0.1:8080"

const configFile = "config.json"

// ReadConfig reads DIR/config.json; a missing file gives the defaults.
func ReadConfig(dir string) (Config, error) {
	c := Config{PublicURL: DefaultPublicURL}
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	} else if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", filepath.Join(dir, configFile), err)
	}
	return c, c.Validate()
}

// Validate checks the settings.
func (c *Config) Validate() error {
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("public URL %q: want http(s)://host[:port][/path]", c.PublicURL)
	}
	if n := c.APIClientDays; n < 0 || n > 365 {
		return fmt.Errorf("api_client_days %d: want 1 to 365, or 0 for 30", n)
	}
	if n := c.EXIResponseLimit; n != 0 && (n < MinEXIResponseLimit || n > MaxEXIResponseLimit) {
		return fmt.Errorf("exiResponse limit %d: want %d to %d base64 characters", n, MinEXIResponseLimit, MaxEXIResponseLimit)
	}
	return nil
}

// WriteConfig writes DIR/config.json.
func WriteConfig(dir string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, configFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, configFile))
}
