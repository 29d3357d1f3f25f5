// Package datadir opens a pncpki data directory (SQLite database and file
// keys) and creates its CA hierarchy on first use. pncd and pncctl share
// it, so both see the same layout:
//
//	DIR/pncpki.db      SQLite store
//	DIR/config.json    settings shared by pncd and pncctl (public URL)
//	DIR/keys/*.key     CA and CPS keys, PEM, mode 0600
//	DIR/ocsp/          delegated OCSP responder certificates and keys
package datadir

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/postgres"
	"github.com/pncpki/pncpki/store/sqlite"
)

// Dir is an open data directory.
type Dir struct {
	Path   string
	Config Config
	Store  store.Store
	CA     *ca.Service
}

// Open opens (creating if needed) the data directory at path with its
// SQLite store. An empty opts.PublicURL takes the directory's configured
// one.
func Open(ctx context.Context, path string, opts ca.Options) (*Dir, error) {
	return OpenWith(ctx, path, "", opts)
}

// OpenWith is Open with the store at storeURL: a postgres:// URL selects
// PostgreSQL (shared by replicas; keys and settings stay in the data
// directory), empty selects DIR/pncpki.db.
func OpenWith(ctx context.Context, path, storeURL string, opts ca.Options) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ReadConfig(abs)
	if err != nil {
		return nil, err
	}
	if opts.PublicURL == "" {
		opts.PublicURL = cfg.PublicURL
	}
	if cfg.APIClientDays > 0 && opts.MaxValidity == nil {
		opts.MaxValidity = map[string]policies.Period{policies.APIClient: {Days: cfg.APIClientDays}}
	}
	switch {
	case storeURL == "" && cfg.Store != "":
		storeURL = cfg.Store // the directory remembers its store
	case storeURL != "" && redactStore(storeURL) != cfg.Store:
		cfg.Store = redactStore(storeURL)
		if err := WriteConfig(abs, cfg); err != nil {
			return nil, fmt.Errorf("remember the store: %w", err)
		}
	}
	var st store.Store
	switch {
	case storeURL == "":
		st, err = sqlite.Open(filepath.Join(abs, "pncpki.db"))
	case strings.HasPrefix(storeURL, "postgres://") || strings.HasPrefix(storeURL, "postgresql://"):
		st, err = postgres.Open(ctx, storeURL)
	default:
		err = fmt.Errorf("store URL: want postgres://..., or none for SQLite in the data directory")
	}
	if err != nil {
		return nil, err
	}
	opts.Store, opts.DataDir = st, abs
	svc, err := ca.New(ctx, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Dir{Path: abs, Config: cfg, Store: st, CA: svc}, nil
}

// Close closes the CA service and the store.
func (d *Dir) Close() error { return errors.Join(d.CA.Close(), d.Store.Close()) }

// Initialized reports whether any CA exists.
func (d *Dir) Initialized(ctx context.Context) (bool, error) {
	cas, err := d.Store.CAs(ctx)
	return len(cas) > 0, err
}

// InitConfig names the default hierarchy.
type InitConfig struct {
	Organization string // O of every CA
	Country      string // optional C
	// ISO20 also creates the ISO 15118-20 CAs of both variants,
	// Hierarchy20 and Hierarchy20Ed448, with their CPS leaves.
	ISO20 bool
}

// HierarchyCA is a CA Init creates: its name, profile, parent and the
// title that is its CN.
type HierarchyCA struct{ Name, Profile, Parent, Title string }

// DefaultHierarchy lists the CAs that Init creates, parents first. A CA's
// CN is its title alone: the organization is in O already, and every byte
// of a name counts four times in a certificate of an installation answer
// (CN and O of subject and issuer) against OCPP's exiResponse limit.
var DefaultHierarchy = []HierarchyCA{
	{"v2g-root", policies.ISO2V2GRoot, "", "V2G Root CA"},
	{"cpo-sub1", policies.ISO2CPOSub1, "v2g-root", "CPO Sub-CA 1"},
	{"cpo-sub2", policies.ISO2CPOSub2, "cpo-sub1", "CPO Sub-CA 2"},
	{"cps-sub1", policies.ISO2CPSSub1, "v2g-root", "CPS Sub-CA 1"},
	{"cps-sub2", policies.ISO2CPSSub2, "cps-sub1", "CPS Sub-CA 2"},
	{"mo-root", policies.ISO2MORoot, "", "MO Root CA"},
	{"mo-sub1", policies.ISO2MOSub1, "mo-root", "MO Sub-CA 1"},
	{"mo-sub2", policies.ISO2MOSub2, "mo-sub1", "MO Sub-CA 2"},
	{"csms-root", policies.OCPPCSMSRoot, "", "Charging Station CA"},
}

