package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
)

// oauthCmd manages the clients of the OAuth2 token endpoint.
func (a *app) oauthCmd() *cobra.Command {
	c := &cobra.Command{Use: "oauth-clients", Short: "Clients of the OAuth2 client-credentials endpoint (POST /oauth/token), as Open Plug&Charge clients log in"}
	var id, tenant string
	var admin bool
	create := &cobra.Command{
		Use: "create", Short: "Register a client and print its secret (shown only now)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &pncpkiv1.CreateOAuthClientRequest{Id: id, Tenant: tenant, Role: auth.RoleOperator}
			switch {
			case admin && tenant != "":
				return usageError{fmt.Errorf("an --admin client acts for every tenant: drop --tenant")}
			case admin:
				req.Role = auth.RoleAdmin
			case tenant == "":
				return usageError{fmt.Errorf("give --tenant, or --admin for an administrator client")}
			}
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Tokens.CreateOAuthClient(cmd.Context(), call(cl, req))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "client_id:     %s\nclient_secret: %s\n", resp.Msg.Client.Id, resp.Msg.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&id, "id", "", "client ID")
	create.Flags().StringVar(&tenant, "tenant", "", "the tenant its tokens act for")
	create.Flags().BoolVar(&admin, "admin", false, "an administrator client (every tenant)")
	create.MarkFlagRequired("id")
	var clientsOut, listTenant string
	list := &cobra.Command{
		Use: "list", Short: "List clients",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Tokens.ListOAuthClients(cmd.Context(), call(cl, &pncpkiv1.ListOAuthClientsRequest{Tenant: listTenant}))
			if err != nil {
				return err
			}
			var rows [][]string
			for _, c := range resp.Msg.Clients {
				state := "active"
				if c.RevokedAt != nil {
					state = "revoked " + c.RevokedAt.AsTime().Format(time.RFC3339)
				}
				rows = append(rows, []string{c.Id, dash(c.Tenant), c.Role, c.CreatedAt.AsTime().Format(time.RFC3339), state})
			}
			return a.rows(clientsOut, "ID\tTENANT\tROLE\tCREATED\tSTATE", rows)
		},
	}
	a.outputFlag(list, &clientsOut)
	list.Flags().StringVar(&listTenant, "tenant", "", "only this tenant's")
	var revokeID string
	revoke := &cobra.Command{
		Use: "revoke", Short: "Revoke a client (tokens it already has run out within 24 hours)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := cl.Tokens.RevokeOAuthClient(cmd.Context(), call(cl, &pncpkiv1.RevokeOAuthClientRequest{Id: revokeID})); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "revoked OAuth client %s\n", revokeID)
			return nil
		},
	}
	revoke.Flags().StringVar(&revokeID, "id", "", "client ID")
	revoke.MarkFlagRequired("id")
	c.AddCommand(remote(create), remote(list), remote(revoke))
	return c
}
