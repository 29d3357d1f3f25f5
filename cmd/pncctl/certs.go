package main

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

func (a *app) issueCmd() *cobra.Command {
	var req struct{ Profile, Tenant, Issuer string }
	var csrPath string
	var chain bool
	var days int
	c := &cobra.Command{
		Use:   "issue",
		Short: "Issue a certificate from a PEM or DER CSR and print it as PEM",
		RunE: func(cmd *cobra.Command, _ []string) error {
			csr, err := readBounded(csrPath, ca.MaxCSRSize)
			if err != nil {
				return err
			}
			// The API carries the CSR as text: a DER one goes as PEM.
			if !bytes.Contains(csr, []byte("-----BEGIN")) {
				csr = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})
			}
			// Locally, pncctl acts as the data directory's administrator.
			c, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Certs.SignCSR(cmd.Context(), call(c, &pncpkiv1.SignCSRRequest{Profile: req.Profile, Csr: string(csr), Tenant: req.Tenant,
				Issuer: req.Issuer, ValidityDays: int32(days)}))
			if err != nil {
				return err
			}
			fmt.Fprint(a.out, resp.Msg.Certificate.Pem)
			if chain {
				fmt.Fprint(a.out, strings.Join(resp.Msg.Chain, ""))
			}
			return nil
		},
	}
	c.Flags().StringVar(&req.Profile, "profile", "", "certificate profile, e.g. iso15118-2/secc (see 'pncctl profiles')")
	c.Flags().StringVar(&csrPath, "csr", "", "CSR file (PEM or DER), - for stdin")
	c.Flags().StringVar(&req.Tenant, "tenant", "", "tenant the certificate is for; its name policy applies (default: administrator)")
	c.Flags().StringVar(&req.Issuer, "issuer", "", "issuing CA (default: the only CA that can issue the profile)")
	c.Flags().BoolVar(&chain, "chain", false, "also print the issuing CA chain, root last")
	c.Flags().IntVar(&days, "days", 0, "validity in days (default: the profile's)")
	c.MarkFlagRequired("profile")
	c.MarkFlagRequired("csr")
	return remote(c)
}

// readBounded reads a file (or stdin for "-") of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &ca.Error{Code: ca.CodeCSRTooLarge, Message: fmt.Sprintf("%s is larger than %d bytes", path, limit)}
	}
	return data, nil
}

func (a *app) revokeCmd() *cobra.Command {
	var serial, reason, issuer, redisURL, certFile string
	c := &cobra.Command{
		Use:   "revoke [SERIAL]",
		Short: "Revoke a certificate, named by SERIAL (as certs show), --serial or --cert (durable before this returns)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := ca.ParseReason(reason)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				if serial != "" {
					return usageError{errors.New("give the serial once: as an argument or --serial")}
				}
				serial = args[0]
			}
			switch {
			case certFile != "" && serial != "":
				return usageError{errors.New("give the serial or --cert, not both")}
			case certFile != "":
				certs, err := datadir.ReadCertificates(certFile)
				if err != nil {
					return err
				}
				serial = ca.SerialHex(certs[0].SerialNumber)
			case serial == "":
				return usageError{errors.New("name the certificate: SERIAL, --serial or --cert")}
			}
			c, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Certs.RevokeCertificate(cmd.Context(), call(c, &pncpkiv1.RevokeCertificateRequest{Serial: serial, Issuer: issuer, Reason: ca.ReasonName(code)}))
			if err != nil {
				return err
			}
			r := resp.Msg.Certificate
			fmt.Fprintf(a.out, "revoked %s/%s (%s) at %s\n", r.Issuer, r.Serial, r.RevocationReason, r.RevokedAt.AsTime().Format(time.RFC3339))
			if a.server != "" {
				return nil // pncd tells its OCSP responders itself
			}
			if redisURL == "" {
				fmt.Fprintf(a.out, "OCSP responders on this store answer revoked within their revocation poll (default 500 ms); --redis tells them at once\n")
				return nil
			}
			opt, err := redis.ParseURL(redisURL)
			if err != nil {
				return fmt.Errorf("--redis: %w", err)
			}
			rdb := redis.NewClient(opt)
			defer rdb.Close()
			if err := ocsp.Announce(cmd.Context(), rdb, ocsp.DefaultRedisPrefix, r.Issuer, strings.ToLower(r.Serial)); err != nil {
				return fmt.Errorf("revocation stored, but %w; responders will answer revoked within their revocation poll", err)
			}
			fmt.Fprintf(a.out, "announced to OCSP responders through Redis\n")
			return nil
		},
	}
	c.Flags().StringVar(&serial, "serial", "", "serial number in hex")
	c.Flags().StringVar(&certFile, "cert", "", "the certificate to revoke (PEM or DER file), instead of --serial")
	c.Flags().StringVar(&reason, "reason", "unspecified", "RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise")
	c.Flags().StringVar(&issuer, "issuer", "", "issuing CA (needed only if the serial exists under several CAs)")
	c.Flags().StringVar(&redisURL, "redis", os.Getenv("PNCPKI_REDIS"), "Redis URL of the OCSP responders, to announce the revocation at once (default $PNCPKI_REDIS)")
	return remote(c)
}

