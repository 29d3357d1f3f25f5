package main

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
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
		// YAML: the same rows with the same keys.
		var yrows []map[string]any
		yout := mustCLI(t, append(append([]string{"--data", data}, tc.args...), "-o", "yaml")...)
		if err := yaml.Unmarshal([]byte(yout), &yrows); err != nil || len(yrows) != len(rows) || tc.key != "" && fmt.Sprint(yrows[0][tc.key]) != tc.want {
			t.Errorf("%v -o yaml: %v\n%s", tc.args, err, yout)
		}
	}
	if _, errs, code := cli(t, "--data", data, "tenants", "list", "-o", "xml"); code != exitUsage || !strings.Contains(errs, "yaml") {
		t.Errorf("-o xml: exit %d %s", code, errs)
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
		{[]string{"revoke", "DEADBEEF"}, exitNotFound},
		{[]string{"revoke"}, exitUsage},
		{[]string{"revoke", "DEADBEEF", "--serial", "DEADBEEF"}, exitUsage},
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

// TestInspect: inspect tells each kind of file apart and shows it, with
// names readable (DC=CPO, not an OID) and the certificate's lint result.
func TestInspect(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "pncd-data")
	mustCLI(t, "--data", data, "init", "--org", "Stadtwerke Musterstadt Energie GmbH", "--country", "DE")
	csr := writeCSR(t, dir, "DE*SWM*E1*1")
	leaf := filepath.Join(dir, "leaf.pem")
	os.WriteFile(leaf, []byte(mustCLI(t, "--data", data, "issue", "--profile", "iso15118-2/secc", "--csr", csr)), 0o644)
	crl := filepath.Join(dir, "sub2.crl")
	mustCLI(t, "--data", data, "crl", "--issuer", "cpo-sub2", "--out", crl)
	certs, err := datadir.ReadCertificates(leaf)
	if err != nil {
		t.Fatal(err)
	}
	d, err := datadir.Open(context.Background(), data, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sub2, _ := d.CA.Authority("cpo-sub2")
	d.Close()
	req, err := ocsp.MarshalRequest(crypto.SHA256, sub2.Cert, certs[0].SerialNumber, nil)
	if err != nil {
		t.Fatal(err)
	}
	reqFile := filepath.Join(dir, "req.der")
	os.WriteFile(reqFile, req, 0o644)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("not a PKI object"), 0o644)
	for _, tc := range []struct {
		file, kind, want string
	}{
		{leaf, "certificate", "DC=CPO,CN=DE*SWM*E1*1"},
		{csr, "csr", "self-signature"},
		{crl, "crl", "DC=V2G,C=DE,O=Stadtwerke Musterstadt Energie GmbH,CN=CPO Sub-CA 2"},
		{reqFile, "ocsp_request", strings.ToUpper(ca.SerialHex(certs[0].SerialNumber))},
	} {
		out := mustCLI(t, "inspect", tc.file)
		if !strings.HasPrefix(out, tc.kind+"\n") || !strings.Contains(out, tc.want) {
			t.Errorf("inspect %s:\n%s", filepath.Base(tc.file), out)
		}
		var objs []map[string]any
		if err := json.Unmarshal([]byte(mustCLI(t, "inspect", tc.file, "-o", "json")), &objs); err != nil || len(objs) != 1 || objs[0]["kind"] != tc.kind {
			t.Errorf("inspect %s -o json: %v %v", filepath.Base(tc.file), objs, err)
		}
	}
	if out := mustCLI(t, "inspect", leaf); !strings.Contains(out, "iso15118-2/secc, 0 violation(s)") {
		t.Errorf("inspect shows no lint result:\n%s", out)
	}
	if _, errs, code := cli(t, "inspect", garbage); code != exitRefused || !strings.Contains(errs, "neither") {
		t.Errorf("inspect garbage: exit %d %s", code, errs)
	}
}

// FuzzInspect: inspect never panics, whatever the file holds.
func FuzzInspect(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Add([]byte("8098"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inspect(data, policies.SECCBoth)
	})
}

// TestQuiet: --quiet leaves results on stdout and drops the hints on
// stderr.
func TestQuiet(t *testing.T) {
	data := filepath.Join(t.TempDir(), "pncd-data")
	out, errs, code := cli(t, "--data", data, "--quiet", "init")
	if code != 0 || !strings.Contains(out, "v2g-root") || errs != "" {
		t.Errorf("init --quiet: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, errs, _ := cli(t, "--data", filepath.Join(t.TempDir(), "other"), "init"); !strings.Contains(errs, "administrator token") {
		t.Errorf("init without --quiet gives no hint: %q", errs)
	}
}

// TestCompletion: the shell completes profile, CA, tenant and station
// names.
func TestCompletion(t *testing.T) {
	data := filepath.Join(t.TempDir(), "pncd-data")
	mustCLI(t, "--data", data, "init")
	mustCLI(t, "--data", data, "tenants", "create", "--name", "swm-cpo", "--kind", "cpo", "--operator-id", "DE*SWM")
	mustCLI(t, "--data", data, "stations", "put", "--id", "CS-MUSTER-1", "--tenant", "swm-cpo", "--ocpp", "2.0.1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"issue", "--profile", ""}, "iso15118-2/secc"},
		{[]string{"crl", "--issuer", ""}, "cpo-sub2"},
		{[]string{"issue", "--tenant", ""}, "swm-cpo"},
		{[]string{"stations", "show", "--id", ""}, "CS-MUSTER-1"},
	} {
		out := mustCLI(t, append([]string{"--data", data, "__complete"}, tc.args...)...)
		if !strings.Contains(out, tc.want) {
			t.Errorf("complete %v:\n%s", tc.args, out)
		}
	}
}
