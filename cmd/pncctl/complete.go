package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/policies"
)

// completions registers shell completion of the names flags take: the
// profiles, and through the API (the data directory's when there is one,
// or --server's) the CAs, tenants and stations. 'pncctl completion bash'
// prints the script.
func (a *app) completions(cmd *cobra.Command) {
	// fromAPI completes with names the API lists.
	fromAPI := func(list func(context.Context, *client) ([]string, error)) cobra.CompletionFunc {
		return func(c *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if _, err := os.Stat(a.data); err != nil && a.server == "" {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			cl, done, err := a.api(c.Context())
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			defer done()
			names, err := list(c.Context(), cl)
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		}
	}
	byFlag := map[string]cobra.CompletionFunc{
		"profile": func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var names []string
			for _, p := range policies.All() {
				names = append(names, p.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		"issuer": fromAPI(func(ctx context.Context, c *client) ([]string, error) {
			resp, err := c.Authorities.ListAuthorities(ctx, call(c, &pncpkiv1.ListAuthoritiesRequest{}))
			if err != nil {
				return nil, err
			}
			var names []string
			for _, au := range resp.Msg.Authorities {
				names = append(names, au.Name)
			}
			return names, nil
		}),
		"tenant": fromAPI(func(ctx context.Context, c *client) ([]string, error) {
			resp, err := c.Tenants.ListTenants(ctx, call(c, &pncpkiv1.ListTenantsRequest{}))
			if err != nil {
				return nil, err
			}
			var names []string
			for _, t := range resp.Msg.Tenants {
				names = append(names, t.Name)
			}
			return names, nil
		}),
		"station": fromAPI(func(ctx context.Context, c *client) ([]string, error) {
			resp, err := c.Stations.ListStations(ctx, call(c, &pncpkiv1.ListStationsRequest{}))
			if err != nil {
				return nil, err
			}
			var names []string
			for _, s := range resp.Msg.Stations {
				names = append(names, s.Id)
			}
			return names, nil
		}),
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for name, f := range byFlag {
			if c.LocalNonPersistentFlags().Lookup(name) != nil {
				c.RegisterFlagCompletionFunc(name, f)
			}
		}
		// The stations commands name a station with --id.
		if c.HasParent() && c.Parent().Name() == "stations" && c.Name() != "put" && c.LocalNonPersistentFlags().Lookup("id") != nil {
			c.RegisterFlagCompletionFunc("id", byFlag["station"])
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cmd)
}