// certJSON is the JSON form of a stored certificate.
type certJSON struct {
	Issuer     string    `json:"issuer"`
	Serial     string    `json:"serial"`
	Profile    string    `json:"profile"`
	Tenant     string    `json:"tenant,omitempty"`
	CommonName string    `json:"common_name"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	Status     string    `json:"status"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	PEM        string    `json:"pem,omitempty"`
}

func toJSON(c *store.Certificate, now time.Time, withPEM bool) certJSON {
	j := certJSON{Issuer: c.Issuer, Serial: strings.ToUpper(c.Serial), Profile: c.Profile, Tenant: c.Tenant,
		CommonName: c.CommonName, NotBefore: c.NotBefore, NotAfter: c.NotAfter, Status: c.Status(now), RevokedAt: c.RevokedAt}
	if c.Revoked() {
		j.Reason = ca.ReasonName(c.Reason)
	}
	if withPEM {
		j.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
	}
	return j
}

func (a *app) certsCmd() *cobra.Command {
	c := &cobra.Command{Use: "certs", Short: "List and show issued certificates"}
	var f store.Filter
	var output, revoked string
	var expiring time.Duration
	list := &cobra.Command{
		Use: "list", Short: "List issued certificates",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.checkOutput(output, "table", "json"); err != nil {
				return err
			}
			switch revoked {
			case "":
			case "true", "false":
				b := revoked == "true"
				f.Revoked = &b
			default:
				return fmt.Errorf("--revoked %q: want true or false", revoked)
			}
			now := time.Now()
			if expiring > 0 {
				f.ExpiringBefore = now.Add(expiring)
			}
			if f.Limit <= 0 {
				return fmt.Errorf("--limit %d: want a positive number", f.Limit)
			}
			// The store answers at most store.MaxPage a call: ask page by
			// page until --limit or the end.
			var cs []*store.Certificate
			for page := f; len(cs) < f.Limit; {
				page.Limit = min(f.Limit-len(cs), store.MaxPage)
				got, err := a.listCertificates(cmd, page)
				if err != nil {
					return err
				}
				cs = append(cs, got...)
				if len(got) < page.Limit {
					break
				}
				page.Offset += len(got)
			}
			if structured(output) {
				out := make([]certJSON, len(cs))
				for i, c := range cs {
					out[i] = toJSON(c, now, false)
				}
				return a.json(out)
			}
			var rows [][]string
			for _, c := range cs {
				rows = append(rows, []string{c.Issuer, strings.ToUpper(c.Serial), c.Profile, dash(c.Tenant), c.CommonName, c.NotAfter.Format("2006-01-02"), c.Status(now)})
			}
			a.table("ISSUER\tSERIAL\tPROFILE\tTENANT\tCN\tNOT AFTER\tSTATUS", rows)
			return nil
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	list.Flags().StringVar(&f.Issuer, "issuer", "", "only this CA")
	list.Flags().StringVar(&f.Profile, "profile", "", "only this profile")
	list.Flags().StringVar(&f.Tenant, "tenant", "", "only this tenant")
	list.Flags().StringVar(&revoked, "revoked", "", "true or false")
	list.Flags().DurationVar(&expiring, "expiring-within", 0, "only certificates expiring within this duration, e.g. 720h")
	list.Flags().IntVar(&f.Limit, "limit", store.MaxPage, "at most this many, newest first (fetched in pages of 1,000)")
	list.Flags().IntVar(&f.Offset, "offset", 0, "skip this many")
	remote(list)

	var showOut, showIssuer string
	show := &cobra.Command{
		Use: "show SERIAL", Short: "Show one certificate", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.checkOutput(showOut, "table", "json", "pem"); err != nil {
				return err
			}
			c, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Certs.GetCertificate(cmd.Context(), call(c, &pncpkiv1.GetCertificateRequest{Serial: args[0], Issuer: showIssuer}))
			if err != nil {
				return err
			}
			j := toJSON(recordOf(resp.Msg.Certificate), time.Now(), true)
			switch showOut {
			case "pem":
				_, err := io.WriteString(a.out, j.PEM)
				return err
			case "json", "yaml":
				return a.json(j)
			}
			rows := [][]string{{"issuer", j.Issuer}, {"serial", j.Serial}, {"profile", j.Profile}, {"tenant", dash(j.Tenant)},
				{"common name", j.CommonName}, {"not before", j.NotBefore.Format(time.RFC3339)}, {"not after", j.NotAfter.Format(time.RFC3339)}, {"status", j.Status}}
			if !j.RevokedAt.IsZero() {
				rows = append(rows, []string{"revoked at", j.RevokedAt.Format(time.RFC3339)}, []string{"reason", j.Reason})
			}
			a.table("FIELD\tVALUE", rows)
			return nil
		},
	}
	show.Flags().StringVarP(&showOut, "output", "o", "table", "table, json, yaml or pem")
	show.Flags().StringVar(&showIssuer, "issuer", "", "issuing CA, if the serial is not unique")
	var countsTenant, countsOut string
	counts := &cobra.Command{
		Use: "counts", Short: "Count certificates per profile by status (valid, expired, revoked); a count is at most a minute old",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.checkOutput(countsOut, "table", "json"); err != nil {
				return err
			}
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Certs.CertificateCounts(cmd.Context(), call(cl, &pncpkiv1.CertificateCountsRequest{Tenant: countsTenant}))
			if err != nil {
				return err
			}
			out := struct {
				Counts []store.ProfileCount `json:"counts"`
				AsOf   time.Time            `json:"as_of"`
			}{Counts: []store.ProfileCount{}, AsOf: resp.Msg.AsOf.AsTime()}
			for _, p := range resp.Msg.Counts {
				out.Counts = append(out.Counts, store.ProfileCount{Profile: p.Profile, Valid: p.Valid, Expired: p.Expired, Revoked: p.Revoked})
			}
			if structured(countsOut) {
				return a.json(out)
			}
			var rows [][]string
			for _, p := range out.Counts {
				rows = append(rows, []string{p.Profile, strconv.FormatInt(p.Valid, 10), strconv.FormatInt(p.Expired, 10), strconv.FormatInt(p.Revoked, 10)})
			}
			a.table("PROFILE\tVALID\tEXPIRED\tREVOKED", rows)
			fmt.Fprintf(a.out, "counted %s\n", out.AsOf.Format(time.RFC3339))
			return nil
		},
	}
	counts.Flags().StringVar(&countsTenant, "tenant", "", "only this tenant's (administrators)")
	counts.Flags().StringVarP(&countsOut, "output", "o", "table", "table, json or yaml")
	c.AddCommand(list, remote(show), remote(counts))
	return c
}

