package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/cmd/internal/firstrun"
	"github.com/pncpki/pncpki/console"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/store/sqlite"
)

func (a *app) initCmd() *cobra.Command {
	var org, country, publicURL, rootDir string
	var imports []string
	var existsOK, iso20 bool
	c := &cobra.Command{
		Use:   "init",
		Short: "Create the CA hierarchy, or import an existing one",
		Long: `init creates the default hierarchy in the data directory: a V2G root with
CPO Sub-CA 1/2 and CPS Sub-CA 1/2 (and a CPS leaf), an MO root with MO Sub-CA
1/2, and the OCPP charging-station CA. Keys are P-256 PEM files of mode 0600
under DIR/keys.

With --import, it adds existing CAs instead; repeat the flag, parents first:
  --import name=cpo-sub2,cert=sub2.pem,key=softkms:path=/secure/sub2.key[,parent=cpo-sub1][,profile=iso15118-2/cpo-sub2]
  --import name=cpo-sub2,cert=sub2.pem,key='pkcs11:token=pki;object=sub2?pin-source=/etc/pin'
The profile is detected from the certificate when not given.

With --root-dir, the roots go offline at once: DIR becomes a data directory
of their own (keys, certificates and what they issued), for the offline
machine; the data directory keeps their certificates without their keys
(docs/key-ceremony.md).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if existsOK && !datadir.Fresh(a.data) {
				d, err := a.open(ctx, false)
				if err != nil {
					return err
				}
				done, err := d.Initialized(ctx)
				d.Close()
				if err != nil {
					return err
				}
				if done {
					fmt.Fprintf(a.errw, "%s has CAs already; nothing done\n", a.data)
					return nil
				}
			}
			// The settings are written only once the hierarchy is known to
			// fit them: a refused init leaves them as they were.
			settings, err := datadir.ReadConfig(a.data)
			if err != nil {
				return err
			}
			if publicURL != "" {
				settings.PublicURL = publicURL
				if err := settings.Validate(); err != nil {
					return fmt.Errorf("--public-url: %w", err)
				}
			}
			if a.exiLimit != 0 {
				settings.EXIResponseLimit = a.exiLimit
				if err := settings.Validate(); err != nil {
					return fmt.Errorf("--exi-limit: %w", err)
				}
			}
			if w := settings.HTTPSWarning(); w != "" {
				fmt.Fprintln(a.errw, "warning:", w)
			}
			hierarchy := datadir.InitConfig{Organization: org, Country: country, ISO20: iso20}
			if len(imports) == 0 {
				if err := dryRun(ctx, settings.PublicURL, hierarchy, settings.EXILimit()); err != nil {
					return fmt.Errorf("init refused: %w", err)
				}
			}
			if err := os.MkdirAll(a.data, 0o700); err != nil {
				return err
			}
			if err := datadir.WriteConfig(a.data, settings); err != nil {
				return err
			}
			d, err := a.openPlanned(ctx, true)
			if err != nil {
				return err
			}
			defer d.Close()
			if len(imports) > 0 {
				if err := dryImport(ctx, d, settings, imports); err != nil {
					// All or nothing: a refused CA leaves none imported.
					return fmt.Errorf("init --import refused, nothing imported: %w", err)
				}
				for _, spec := range imports {
					if err := importCA(ctx, d.CA, spec); err != nil {
						return err
					}
				}
			} else {
				done, err := d.Initialized(ctx)
				if err != nil {
					return err
				}
				if done {
					return fmt.Errorf("%s already has CAs; use 'pncctl ca create' or 'init --import' to add more", d.Path)
				}
				if err := d.Init(ctx, hierarchy); err != nil {
					return err
				}
			}
			if rootDir != "" {
				if err := moveRoots(ctx, d, rootDir, a.errw); err != nil {
					return fmt.Errorf("--root-dir: %w", err)
				}
			}
			if err := a.adminToken(ctx, d); err != nil {
				return err
			}
			// The audit key too, as pncd's first start makes it: pncd may
			// find keys/ read-only (shared by replicas).
			if _, err := d.AuditSigner(ctx); err != nil {
				return err
			}
			// And the console's session key, which replicas share.
			if _, err := console.LoadOrCreateSessionKey(d.Path); err != nil {
				return err
			}
			return a.listCAs(ctx, d, "table")
		},
	}
	c.Flags().BoolVar(&existsOK, "exists-ok", false, "succeed without doing anything when the data directory has CAs already (a container's init job)")
	c.Flags().StringVar(&rootDir, "root-dir", "", "move the roots' keys to this new directory (a removable medium for the offline machine), with a root data directory there")
	c.Flags().StringVar(&org, "org", "pncpki demo", "organization (O) of the created CAs")
	c.Flags().StringVar(&country, "country", "", "country (C) of the created CAs, e.g. DE")
	c.Flags().BoolVar(&iso20, "iso15118-20", false, "also create the ISO 15118-20 CAs of both variants (secp521r1: v2g20-root, cpo20-sub1/2, cps20-sub1/2, mo20-root, mo20-sub1/2; Ed448: the same with 20ed) and their CPS leaves")
	c.Flags().StringVar(&publicURL, "public-url", "", "base URL relying parties reach pncd at; issued certificates carry {url}/ocsp and {url}/crl/{ca}.crl (default "+datadir.DefaultPublicURL+")")
	c.Flags().StringArrayVar(&imports, "import", nil, "import an existing CA: name=N,cert=FILE,key=URI[,parent=P][,profile=PROFILE]")
	a.exiLimitFlag(c)
	return c
}

// adminToken leaves an administrator token in a new data directory, as
// pncd's first start does, unless one is there already.
func (a *app) adminToken(ctx context.Context, d *datadir.Dir) error {
	if _, err := os.Stat(filepath.Join(d.Path, firstrun.AdminTokenFile)); err == nil {
		return nil
	}
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		return fmt.Errorf("token key: %w", err)
	}
	path, err := firstrun.WriteAdminToken(ctx, d, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.errw, "administrator token (30 days) in %s\n", path)
	return nil
}

// dryImport imports every --import into a temporary store first, beside
// copies of the CAs d holds already, with d's keys and planned
// exiResponse limit, so that init imports all of them or none.
func dryImport(ctx context.Context, d *datadir.Dir, settings datadir.Config, imports []string) error {
	tmp, err := os.MkdirTemp("", "pncctl-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	st, err := sqlite.Open(filepath.Join(tmp, "pncpki.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	cas, err := d.Store.CAs(ctx)
	if err != nil {
		return err
	}
	for _, c := range cas {
		if err := st.CreateCA(ctx, c); err != nil {
			return fmt.Errorf("copy CA %s: %w", c.Name, err)
		}
	}
	var svc *ca.Service
	if svc, err = ca.New(ctx, ca.Options{Store: st, DataDir: d.Path, PublicURL: settings.PublicURL,
		CheckHierarchy: checkHierarchy(&svc, settings.EXILimit())}); err != nil {
		return err
	}
	defer svc.Close()
	for _, spec := range imports {
		if err := importCA(ctx, svc, spec); err != nil {
			return err
		}
	}
	return nil
}

func importCA(ctx context.Context, svc *ca.Service, spec string) error {
	kv := map[string]string{}
	for _, part := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("--import %q: %q is not key=value", spec, part)
		}
		kv[k] = v
	}
	for _, k := range []string{"name", "cert", "key"} {
		if kv[k] == "" {
			return fmt.Errorf("--import %q: %s= is required", spec, k)
		}
	}
	certs, err := datadir.ReadCertificates(kv["cert"])
	if err != nil {
		return err
	}
	if _, err = svc.ImportCA(ctx, kv["name"], kv["profile"], kv["key"], kv["parent"], certs[0].Raw); err != nil {
		return fmt.Errorf("--import %s: %w", kv["name"], err)
	}
	return nil
}

// listCAs prints the CAs of the open data directory d, through its API
// like 'ca list'.
func (a *app) listCAs(ctx context.Context, d *datadir.Dir, output string) error {
	c, err := a.apiOn(ctx, d, false, "")
	if err != nil {
		return err
	}
	return a.printCAs(ctx, c, output)
}

// caRow is a CA as 'ca list' shows it.
type caRow struct {
	Name     string    `json:"name"`
	Profile  string    `json:"profile"`
	Parent   string    `json:"parent,omitempty"`
	Status   string    `json:"status"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
	DaysLeft *int      `json:"days_left,omitempty"`
	Key      string    `json:"key,omitempty"`
	cn       string
	// What depends on the CA: the sub-CAs it certified, and the unexpired,
	// unrevoked certificates it issued, the last of which ends its duty to
	// answer OCSP and publish CRLs.
	SubCAs     []string  `json:"sub_cas,omitempty"`
	Live       int64     `json:"live_certificates"`
	LastExpiry time.Time `json:"last_expiry,omitzero"`
}

// printCAs lists the CAs through c with what depends on each.
func (a *app) printCAs(ctx context.Context, c *client, output string) error {
	resp, err := c.Authorities.ListAuthorities(ctx, call(c, &pncpkiv1.ListAuthoritiesRequest{Usage: true}))
	if err != nil {
		return err
	}
	now := time.Now()
	var rows []caRow
	for _, au := range resp.Msg.Authorities {
		r := caRow{Name: au.Name, Profile: au.Profile, Parent: au.Parent, Status: au.Status, Key: au.Key, Live: au.LiveCertificates}
		if au.Status == "scheduled" {
			r.Status = "from " + au.IssueFrom.AsTime().UTC().Format("2006-01-02T15:04Z")
		}
		if au.Subject != "" {
			r.Subject, r.NotAfter, r.cn = au.Subject, au.NotAfter.AsTime(), commonName(au.Chain)
			days := int(r.NotAfter.Sub(now).Hours() / 24)
			r.DaysLeft = &days
		}
		if au.LastExpiry != nil {
			r.LastExpiry = au.LastExpiry.AsTime()
		}
		for _, sub := range resp.Msg.Authorities {
			if sub.Parent == au.Name {
				r.SubCAs = append(r.SubCAs, sub.Name)
			}
		}
		rows = append(rows, r)
	}
	if structured(output) {
		return a.json(rows)
	}
	date := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format("2006-01-02")
	}
	var t [][]string
	for _, r := range rows {
		left := "-"
		if r.DaysLeft != nil {
			left = fmt.Sprintf("%dd", *r.DaysLeft)
		}
		t = append(t, []string{r.Name, r.Profile, dash(r.Parent), r.Status, dash(r.cn), date(r.NotAfter), left,
			dash(strings.Join(r.SubCAs, ",")), fmt.Sprint(r.Live), date(r.LastExpiry), dash(r.Key)})
	}
	a.table("NAME\tPROFILE\tPARENT\tSTATUS\tSUBJECT CN\tNOT AFTER\tLEFT\tSUB-CAS\tLIVE CERTS\tLAST EXPIRY\tKEY", t)
	return nil
}

