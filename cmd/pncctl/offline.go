package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// moveRoots takes the roots of a data directory offline: it makes
// rootDir a data directory of its own holding the roots (certificate, key
// and the certificates they issued, so that they can revoke them and sign
// CRLs there), then records the roots' keys as offline in d and removes
// their files from it. The OCSP responder
// certificates of every CA are issued first, while the roots can still
// sign theirs, for the longest the profile allows (90 days): the roots'
// next ones take a ceremony ('pncctl ocsp responder-csr'). A PKCS#11
// root key stays in its token, which goes with the root directory.
func moveRoots(ctx context.Context, d *datadir.Dir, rootDir string, out io.Writer) error {
	if !datadir.Fresh(rootDir) {
		return fmt.Errorf("--root-dir %s must be new or empty", rootDir)
	}
	if _, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path, ResponderValidity: policies.Period{Days: 90}}); err != nil {
		return fmt.Errorf("OCSP responders: %w", err)
	}
	if err := os.MkdirAll(rootDir, 0o700); err != nil {
		return err
	}
	settings := d.Config
	settings.Store = "" // the root directory keeps its own SQLite store
	if err := datadir.WriteConfig(rootDir, settings); err != nil {
		return err
	}
	rd, err := datadir.Open(ctx, rootDir, ca.Options{})
	if err != nil {
		return err
	}
	defer rd.Close()
	cas, err := d.Store.CAs(ctx)
	if err != nil {
		return err
	}
	var moved []string
	var roots []string
	for _, c := range cas {
		p, err := policies.Lookup(c.Profile)
		if err != nil || p.Role != policies.RoleRoot || c.Pending() || c.External() {
			continue
		}
		keyURI := c.KeyURI
		if strings.HasPrefix(keyURI, "softkms:") {
			src := ca.FilePath(keyURI, d.Path)
			rel := filepath.Join("keys", c.Name+".key")
			data, err := os.ReadFile(src)
			if err == nil {
				err = ca.WriteKeyData(filepath.Join(rootDir, rel), data)
			}
			if err != nil {
				return fmt.Errorf("root %s: %w", c.Name, err)
			}
			keyURI = "softkms:path=" + rel
			moved = append(moved, src)
		}
		if _, err := rd.CA.ImportCA(ctx, c.Name, c.Profile, keyURI, "", c.CertDER); err != nil {
			return fmt.Errorf("root %s: %w", c.Name, err)
		}
		issued, err := d.Store.Certificates(ctx, store.Filter{Issuer: c.Name})
		if err != nil {
			return err
		}
		for _, cert := range issued {
			if err := rd.Store.PutCertificate(ctx, cert); err != nil {
				return fmt.Errorf("root %s: copy certificate %s: %w", c.Name, cert.Serial, err)
			}
		}
		fmt.Fprintf(out, "root %s: key and %d certificates it issued in %s\n", c.Name, len(issued), rootDir)
		roots = append(roots, c.Name)
	}
	// Only now that every root is complete in rootDir do the keys leave d.
	for _, name := range roots {
		if err := d.Store.SetCAKey(ctx, name, store.OfflineKeyURI); err != nil {
			return err
		}
	}
	for _, path := range moved {
		if err := os.Remove(path); err != nil {
			return err
		}
	}
	return d.CA.Reload(ctx)
}

