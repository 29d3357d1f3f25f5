package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
)

// completions registers shell completion of the names flags take: the
// profiles, and from the data directory (when there is one) its CAs,
// tenants and stations. 'pncctl completion bash' prints the script.
func (a *app) completions(cmd *cobra.Command) {
	// fromDir completes with names read from the data directory.
	fromDir := func(list func(context.Context, *datadir.Dir) ([]string, error)) cobra.CompletionFunc {
		return func(c *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if _, err := os.Stat(a.data); err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			d, err := a.open(c.Context(), false)
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			defer d.Close()
			names, err := list(c.Context(), d)
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
		"issuer": fromDir(func(_ context.Context, d *datadir.Dir) ([]string, error) {
			var names []string
			for _, c := range d.CA.Authorities() {
				names = append(names, c.Name)
			}
			return names, nil
		}),
		"tenant": fromDir(func(ctx context.Context, d *datadir.Dir) ([]string, error) {
			ts, err := d.Store.Tenants(ctx)
			var names []string
			for _, t := range ts {
				names = append(names, t.Name)
			}
			return names, err
		}),
		"station": fromDir(func(ctx context.Context, d *datadir.Dir) ([]string, error) {
			ss, err := d.Store.ListStations(ctx, "")
			var names []string
			for _, s := range ss {
				names = append(names, s.ID)
			}
			return names, err
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
