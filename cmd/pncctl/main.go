// Command pncctl administers a pncpki data directory: it creates and imports
// CAs, issues and revokes certificates, writes CRLs, lints certificates and
// writes test PKIs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/buildinfo"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// exitError carries an exit code without printing usage.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	root := newRoot(os.Stdout, os.Stderr)
	if err := root.Execute(); err != nil {
		if !errors.As(err, new(exitError)) {
			printError(os.Stderr, err)
		}
		os.Exit(exitCode(err))
	}
}

// printError prints an error, with the violations of a *ca.Error one per
// line.
func printError(w io.Writer, err error) {
	var ce *ca.Error
	if errors.As(err, &ce) {
		fmt.Fprintf(w, "error: %s: %s\n", ce.Code, ce.Message)
		for _, v := range ce.Violations {
			fmt.Fprintf(w, "  - %s\n", v)
		}
		if ce.Err != nil {
			fmt.Fprintf(w, "  cause: %v\n", ce.Err)
		}
		return
	}
	fmt.Fprintf(w, "error: %v\n", err)
}

type app struct {
	data      string
	storeURL  string
	seccForms string
	// exiLimit is --exi-limit of the setup commands (budget.go); with it
	// set, open checks every CA created or imported against the
	// hierarchy's planned exiResponse limit.
	exiLimit int
	// Remote mode (remote.go).
	server, tokenFile, serverCA string
	quiet, asYAML               bool
	out, errw                   io.Writer
}

func newRoot(out, errw io.Writer) *cobra.Command {
	a := &app{out: out, errw: errw}
	root := &cobra.Command{
		Use:           "pncctl",
		Short:         "Administer a pncpki Plug and Charge PKI",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Every change pncctl makes is audited under the OS user.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			user := os.Getenv("USER")
			if user == "" {
				user = "unknown"
			}
			cmd.SetContext(store.WithActor(cmd.Context(), "pncctl:"+user))
			if a.quiet {
				a.errw = io.Discard // hints and progress; errors still go to stderr
			}
			return a.checkRemote(cmd)
		},
	}
	root.SetOut(out)
	root.SetErr(errw)
	root.PersistentFlags().StringVar(&a.data, "data", envOr("PNCPKI_DATA", "./pncd-data"), "data directory (SQLite store and file keys) (default $PNCPKI_DATA, else ./pncd-data)")
	root.PersistentFlags().StringVar(&a.storeURL, "store", os.Getenv("PNCPKI_STORE"), "PostgreSQL URL of the store (default $PNCPKI_STORE; empty: SQLite in the data directory)")
	root.PersistentFlags().StringVar(&a.seccForms, "secc-cn", "both", "SECC leaf CN forms accepted: both, secc-id or evseid")
	root.PersistentFlags().StringVar(&a.server, "server", os.Getenv("PNCPKI_SERVER"), "URL of a pncd to work on through its API instead of a local data directory (default $PNCPKI_SERVER)")
	root.PersistentFlags().StringVar(&a.tokenFile, "token-file", os.Getenv("PNCPKI_TOKEN_FILE"), "file holding the API token for --server (default $PNCPKI_TOKEN_FILE)")
	root.PersistentFlags().BoolVarP(&a.quiet, "quiet", "q", false, "print results only: no hints or progress on stderr (errors still are)")
	root.PersistentFlags().StringVar(&a.serverCA, "server-ca", "", "PEM CAs to verify --server's TLS certificate with (default: the system roots)")
	root.AddCommand(a.initCmd(), a.caCmd(), a.issueCmd(), a.revokeCmd(), a.certsCmd(), a.crlCmd(),
		a.lintCmd(), a.testpkiCmd(), a.profilesCmd(), a.versionCmd(), a.tenantsCmd(), a.stationsCmd(), a.contractsCmd(), a.provisioningCmd(), a.exiCmd(), a.oauthCmd(), a.ocspCmd(), a.auditCmd(), a.tokenCmd(), a.backupCmd(), a.restoreCmd(), a.inspectCmd())
	markUsage(root)
	a.completions(root)
	return root
}