// Hierarchy20 lists the ISO 15118-20 CAs (secp521r1 variant) that Init
// creates next to the -2 ones with InitConfig.ISO20, parents first. Their
// names differ from the -2 CAs' in a "20": relying parties build chains
// by name.
var Hierarchy20 = []HierarchyCA{
	{"v2g20-root", policies.ISO20V2GRoot, "", "V2G Root CA 20"},
	{"cpo20-sub1", policies.ISO20CPOSub1, "v2g20-root", "CPO Sub-CA 1 20"},
	{"cpo20-sub2", policies.ISO20CPOSub2, "cpo20-sub1", "CPO Sub-CA 2 20"},
	{"cps20-sub1", policies.ISO20CPSSub1, "v2g20-root", "CPS Sub-CA 1 20"},
	{"cps20-sub2", policies.ISO20CPSSub2, "cps20-sub1", "CPS Sub-CA 2 20"},
	{"mo20-root", policies.ISO20MORoot, "", "MO Root CA 20"},
	{"mo20-sub1", policies.ISO20MOSub1, "mo20-root", "MO Sub-CA 1 20"},
	{"mo20-sub2", policies.ISO20MOSub2, "mo20-sub1", "MO Sub-CA 2 20"},
}

// Hierarchy20Ed448 is Hierarchy20 for ISO 15118-20's Ed448 variant: its
// CAs sign with Ed448 (file keys: PKCS#11 tokens such as SoftHSM2 have no
// Ed448).
var Hierarchy20Ed448 = func() []HierarchyCA {
	var out []HierarchyCA
	ed := func(name string) string { return strings.Replace(name, "20-", "20ed-", 1) }
	for _, h := range Hierarchy20 {
		h.Name, h.Profile, h.Title = ed(h.Name), policies.Ed448Variant(h.Profile), h.Title+" Ed448"
		if h.Parent != "" {
			h.Parent = ed(h.Parent)
		}
		out = append(out, h)
	}
	return out
}()

// CPSLeafCN is the CN of the CPS leaf Init issues.
const CPSLeafCN = "CPS Leaf"

// CPSLeafKey is where Init puts the CPS leaf key, relative to the data
// directory: the contract service signs installation responses with it.
const CPSLeafKey = "keys/cps-leaf.key"

// The ISO 15118-20 CPS leaf that Init issues with InitConfig.ISO20 (P-521,
// from cps20-sub2): it signs -20 installation answers.
const (
	CPS20LeafCN   = "CPS Leaf 20"
	CPS20LeafKey  = "keys/cps20-leaf.key"
	CPS20LeafCert = "cps20-leaf.pem"
)

// The ISO 15118-20 CPS leaf of the Ed448 variant (from cps20ed-sub2).
const (
	CPS20EdLeafCN   = "CPS Leaf 20 Ed448"
	CPS20EdLeafKey  = "keys/cps20ed-leaf.key"
	CPS20EdLeafCert = "cps20ed-leaf.pem"
)

// CPS20Leaves are the ISO 15118-20 CPS leaves Init makes, as key file and
// certificate file: one per security variant.
var CPS20Leaves = []struct{ Key, Cert string }{{CPS20LeafKey, CPS20LeafCert}, {CPS20EdLeafKey, CPS20EdLeafCert}}