func (a *app) crlCmd() *cobra.Command {
	var issuer, out string
	var validity time.Duration
	c := &cobra.Command{
		Use:   "crl",
		Short: "Write a CA's current CRL (DER); with --validity, sign a new one where the CA's key is (an offline root's); 'crl import' takes in an offline CA's",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if issuer == "" {
				return usageError{errors.New("--issuer is required")}
			}
			if cmd.Flags().Changed("validity") {
				// Signing with a chosen nextUpdate is a root ceremony step:
				// it needs the key, so it stays on the data directory.
				if a.server != "" {
					return usageError{errors.New("--validity signs a new CRL with the CA's key, on the data directory that holds it: drop --server")}
				}
				d, err := a.open(ctx, false)
				if err != nil {
					return err
				}
				defer d.Close()
				name, err := caByNameOrProfile(authoritiesOf(d), issuer)
				if err != nil {
					return err
				}
				der, err := d.CA.CRL(ctx, name, validity)
				if err != nil {
					return err
				}
				return a.writeOut(out, der)
			}
			c, done, err := a.api(ctx)
			if err != nil {
				return err
			}
			defer done()
			name := issuer
			if !ca.ValidName(issuer) {
				resp, err := c.Authorities.ListAuthorities(ctx, call(c, &pncpkiv1.ListAuthoritiesRequest{}))
				if err != nil {
					return err
				}
				cas := map[string]string{}
				for _, au := range resp.Msg.Authorities {
					cas[au.Name] = au.Profile
				}
				if name, err = caByNameOrProfile(cas, issuer); err != nil {
					return err
				}
			}
			resp, err := c.Certs.GetCRL(ctx, call(c, &pncpkiv1.GetCRLRequest{Issuer: name}))
			if err != nil {
				return err
			}
			return a.writeOut(out, resp.Msg.Der)
		},
	}
	c.Flags().StringVar(&issuer, "issuer", "", "CA name (e.g. cpo-sub2), or a profile that only one CA has (e.g. iso15118-2/cpo-sub2)")
	c.Flags().StringVar(&out, "out", "", "write the CRL here instead of stdout")
	c.Flags().DurationVar(&validity, "validity", ca.CRLValidity, "sign a new CRL with this time until nextUpdate (local data directory only)")
	c.AddCommand(a.crlImportCmd())
	return remote(c)
}

