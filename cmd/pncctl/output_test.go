package main

import (
	"encoding/json"
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
