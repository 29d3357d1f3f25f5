package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
)

// budget is the largest installation answer of every combination of CPS
// chain and MO Sub-CA 2 of the hierarchy auths (svc's CAs, and maybe one
// about to be created).
func budget(ctx context.Context, svc *ca.Service, auths []*ca.Authority) ([]contract.Combination, error) {
	cps, err := contract.CPSChains(ctx, svc, auths, datadir.CPSLeafCN)
	if err != nil {
		return nil, err
	}
	return contract.Budget(svc, auths, cps)
}

// exiLimitFlag adds --exi-limit to a setup command.
func (a *app) exiLimitFlag(c *cobra.Command) {
	c.Flags().IntVar(&a.exiLimit, "exi-limit", 0, fmt.Sprintf("exiResponse limit (base64 characters) to plan the hierarchy for, saved in DIR/config.json (default: the saved one, else %d); every installation answer must fit it", datadir.DefaultEXIResponseLimit))
}

// planLimit is the exiResponse limit a setup command checks the hierarchy
// against: --exi-limit, which it saves in the data directory's settings,
// or the saved one.
func (a *app) planLimit() (int, error) {
	cfg, err := datadir.ReadConfig(a.data)
	if err != nil {
		return 0, err
	}
	if a.exiLimit == 0 || a.exiLimit == cfg.EXIResponseLimit {
		return cfg.EXILimit(), nil
	}
	cfg.EXIResponseLimit = a.exiLimit
	if err := cfg.Validate(); err != nil {
		return 0, fmt.Errorf("--exi-limit: %w", err)
	}
	if err := os.MkdirAll(a.data, 0o700); err != nil {
		return 0, err
	}
	if err := datadir.WriteConfig(a.data, cfg); err != nil {
		return 0, err
	}
	return a.exiLimit, nil
}

// dryRun creates the default hierarchy cfg in a temporary data directory
// with the data directory's public URL and checks its installation
// answers against limit: init refuses a hierarchy before it makes any of
// it. The sizes are those the real one will have, as every certificate is
// counted with its longest signature.
func dryRun(ctx context.Context, publicURL string, cfg datadir.InitConfig, limit int) error {
	tmp, err := os.MkdirTemp("", "pncctl-plan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	d, err := datadir.Open(ctx, tmp, ca.Options{PublicURL: publicURL})
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Init(ctx, cfg); err != nil {
		return err
	}
	combs, err := budget(ctx, d.CA, d.CA.Authorities())
	if err != nil {
		return err
	}
	return contract.CheckBudget(combs, limit)
}

// checkHierarchy is ca.Options.CheckHierarchy for the setup commands: a CA
// whose hierarchy would give an installation answer over limit is refused
// before anything is stored.
func checkHierarchy(svc **ca.Service, limit int) func(context.Context, *ca.Authority, []*ca.Authority) error {
	return func(ctx context.Context, planned *ca.Authority, all []*ca.Authority) error {
		auths := append(slices.DeleteFunc(slices.Clone(all), func(a *ca.Authority) bool { return a.Name == planned.Name }), planned)
		combs, err := budget(ctx, *svc, auths)
		if err != nil {
			return err
		}
		if err := contract.CheckBudget(combs, limit); err != nil {
			return fmt.Errorf("CA %s refused: %w", planned.Name, err)
		}
		return nil
	}
}

// budgetCmd is 'pncctl contracts budget'.
func (a *app) budgetCmd() *cobra.Command {
	var output string
	var cpsCerts []string
	c := &cobra.Command{
		Use:   "budget",
		Short: "Print the largest installation answer of every CPS chain and MO Sub-CA 2 combination, against each OCPP version's exiResponse limit",
		Long: `budget sizes the largest ISO 15118-2 CertificateInstallationRes or
CertificateUpdateRes a vehicle can get from this hierarchy: for every CPS
chain (each live CPS leaf, or the largest leaf a CPS Sub-CA 2 without one
can issue, and each --cps-cert) and every MO Sub-CA 2, with the longest eMAID, SessionID,
validity and signatures. A station receives it base64-encoded in
exiResponse: at most 5,600 characters on OCPP 2.0.1 and 1.6 (or the limit
planned with --exi-limit, or one a station reports), 17,000 on 2.1.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.checkOutput(output, "table", "json"); err != nil {
				return err
			}
			ctx := cmd.Context()
			d, err := a.open(ctx, false)
			if err != nil {
				return err
			}
			defer d.Close()
			cps, err := contract.CPSChains(ctx, d.CA, d.CA.Authorities(), datadir.CPSLeafCN)
			if err != nil {
				return err
			}
			for _, f := range cpsCerts {
				chain, err := datadir.ReadCertificates(f)
				if err != nil {
					return fmt.Errorf("--cps-cert: %w", err)
				}
				cps = append(cps, contract.SizeCPS(chain))
			}
			combs, err := contract.Budget(d.CA, d.CA.Authorities(), cps)
			if err != nil {
				return err
			}
			planned := d.Config.EXILimit()
			type version struct {
				Version string `json:"ocpp_version"`
				Limit   int    `json:"limit"`
				Fits    bool   `json:"fits"`
				Over    int    `json:"over,omitempty"`
			}
			versions := func(c contract.Combination) []version {
				var out []version
				for _, v := range []struct {
					name  string
					limit int
				}{{"2.0.1", planned}, {"1.6", planned}, {"2.1", contract.LimitOCPP21}} {
					out = append(out, version{v.name, v.limit, c.Over(v.limit) == 0, c.Over(v.limit)})
				}
				return out
			}
			if structured(output) {
				type row struct {
					contract.Combination
					Versions []version `json:"versions"`
				}
				rows := []row{}
				for _, c := range combs {
					rows = append(rows, row{c, versions(c)})
				}
				return a.json(rows)
			}
			if len(combs) == 0 {
				fmt.Fprintln(a.errw, "no combination: the hierarchy has no CPS Sub-CA 2 or no MO Sub-CA 2 that can issue")
				return nil
			}
			var t [][]string
			for _, c := range combs {
				r := []string{c.CPS, c.MO, fmt.Sprint(c.Bytes), fmt.Sprint(c.Base64)}
				for _, v := range versions(c) {
					cell := "fits"
					if !v.Fits {
						cell = fmt.Sprintf("%d over", v.Over)
					}
					r = append(r, cell)
				}
				var certs []string
				for _, s := range c.Certificates {
					certs = append(certs, fmt.Sprintf("%s %d", s.Name, s.Bytes))
				}
				t = append(t, append(r, strings.Join(certs, ", ")))
			}
			a.table(fmt.Sprintf("CPS\tMO\tEXI BYTES\tBASE64\t2.0.1 (%d)\t1.6 (%d)\t2.1 (%d)\tCERTIFICATES (BYTES)", planned, planned, contract.LimitOCPP21), t)
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	c.Flags().StringArrayVar(&cpsCerts, "cps-cert", nil, "PEM chain (leaf first) of a CPS whose leaf this data directory did not issue, as pncd's --cps-cert; repeatable")
	return c
}