// Init creates the default hierarchy (V2G root with CPO and CPS sub-CAs,
// MO root with its sub-CAs, the OCPP charging-station CA) and a CPS leaf,
// and with cfg.ISO20 the ISO 15118-20 hierarchy.
func (d *Dir) Init(ctx context.Context, cfg InitConfig) error {
	if cfg.Organization == "" {
		cfg.Organization = "pncpki demo"
	}
	hierarchy := DefaultHierarchy
	if cfg.ISO20 {
		hierarchy = slices.Concat(hierarchy, Hierarchy20, Hierarchy20Ed448)
	}
	for _, h := range hierarchy {
		if _, err := d.CA.CreateCA(ctx, ca.CAConfig{
			Name: h.Name, Profile: h.Profile, Parent: h.Parent,
			CommonName: h.Title, Organization: cfg.Organization, Country: cfg.Country,
		}); err != nil {
			return fmt.Errorf("create %s: %w", h.Name, err)
		}
	}
	leaves := []struct{ profile, issuer, cn, key, cert string }{
		{policies.ISO2CPSLeaf, "cps-sub2", CPSLeafCN, CPSLeafKey, "cps-leaf.pem"},
	}
	if cfg.ISO20 {
		leaves = append(leaves,
			struct{ profile, issuer, cn, key, cert string }{policies.ISO20CPSLeaf, "cps20-sub2", CPS20LeafCN, CPS20LeafKey, CPS20LeafCert},
			struct{ profile, issuer, cn, key, cert string }{policies.ISO20EdCPSLeaf, "cps20ed-sub2", CPS20EdLeafCN, CPS20EdLeafKey, CPS20EdLeafCert})
	}
	for _, l := range leaves {
		p, err := policies.Lookup(l.profile)
		if err != nil {
			return err
		}
		key, err := ca.GenerateKeyFileFor(filepath.Join(d.Path, l.key), p.Keys)
		if err != nil {
			return err
		}
		// The leaf's organization and country are its issuer's, named
		// right beside its subject: it travels in every installation
		// answer.
		iss, err := d.CA.IssueForKey(ctx, l.profile, l.issuer, key.Public(), policies.Subject{CommonName: l.cn}, policies.Period{})
		if err != nil {
			return fmt.Errorf("issue %s: %w", l.cn, err)
		}
		if err := writeCert(filepath.Join(d.Path, l.cert), iss.Cert().Raw); err != nil {
			return err
		}
	}
	return nil
}

// AuditSigner returns the key that signs audit checkpoints: the configured
// one, or DefaultAuditKey, which is made (P-256, mode 0600) the first time
// it is needed. It is not a CA key: whoever holds the database alone
// cannot forge a checkpoint.
func (d *Dir) AuditSigner(ctx context.Context) (crypto.Signer, error) {
	uri := d.Config.AuditKey
	if uri == "" {
		uri = DefaultAuditKey
		path := ca.FilePath(uri, d.Path)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(filepath.Join(d.Path, AuditPublicKeyFile)); err == nil {
				// Restored without its keys: a new key would sign
				// checkpoints that the old ones do not chain to.
				return nil, fmt.Errorf("audit key: %s is not here, only its public half (%s): restore the backup with its keys, or configure audit_key", path, AuditPublicKeyFile)
			}
			return ca.GenerateKeyFile(path)
		}
	}
	signer, err := d.CA.LoadSigner(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	return signer, nil
}

// AuditPublicKeyFile keeps, in a data directory restored from a backup
// without keys, the public half of the audit key, so that the restored
// audit chain can still be verified.
const AuditPublicKeyFile = "audit-key.pub.pem"

// AuditPublicKey returns the key that audit checkpoints verify with: the
// audit key's public half, or the one a restore left without the key.
func (d *Dir) AuditPublicKey(ctx context.Context) (crypto.PublicKey, error) {
	if d.Config.AuditKey == "" && !fileExists(ca.FilePath(DefaultAuditKey, d.Path)) {
		if data, err := os.ReadFile(filepath.Join(d.Path, AuditPublicKeyFile)); err == nil {
			b, _ := pem.Decode(data)
			if b == nil {
				return nil, fmt.Errorf("%s: no PEM", AuditPublicKeyFile)
			}
			return x509.ParsePKIXPublicKey(b.Bytes)
		}
	}
	signer, err := d.AuditSigner(ctx)
	if err != nil {
		return nil, err
	}
	return signer.Public(), nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// CheckpointFile is where pncd and pncctl keep the latest audit
// checkpoint, in the data directory and so outside the database: 'pncctl
// audit verify' checks the chain against it, so that entries cut from the
// end of the log are found.
const CheckpointFile = "audit-checkpoint.json"

// WriteCheckpoint keeps data (a checkpoint's JSON) as the latest one.
func (d *Dir) WriteCheckpoint(data []byte) error {
	path := filepath.Join(d.Path, CheckpointFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Fresh reports whether path is no data directory yet: missing, or an
// empty directory (an empty container volume).
func Fresh(path string) bool {
	entries, err := os.ReadDir(path)
	return errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0
}

// redactStore is a store URL without its password, as config.json keeps
// it.
func redactStore(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}