// caSignCmd is the offline root's side of a sub-CA: sign its CSR.
func (a *app) caSignCmd() *cobra.Command {
	var profile, issuer, out string
	var days int
	c := &cobra.Command{
		Use:   "sign CSR",
		Short: "Sign a sub-CA's CSR with a CA held here (an offline root, on the machine with its key); prints the PEM",
		Long: `sign certifies the key and subject of a sub-CA CSR ('pncctl ca csr' on the
online side) with the profile's extensions. The certificate is recorded as
one the issuer issued, so that 'pncctl revoke' and the issuer's CRL can
revoke it. Import it on the online side with 'pncctl ca import'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			csr, err := readBounded(args[0], ca.MaxCSRSize)
			if err != nil {
				return err
			}
			d, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer d.Close()
			iss, err := d.CA.CertifyCA(cmd.Context(), csr, profile, issuer, policies.Period{Days: days})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.errw, "signed %s (%s) as %s/%s, valid until %s\n", iss.Cert().Subject.CommonName, profile,
				iss.Record.Issuer, strings.ToUpper(iss.Record.Serial), iss.Cert().NotAfter.Format(time.RFC3339))
			return a.writeOut(out, datadir.EncodePEM(iss.Cert()))
		},
	}
	c.Flags().StringVar(&profile, "profile", "", "sub-CA profile, e.g. iso15118-2/cpo-sub1")
	c.Flags().StringVar(&issuer, "issuer", "", "signing CA (default: the only one that can sign the profile)")
	c.Flags().IntVar(&days, "days", 0, "validity in days (default: the profile's)")
	c.Flags().StringVar(&out, "out", "", "write the certificate here instead of stdout")
	c.MarkFlagRequired("profile")
	return c
}

// crlImportCmd is the online side of an offline CA's CRL.
func (a *app) crlImportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Import a CRL that an offline CA signed (DER or PEM): pncd serves it and applies its revocations",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readBounded(args[0], ca.MaxCRLSize)
			if err != nil {
				return err
			}
			if b, _ := pem.Decode(data); b != nil && b.Type == "X509 CRL" {
				data = b.Bytes
			}
			d, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer d.Close()
			name, n, err := d.CA.ImportCRL(cmd.Context(), data)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "imported the CRL of %s; %d certificates newly revoked here; pncd serves it at /crl/%s.crl\n", name, n, name)
			return nil
		},
	}
}

// caRenewCmd renews (same key) or rekeys a sub-CA: a new CA of the same
// profile and subject that takes over issuance at --issue-from.
func (a *app) caRenewCmd() *cobra.Command {
	var name, newName, from, out string
	var rekey bool
	var days int
	c := &cobra.Command{
		Use:   "renew",
		Short: "Renew (same key) or rekey (--rekey) a sub-CA: a new CA that takes over issuance at --issue-from",
		Long: `renew creates a successor of a sub-CA: same profile, subject and parent, the
same key (or a new one with --rekey). From --issue-from on, issuance for the
profile moves to it; the old CA keeps answering OCSP and publishing CRLs for
what it issued. When the parent is offline (or outside), renew writes the
successor's CSR to --out instead: sign it where the parent's key is
('pncctl ca sign') and install it with 'pncctl ca import'.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// At once unless later: the successor must be the newest of
			// its profile, or issuance would be ambiguous.
			issueFrom := time.Now().UTC()
			if from != "" {
				var err error
				if issueFrom, err = parseWhen(from); err != nil {
					return fmt.Errorf("--issue-from: %w", err)
				}
			}
			d, err := a.openPlanned(ctx, false)
			if err != nil {
				return err
			}
			defer d.Close()
			old, err := d.CA.Authority(name)
			if err != nil {
				return err
			}
			if old.Profile.Role == policies.RoleRoot {
				return fmt.Errorf("%s is a root: create a new root and cross-certify it ('pncctl ca cross-certify')", name)
			}
			rec, err := d.Store.CA(ctx, name)
			if err != nil {
				return err
			}
			if newName == "" {
				newName = fmt.Sprintf("%s-%s", name, time.Now().UTC().Format("20060102"))
			}
			subj := old.Cert.Subject
			cfg := ca.CAConfig{Name: newName, Profile: old.Profile.Name, Parent: old.Parent, CommonName: subj.CommonName,
				Organization: firstOf(subj.Organization), Country: firstOf(subj.Country), Validity: policies.Period{Days: days}, IssueFrom: issueFrom}
			if !rekey {
				cfg.KeyURI = rec.KeyURI
			}
			parent, err := d.CA.Authority(old.Parent)
			if old.Parent == "" || err != nil || parent.Offline {
				if out == "" {
					return fmt.Errorf("the parent of %s is not online here: name a file for the CSR with --out, sign it where the parent's key is ('pncctl ca sign'), then 'pncctl ca import'", name)
				}
				cfg.Parent = ""
				der, err := d.CA.RequestCA(ctx, cfg)
				if err != nil {
					return err
				}
				if err := os.WriteFile(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(a.out, "%s is pending: sign %s with 'pncctl ca sign %s --profile %s' where the parent's key is, then 'pncctl ca import CERT'\n",
					newName, out, filepath.Base(out), cfg.Profile)
				return nil
			}
			if _, err := d.CA.CreateCA(ctx, cfg); err != nil {
				return err
			}
			return a.listCAs(ctx, d, "table")
		},
	}
	c.Flags().StringVar(&name, "name", "", "the sub-CA to renew")
	c.Flags().StringVar(&newName, "new-name", "", "name of the successor (default: NAME-YYYYMMDD)")
	c.Flags().BoolVar(&rekey, "rekey", false, "give the successor a new key (default: the same key)")
	c.Flags().StringVar(&from, "issue-from", "", "when the successor takes over issuance (RFC 3339 time or YYYY-MM-DD, UTC; default: at once)")
	c.Flags().IntVar(&days, "days", 0, "validity in days (default: the profile's)")
	c.Flags().StringVar(&out, "out", "", "where to write the successor's CSR when the parent is offline")
	c.MarkFlagRequired("name")
	return c
}

