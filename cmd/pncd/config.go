package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxConfigFile bounds the YAML configuration file.
const maxConfigFile = 1 << 20

// envName is the environment variable of a flag: PNCPKI_ and the flag
// name in capitals with dashes as underscores (--ocpp-listen is
// PNCPKI_OCPP_LISTEN).
func envName(flagName string) string {
	return "PNCPKI_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// usage prints pncd's words and flags, each flag with the environment
// variable that sets it too.
func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: pncd [flags] | pncd version | pncd healthcheck [--listen ADDR]\n\n"+
		"Every flag can also come from its PNCPKI_* variable or the --config file; the command line wins.\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintf(w, "   (%s)\n    \t%s", envName(f.Name), strings.ReplaceAll(help, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// applyConfig gives every flag not set on the command line its value from
// the environment, or else from the YAML file (keys are flag names):
// command line, then environment, then file.
func applyConfig(fs *flag.FlagSet, file string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	values := map[string]any{}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		if len(data) > maxConfigFile {
			return fmt.Errorf("--config %s: larger than %d bytes", file, maxConfigFile)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&values); err != nil && !errors.Is(err, io.EOF) { // EOF: an empty file
			return fmt.Errorf("--config %s: %w", file, err)
		}
		for k := range values {
			if fs.Lookup(k) == nil || k == "config" {
				return fmt.Errorf("--config %s: %q is not a pncd setting", file, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil || f.Name == "config" {
			return
		}
		source, value, ok := "", "", false
		if v, found := os.LookupEnv(envName(f.Name)); found {
			source, value, ok = envName(f.Name), v, true
		} else if v, found := values[f.Name]; found {
			source, value, ok = file+": "+f.Name, fmt.Sprint(v), true
		}
		if ok {
			if e := fs.Set(f.Name, value); e != nil {
				err = fmt.Errorf("%s: %w", source, e)
			}
		}
	})
	return err
}