func (a *app) tenantsCmd() *cobra.Command {
	c := &cobra.Command{Use: "tenants", Short: "Manage tenants (CPOs, eMSPs, OEMs, admins)"}
	var t policies.Tenant
	var kind string
	create := &cobra.Command{
		Use: "create", Short: "Create a tenant",
		RunE: func(cmd *cobra.Command, _ []string) error {
			t.Kind = policies.TenantKind(kind)
			if err := t.Normalize(); err != nil {
				return err
			}
			c, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := c.Tenants.CreateTenant(cmd.Context(), call(c, &pncpkiv1.CreateTenantRequest{Tenant: &pncpkiv1.Tenant{Name: t.Name, Kind: string(t.Kind),
				Organization: t.Organization, OperatorIds: t.OperatorIDs, ProviderIds: t.ProviderIDs, DnsDomains: t.DNSDomains}})); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "created tenant %s (%s)\n", t.Name, t.Kind)
			return nil
		},
	}
	create.Flags().StringVar(&t.Name, "name", "", "tenant name")
	create.Flags().StringVar(&kind, "kind", "", "cpo, emsp, oem or admin")
	create.Flags().StringVar(&t.Organization, "org", "", "organization (O) of its station certificates")
	create.Flags().StringSliceVar(&t.OperatorIDs, "operator-id", nil, "EVSE operator IDs (CPO), e.g. DE*ABC")
	create.Flags().StringSliceVar(&t.ProviderIDs, "provider-id", nil, "provider IDs (eMSP), e.g. DE-8AA")
	create.Flags().StringSliceVar(&t.DNSDomains, "dns-domain", nil, "DNS domains for server certificates")
	create.MarkFlagRequired("name")
	create.MarkFlagRequired("kind")
	var tenantsOut string
	list := &cobra.Command{
		Use: "list", Short: "List tenants",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := a.listTenants(cmd)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, t := range ts {
				rows = append(rows, []string{t.Name, string(t.Kind), dash(t.Organization), dash(strings.Join(t.OperatorIDs, ",")), dash(strings.Join(t.ProviderIDs, ","))})
			}
			return a.rows(tenantsOut, "NAME\tKIND\tORGANIZATION\tOPERATOR IDS\tPROVIDER IDS", rows)
		},
	}
	a.outputFlag(list, &tenantsOut)
	c.AddCommand(remote(create), remote(list))
	return c
}