// caRevokeCmd revokes a sub-CA at its parent and lists what it issued.
func (a *app) caRevokeCmd() *cobra.Command {
	var name, reason string
	c := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke a sub-CA at its parent (which must be online here) and list what it issued",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			code, err := ca.ParseReason(reason)
			if err != nil {
				return err
			}
			d, err := a.open(ctx, false)
			if err != nil {
				return err
			}
			defer d.Close()
			sub, err := d.CA.Authority(name)
			if err != nil {
				return err
			}
			if sub.Parent == "" {
				return fmt.Errorf("%s has no parent held here: its issuer revokes it (for an offline root: 'pncctl revoke' against the root directory, then 'pncctl crl import')", name)
			}
			serial := ca.SerialHex(sub.Cert.SerialNumber)
			if _, err := d.CA.Revoke(ctx, sub.Parent, serial, code); err != nil {
				if ca.CodeOf(err) == ca.CodeNotFound {
					return fmt.Errorf("%s's certificate %s is not recorded under %s: revoke it where %s's key is, then import that CRL", name, strings.ToUpper(serial), sub.Parent, sub.Parent)
				}
				return err
			}
			fmt.Fprintf(a.out, "revoked %s (%s/%s, %s); it issues no more\n", name, sub.Parent, strings.ToUpper(serial), ca.ReasonName(code))
			live, err := d.Store.Certificates(ctx, store.Filter{Issuer: name, Revoked: new(false)})
			if err != nil {
				return err
			}
			now := time.Now()
			var rows [][]string
			for _, c := range live {
				if c.NotAfter.After(now) {
					rows = append(rows, []string{strings.ToUpper(c.Serial), c.Profile, c.Tenant, c.CommonName, c.NotAfter.Format("2006-01-02")})
				}
			}
			fmt.Fprintf(a.out, "%d unexpired certificates of %s (at most %d listed) chain to a revoked CA now:\n", len(rows), name, store.MaxPage)
			a.table("SERIAL\tPROFILE\tTENANT\tCN\tNOT AFTER", rows)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "the sub-CA to revoke")
	c.Flags().StringVar(&reason, "reason", "cACompromise", "RFC 5280 reason (cACompromise, superseded, cessationOfOperation, ...)")
	c.MarkFlagRequired("name")
	return c
}

// parseWhen reads an RFC 3339 time or a UTC date.
func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, errors.New("want an RFC 3339 time (2027-01-01T00:00:00Z) or a date (2027-01-01)")
	}
	return t, nil
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// responderCSRCmd starts a new delegated OCSP responder for an offline CA.
func (a *app) responderCSRCmd() *cobra.Command {
	var name, out string
	c := &cobra.Command{
		Use:   "responder-csr",
		Short: "Make the key of a new OCSP responder for an offline CA and write its CSR, for the CA to sign where its key is",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer d.Close()
			au, err := d.CA.Authority(name)
			if err != nil {
				return err
			}
			der, err := ocsp.RequestResponder(d.Path, au)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.errw, "sign it where %s's key is: pncctl ca sign %s --profile %s --issuer %s --days 90; then pncctl ocsp responder-import CERT\n",
				name, filepath.Base(out), policies.OCSPResponder, name)
			return a.writeOut(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
		},
	}
	c.Flags().StringVar(&name, "ca", "", "the offline CA")
	c.Flags().StringVar(&out, "out", "", "write the CSR here instead of stdout")
	c.MarkFlagRequired("ca")
	return c
}

// responderImportCmd installs the responder certificate an offline CA signed.
func (a *app) responderImportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "responder-import CERT",
		Short: "Install the OCSP responder certificate an offline CA signed for 'ocsp responder-csr'; pncd uses it within a minute",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			certs, err := datadir.ReadCertificates(args[0])
			if err != nil {
				return err
			}
			d, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer d.Close()
			c := d.CA.SignedBy(certs[0].RawIssuer, func(p *x509.Certificate) error { return ed448x509.CheckSignature(certs[0], p) })
			if c == nil {
				return fmt.Errorf("the certificate is not signed by a CA held here")
			}
			if err := ocsp.ImportResponder(d.Path, c, certs[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "OCSP responder of %s installed, valid until %s\n", c.Name, certs[0].NotAfter.Format(time.RFC3339))
			return nil
		},
	}
}
