package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/store"
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
			d, err := a.open(ctx, false)
			if err != nil {
				return err
			}
			defer d.Close()
			if tenant != "" {
				if _, err := d.Store.Tenant(ctx, tenant); err != nil {
					return fmt.Errorf("--tenant: %w", err)
				}
			}
			key, err := auth.LoadOrCreateKey(d.Path)
			if err != nil {
				return err
			}
			if subject == "" {
				subject = tenant + "-" + role
			}
			tok, err := key.Mint(subject, tenant, role, ttl, time.Now())
			if err != nil {
				return err
			}
			// Tokens are audited, never stored.
			if err := d.Store.AppendAudit(context.WithoutCancel(ctx), &store.AuditEntry{Actor: store.ActorFrom(ctx), Action: "token.create", Object: subject,
				Detail: fmt.Sprintf(`{"tenant":%q,"role":%q,"ttl":%q}`, tenant, role, ttl)}); err != nil {
				return err
			}
			fmt.Fprintln(a.out, tok)
			return nil
		},
	}
	create.Flags().StringVar(&tenant, "tenant", "", "tenant the token acts for (required for role operator)")
	create.Flags().StringVar(&role, "role", auth.RoleOperator, "admin or operator")
	create.Flags().StringVar(&subject, "subject", "", "who holds the token, for the audit log (default TENANT-ROLE)")
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "lifetime, at most a year")
	c.AddCommand(create)
	return c
}