// commonName is the CN of the CA's certificate (the first of its chain),
// for the table's narrow column; the whole subject is in -o json.
func commonName(chain []string) string {
	if len(chain) == 0 {
		return ""
	}
	certs, err := datadir.ParseCertificates([]byte(chain[0]))
	if err != nil {
		return ""
	}
	return certs[0].Subject.CommonName
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) caCmd() *cobra.Command {
	c := &cobra.Command{Use: "ca", Short: "Manage certificate authorities"}
	var output string
	list := &cobra.Command{
		Use: "list", Short: "List the CAs",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.checkOutput(output, "table", "json"); err != nil {
				return err
			}
			c, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			return a.printCAs(cmd.Context(), c, output)
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	remote(list)

	var cfg ca.CAConfig
	var days int
	var createFrom string
	create := &cobra.Command{
		Use: "create", Short: "Create a root or a sub-CA signed by a CA held here",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.openPlanned(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer d.Close()
			cfg.Validity.Days = days
			if createFrom != "" {
				if cfg.IssueFrom, err = parseWhen(createFrom); err != nil {
					return fmt.Errorf("--issue-from: %w", err)
				}
			}
			if cfg.Name == "" {
				cfg.Name = cfg.Profile[strings.LastIndexByte(cfg.Profile, '/')+1:]
			}
			if _, err := d.CA.CreateCA(cmd.Context(), cfg); err != nil {
				return err
			}
			return a.listCAs(cmd.Context(), d, "table")
		},
	}
	caFlags(create, &cfg)
	create.Flags().StringVar(&cfg.Parent, "parent", "", "issuing CA (empty for a root, or to pick the only possible one)")
	create.Flags().IntVar(&days, "days", 0, "validity in days (default: the profile's)")
	create.Flags().StringVar(&createFrom, "issue-from", "", "when the new CA takes over issuance from the CAs of its profile (RFC 3339 time or YYYY-MM-DD; default: at once)")
	a.exiLimitFlag(create)

	var csrCfg ca.CAConfig
	var out, csrFrom string
	csr := &cobra.Command{
		Use:   "csr",
		Short: "Create a sub-CA key (or use --key) and a CSR for an outside root to sign",
		Long: `csr prepares a sub-CA whose certificate an outside root signs: in a public
ecosystem, vehicles trust only its V2G roots. The CA is stored as pending;
'pncctl ca import CERT' completes it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer d.Close()
			if csrFrom != "" {
				if csrCfg.IssueFrom, err = parseWhen(csrFrom); err != nil {
					return fmt.Errorf("--issue-from: %w", err)
				}
			}
			if csrCfg.Name == "" {
				csrCfg.Name = csrCfg.Profile[strings.LastIndexByte(csrCfg.Profile, '/')+1:]
			}
			der, err := d.CA.RequestCA(cmd.Context(), csrCfg)
			if err != nil {
				return err
			}
			return a.writeOut(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
		},
	}
	caFlags(csr, &csrCfg)
	csr.Flags().StringVar(&out, "out", "", "write the CSR here instead of stdout")
	csr.Flags().StringVar(&csrFrom, "issue-from", "", "when the CA, once imported, takes over issuance from the CAs of its profile (RFC 3339 time or YYYY-MM-DD; default: at once)")

	imp := &cobra.Command{
		Use:   "import CERT",
		Short: "Install the certificate an outside root signed for a pending CA",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			d, err := a.openPlanned(ctx, false)
			if err != nil {
				return err
			}
			defer d.Close()
			certs, err := datadir.ReadCertificates(args[0])
			if err != nil {
				return err
			}
			if _, err := d.CA.ImportCACertificate(ctx, "", certs[0].Raw); err != nil {
				return err
			}
			return a.listCAs(ctx, d, "table")
		},
	}
	a.exiLimitFlag(imp)
	var newRoot, oldRoot string
	cross := &cobra.Command{
		Use:   "cross-certify",
		Short: "Sign a new root's key and subject with an older root of the same profile (CSMS root rollover for stations with AdditionalRootCertificateCheck); prints the PEM",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer d.Close()
			iss, err := d.CA.CrossCertify(cmd.Context(), newRoot, oldRoot)
			if err != nil {
				return err
			}
			_, err = a.out.Write(datadir.EncodePEM(iss.Cert()))
			return err
		},
	}
	cross.Flags().StringVar(&newRoot, "new", "", "the new root CA")
	cross.Flags().StringVar(&oldRoot, "old", "", "the root CA stations hold now")
	cross.MarkFlagRequired("new")
	cross.MarkFlagRequired("old")
	c.AddCommand(list, create, csr, imp, cross, a.caSignCmd(), a.caRenewCmd(), a.caRevokeCmd())
	return c
}

func caFlags(c *cobra.Command, cfg *ca.CAConfig) {
	c.Flags().StringVar(&cfg.Name, "name", "", "CA name (default: from the profile, e.g. cpo-sub1)")
	c.Flags().StringVar(&cfg.Profile, "profile", "", "CA profile, e.g. iso15118-2/cpo-sub1")
	c.Flags().StringVar(&cfg.CommonName, "cn", "", "subject CN (default: the name)")
	c.Flags().StringVar(&cfg.Organization, "org", "", "subject O")
	c.Flags().StringVar(&cfg.Country, "country", "", "subject C")
	c.Flags().StringVar(&cfg.KeyURI, "key", "", "key URI (softkms:path=FILE or pkcs11:...); default: a new key file, P-256, or P-521 for an ISO 15118-20 profile")
	c.MarkFlagRequired("profile")
}