func (a *app) listTenants(cmd *cobra.Command) ([]*policies.Tenant, error) {
	c, done, err := a.api(cmd.Context())
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := c.Tenants.ListTenants(cmd.Context(), call(c, &pncpkiv1.ListTenantsRequest{}))
	if err != nil {
		return nil, err
	}
	var out []*policies.Tenant
	for _, t := range resp.Msg.Tenants {
		out = append(out, &policies.Tenant{Name: t.Name, Kind: policies.TenantKind(t.Kind), Organization: t.Organization,
			OperatorIDs: t.OperatorIds, ProviderIDs: t.ProviderIds, DNSDomains: t.DnsDomains})
	}
	return out, nil
}

// caByNameOrProfile accepts a CA name, or a CA profile name that exactly one
// CA of cas (name to profile) has.
func caByNameOrProfile(cas map[string]string, s string) (string, error) {
	if ca.ValidName(s) {
		return s, nil
	}
	if _, err := policies.Lookup(s); err != nil {
		return "", &ca.Error{Code: ca.CodeIssuerUnknown, Message: fmt.Sprintf("%q is neither a CA name nor a profile", s)}
	}
	var names []string
	for name, profile := range cas {
		if profile == s {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) != 1 {
		return "", &ca.Error{Code: ca.CodeIssuerAmbiguous, Message: fmt.Sprintf("%d CAs have profile %s (%s): name one", len(names), s, strings.Join(names, ", "))}
	}
	return names[0], nil
}

// authoritiesOf maps the CAs loaded from d to their profiles.
func authoritiesOf(d *datadir.Dir) map[string]string {
	cas := map[string]string{}
	for _, a := range d.CA.Authorities() {
		cas[a.Name] = a.Profile.Name
	}
	return cas
}

// listCertificates lists through the API (local or --server).
func (a *app) listCertificates(cmd *cobra.Command, f store.Filter) ([]*store.Certificate, error) {
	c, done, err := a.api(cmd.Context())
	if err != nil {
		return nil, err
	}
	defer done()
	req := &pncpkiv1.ListCertificatesRequest{Issuer: f.Issuer, Profile: f.Profile, Tenant: f.Tenant, PageSize: int32(f.Limit), Offset: int32(f.Offset), Revoked: f.Revoked}
	if !f.ExpiringBefore.IsZero() {
		req.ExpiringBefore = timestamppb.New(f.ExpiringBefore)
	}
	resp, err := c.Certs.ListCertificates(cmd.Context(), call(c, req))
	if err != nil {
		return nil, err
	}
	out := make([]*store.Certificate, len(resp.Msg.Certificates))
	for i, p := range resp.Msg.Certificates {
		out[i] = recordOf(p)
	}
	return out, nil
}