func (a *app) forms() (policies.SECCForms, error) {
	switch a.seccForms {
	case "both", "":
		return policies.SECCBoth, nil
	case "secc-id":
		return policies.SECCOnlyID, nil
	case "evseid":
		return policies.SECCOnlyEVSEID, nil
	}
	return 0, fmt.Errorf("--secc-cn %q: want both, secc-id or evseid", a.seccForms)
}

// open opens the data directory; it refuses one that was never initialised
// unless allowEmpty.
func (a *app) open(ctx context.Context, allowEmpty bool) (*datadir.Dir, error) {
	return a.openWith(ctx, allowEmpty, ca.Options{})
}

// openWith is open with more CA service options.
func (a *app) openWith(ctx context.Context, allowEmpty bool, opts ca.Options) (*datadir.Dir, error) {
	forms, err := a.forms()
	if err != nil {
		return nil, err
	}
	if !allowEmpty {
		if _, err := os.Stat(a.data); err != nil {
			return nil, fmt.Errorf("data directory %s: %w (run 'pncctl init' first)", a.data, err)
		}
	}
	opts.SECCForms = forms
	return datadir.OpenWith(ctx, a.data, a.storeURL, opts)
}

// openPlanned is open for the setup commands: every CA they create or
// import is checked against the planned exiResponse limit first.
func (a *app) openPlanned(ctx context.Context, allowEmpty bool) (*datadir.Dir, error) {
	limit, err := a.planLimit()
	if err != nil {
		return nil, err
	}
	var svc *ca.Service
	d, err := a.openWith(ctx, allowEmpty, ca.Options{CheckHierarchy: checkHierarchy(&svc, limit)})
	if err != nil {
		return nil, err
	}
	svc = d.CA
	return d, nil
}

func (a *app) table(header string, rows [][]string) {
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// rows prints a table, or with output "json" the same rows as objects
// whose keys are the header's columns in snake_case ("-" is null): the
// JSON form of the commands whose rows are what they show.
func (a *app) rows(output, header string, rows [][]string) error {
	if !structured(output) {
		a.table(header, rows)
		return nil
	}
	cols := strings.Split(header, "\t")
	for i, c := range cols {
		cols[i] = strings.ReplaceAll(strings.ToLower(c), " ", "_")
	}
	out := make([]map[string]any, 0, len(rows))
	for _, r := range rows {
		o := map[string]any{}
		for i, v := range r {
			if v == "-" {
				o[cols[i]] = nil
			} else {
				o[cols[i]] = v
			}
		}
		out = append(out, o)
	}
	return a.json(out)
}

// outputFlag adds -o table|json to a command whose rows go through rows.
func (a *app) outputFlag(c *cobra.Command, output *string) {
	c.Flags().StringVarP(output, "output", "o", "table", "table, json or yaml")
	prev := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, args []string) error {
		if prev != nil {
			if err := prev(cmd, args); err != nil {
				return err
			}
		}
		return a.checkOutput(*output, "table", "json")
	}
}

// writeOut writes data to the file path, or to standard output.
func (a *app) writeOut(path string, data []byte) error {
	if path != "" {
		return os.WriteFile(path, data, 0o644)
	}
	_, err := a.out.Write(data)
	return err
}

// json prints v as JSON, or as YAML with the same keys when -o yaml asked
// for it (through JSON, so that the json tags name the keys).
func (a *app) json(v any) error {
	if a.asYAML {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var tree any
		if err := json.Unmarshal(data, &tree); err != nil {
			return err
		}
		return yaml.NewEncoder(a.out).Encode(tree)
	}
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// checkOutput checks -o against the forms a command prints; wherever JSON
// is one, YAML (the same keys) is too. a.json then writes the form asked.
func (a *app) checkOutput(o string, allowed ...string) error {
	if slices.Contains(allowed, "json") {
		allowed = append(allowed, "yaml")
	}
	if !slices.Contains(allowed, o) {
		return usageError{fmt.Errorf("-o %q: want one of %s", o, strings.Join(allowed, ", "))}
	}
	a.asYAML = o == "yaml"
	return nil
}

// structured reports whether -o asks for JSON or YAML.
func structured(o string) bool { return o == "json" || o == "yaml" }

// envOr is the environment variable name, or def when it is unset or
// empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{Use: "version", Short: "Print the version of pncctl",
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(a.out, buildinfo.Read())
			return nil
		}}
}
