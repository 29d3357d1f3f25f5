package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJSONOutput: every list command takes -o json and prints a JSON
// array whose keys are snake_case, with the rows the table shows.
func TestJSONOutput(t *testing.T) {
	data := filepath.Join(t.TempDir(), "pncd-data")
	mustCLI(t, "--data", data, "init", "--org", "Stadtwerke Musterstadt Energie GmbH", "--country", "DE")
	mustCLI(t, "--data", data, "tenants", "create", "--name", "swm-cpo", "--kind", "cpo", "--operator-id", "DE*SWM", "--org", "Stadtwerke Musterstadt Energie GmbH")
	mustCLI(t, "--data", data, "oauth-clients", "create", "--id", "csms", "--tenant", "swm-cpo")
	for _, tc := range []struct {
		args []string
		key  string // a key the first object has
		want string // its value
	}{
		{[]string{"tenants", "list"}, "operator_ids", "DESWM"},
		{[]string{"oauth-clients", "list"}, "tenant", "swm-cpo"},
		{[]string{"profiles"}, "profile", "api/client"},
		{[]string{"provisioning", "list"}, "", ""},
		{[]string{"stations", "list"}, "", ""},
		{[]string{"ca", "list"}, "name", "v2g-root"},
	} {
		out := mustCLI(t, append(append([]string{"--data", data}, tc.args...), "-o", "json")...)
		var rows []map[string]any
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Errorf("%v -o json: %v\n%s", tc.args, err, out)
			continue
		}
		for _, r := range rows {
			for k := range r {
				if k != strings.ToLower(k) || strings.Contains(k, " ") {
					t.Errorf("%v: key %q is not snake_case", tc.args, k)
				}
			}
		}
		if tc.key != "" && (len(rows) == 0 || rows[0][tc.key] != tc.want) {
			t.Errorf("%v: first row %v, want %s=%s", tc.args, rows, tc.key, tc.want)
		}
	}
}

// TestExitCodes: each class of failure has its own exit status.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "pncd-data")
	mustCLI(t, "--data", data, "init", "--org", "Stadtwerke Musterstadt Energie GmbH")
	leaf := filepath.Join(dir, "leaf.pem")
	os.WriteFile(leaf, []byte(mustCLI(t, "--data", data, "issue", "--profile", "iso15118-2/secc", "--csr", writeCSR(t, dir, "DE*SWM*E1*1"))), 0o644)
	mustCLI(t, "--data", data, "revoke", "--cert", leaf)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"ca", "list"}, exitOK},
		{[]string{"lint", leaf, "--profile", "iso15118-2/contract"}, exitRefused},
		{[]string{"issue", "--profile", "iso15118-2/secc", "--csr", writeCSR(t, dir, "NOT AN EVSEID")}, exitRefused},
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"ca", "list", "--no-such-flag"}, exitUsage},
		{[]string{"issue", "--profile", "iso15118-2/secc"}, exitUsage},
		{[]string{"certs", "show"}, exitUsage},
		{[]string{"lint", filepath.Join(dir, "missing.pem")}, exitUsage},
		{[]string{"certs", "show", "DEADBEEF"}, exitNotFound},
		{[]string{"revoke", "--serial", "DEADBEEF"}, exitNotFound},
		{[]string{"crl", "--issuer", "no-such-ca"}, exitNotFound},
		{[]string{"--store", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", "certs", "list"}, exitUnavailable},
		{[]string{"--server", "http://127.0.0.1:1", "--token-file", leaf, "certs", "list"}, exitUnavailable},
	} {
		_, errs, code := cli(t, append([]string{"--data", data}, tc.args...)...)
		if code != tc.want {
			t.Errorf("pncctl %v: exit %d, want %d\n%s", tc.args, code, tc.want, errs)
		}
	}
}
