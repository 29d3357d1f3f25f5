package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/policies"
)

func (a *app) tokenCmd() *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "API bearer tokens"}
	var tenant, role, subject string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Mint a bearer token signed by pncd's token key (DIR/keys/token.key)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if subject == "" {
				subject = tenant + "-" + role
			}
			c, done, err := a.api(ctx)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Tokens.CreateToken(ctx, call(c, &pncpkiv1.CreateTokenRequest{Subject: subject, Tenant: tenant, Role: role, TtlSeconds: int64(ttl / time.Second)}))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.errw, "token id %s (for 'pncctl token revoke --id'), expires %s\n", resp.Msg.Id, resp.Msg.ExpiresAt.AsTime().UTC().Format(time.RFC3339))
			fmt.Fprintln(a.out, resp.Msg.Token)
			return nil
		},
	}
	create.Flags().StringVar(&tenant, "tenant", "", "tenant the token acts for (required for role operator)")
	create.Flags().StringVar(&role, "role", auth.RoleOperator, "admin or operator")
	create.Flags().StringVar(&subject, "subject", "", "who holds the token, for the audit log (default TENANT-ROLE)")
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "lifetime, at most a year")
	var id, tokenFile string
	var withCerts bool
	revoke := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke a token before it expires (by --id, or the token itself with --file); pncd refuses it within 5 s",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			req := &pncpkiv1.RevokeTokenRequest{Id: id}
			switch {
			case tokenFile != "" && id != "":
				return usageError{errors.New("give --id or --file, not both")}
			case tokenFile != "":
				data, err := readBounded(tokenFile, maxTokenFile)
				if err != nil {
					return fmt.Errorf("--file: %w", err)
				}
				req.Token = strings.TrimSpace(string(data))
			case id == "":
				return usageError{errors.New("give --id or --file")}
			}
			c, done, err := a.api(ctx)
			if err != nil {
				return err
			}
			defer done()
			if _, err := c.Tokens.RevokeToken(ctx, call(c, req)); err != nil {
				return err
			}
			if id == "" {
				fmt.Fprintln(a.out, "revoked the token of", tokenFile)
			} else {
				fmt.Fprintf(a.out, "revoked token %s\n", id)
			}
			if tenant == "" {
				return nil
			}
			resp, err := c.Certs.ListCertificates(ctx, call(c, &pncpkiv1.ListCertificatesRequest{Profile: policies.APIClient, Tenant: tenant, Revoked: new(bool)}))
			if err != nil {
				return err
			}
			var live []clientCert
			for _, cert := range resp.Msg.Certificates {
				live = append(live, clientCert{cert.Issuer, cert.Serial})
			}
			return a.clientCerts(tenant, live, withCerts, func(cc clientCert) error {
				_, err := c.Certs.RevokeCertificate(ctx, call(c, &pncpkiv1.RevokeCertificateRequest{Issuer: cc.issuer, Serial: cc.serial, Reason: "privilegeWithdrawn"}))
				return err
			})
		},
	}
	revoke.Flags().StringVar(&id, "id", "", "the token's id (jti)")
	revoke.Flags().StringVar(&tokenFile, "file", "", "a file holding the token to revoke")
	revoke.Flags().StringVar(&tenant, "tenant", "", "the tenant the token acted for: its API client certificates, which act for it as well, are listed")
	revoke.Flags().BoolVar(&withCerts, "client-certificates", false, "with --tenant, revoke the tenant's API client certificates too (reason privilegeWithdrawn)")
	c.AddCommand(remote(create), remote(revoke), a.tokenListCmd())
	return c
}

// clientCert names an API client certificate.
type clientCert struct{ issuer, serial string }

// clientCerts offers to revoke a tenant's live API client certificates
// along with its token: it lists them, and revokes them with revoke when
// the administrator asked for it.
func (a *app) clientCerts(tenant string, live []clientCert, doRevoke bool, revoke func(clientCert) error) error {
	if len(live) == 0 {
		fmt.Fprintf(a.out, "tenant %s has no live API client certificate\n", tenant)
		return nil
	}
	if !doRevoke {
		fmt.Fprintf(a.out, "tenant %s has %d live API client certificates, which act for it as a token does; revoke them with --client-certificates:\n", tenant, len(live))
		for _, c := range live {
			fmt.Fprintf(a.out, "  %s/%s\n", c.issuer, c.serial)
		}
		return nil
	}
	for _, c := range live {
		if err := revoke(c); err != nil {
			return fmt.Errorf("revoke client certificate %s/%s: %w", c.issuer, c.serial, err)
		}
		fmt.Fprintf(a.out, "revoked API client certificate %s/%s\n", c.issuer, c.serial)
	}
	return nil
}

// tokenListCmd lists the tokens minted, from the audit log: tokens are
// audited, never stored.
func (a *app) tokenListCmd() *cobra.Command {
	var all bool
	var output string
	c := &cobra.Command{
		Use:   "list",
		Short: "List the API tokens minted (from the audit log: ID, holder, tenant, role, expiry, state); valid ones unless --all",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Tokens.ListTokens(cmd.Context(), call(c, &pncpkiv1.ListTokensRequest{All: all}))
			if err != nil {
				return err
			}
			var rows [][]string
			for _, t := range resp.Msg.Tokens {
				rows = append(rows, []string{t.Id, t.Subject, dash(t.Tenant), t.Role, t.CreatedAt.AsTime().Format(time.RFC3339),
					t.ExpiresAt.AsTime().Format(time.RFC3339), t.State})
			}
			return a.rows(output, "ID\tSUBJECT\tTENANT\tROLE\tCREATED\tEXPIRES\tSTATE", rows)
		},
	}
	c.Flags().BoolVar(&all, "all", false, "also the revoked and expired ones")
	a.outputFlag(c, &output)
	return remote(c)
}
