package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/api/oauth"
)

// oauthCmd manages the clients of the OAuth2 token endpoint.
func (a *app) oauthCmd() *cobra.Command {
	c := &cobra.Command{Use: "oauth-clients", Short: "Clients of the OAuth2 client-credentials endpoint (POST /oauth/token), as Open Plug&Charge clients log in"}
	var id, tenant string
	var admin bool
	create := &cobra.Command{
		Use: "create", Short: "Register a client and print its secret (shown only now)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer d.Close()
			role := auth.RoleOperator
			if admin {
				role, tenant = auth.RoleAdmin, ""
			} else if tenant == "" {
				return fmt.Errorf("give --tenant, or --admin for an administrator client")
			}
			secret, err := oauth.CreateClient(cmd.Context(), d.Store, id, tenant, role, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "client_id:     %s\nclient_secret: %s\n", id, secret)
			return nil
		},
	}
	create.Flags().StringVar(&id, "id", "", "client ID")
	create.Flags().StringVar(&tenant, "tenant", "", "the tenant its tokens act for")
	create.Flags().BoolVar(&admin, "admin", false, "an administrator client (every tenant)")
	create.MarkFlagRequired("id")
	var clientsOut string
	list := &cobra.Command{
		Use: "list", Short: "List clients",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer d.Close()
			cs, err := d.Store.ListOAuthClients(cmd.Context(), tenant)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, c := range cs {
				state := "active"
				if !c.RevokedAt.IsZero() {
					state = "revoked " + c.RevokedAt.Format(time.RFC3339)
				}
				rows = append(rows, []string{c.ID, c.Tenant, c.Role, c.CreatedAt.Format(time.RFC3339), state})
			}
			return a.rows(clientsOut, "ID\tTENANT\tROLE\tCREATED\tSTATE", rows)
		},
	}
	a.outputFlag(list, &clientsOut)
	list.Flags().StringVar(&tenant, "tenant", "", "only this tenant's")
	var revokeID string
	revoke := &cobra.Command{
		Use: "revoke", Short: "Revoke a client (tokens it already has run out within 24 hours)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer d.Close()
			if err := d.Store.RevokeOAuthClient(cmd.Context(), revokeID, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "revoked OAuth client %s\n", revokeID)
			return nil
		},
	}
	revoke.Flags().StringVar(&revokeID, "id", "", "client ID")
	revoke.MarkFlagRequired("id")
	c.AddCommand(create, list, revoke)
	return c
}
