package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/store"
)

// org64 is an organization name of 64 characters, the most a name may
// have.
const org64 = "Stadtwerke Musterstadt Energie und Verkehrsbetriebe GmbH & Co KG"

const publicURL = "https://pki.stadtwerke-musterstadt.example"

// TestInitRefusesOversizedHierarchy: a hierarchy whose installation
// answers exceed 5,600 characters is refused by init with the
// certificates named and nothing created (not even the data directory
// or its settings); with --exi-limit 7500 it is
// made, the limit kept in config.json, and contracts budget shows it.
func TestInitRefusesOversizedHierarchy(t *testing.T) {
	if len(org64) != 64 {
		t.Fatalf("org64 has %d characters", len(org64))
	}
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"--data", data, "init", "--org", org64, "--country", "DE", "--public-url", publicURL}
	_, errs, code := cli(t, args...)
	if code != 1 || !strings.Contains(errs, "init refused") || !strings.Contains(errs, "limit of 5600") ||
		!strings.Contains(errs, "mo-sub2") || !strings.Contains(errs, "over (") || !strings.Contains(errs, "--exi-limit") {
		t.Fatalf("init at 5600: exit %d\n%s", code, errs)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("a refused init left its data directory: %v", err)
	}
	mustCLI(t, append(args, "--exi-limit", "7500")...)
	cfg, err := datadir.ReadConfig(data)
	if err != nil || cfg.EXIResponseLimit != 7500 || cfg.PublicURL != publicURL {
		t.Fatalf("config after init: %+v %v", cfg, err)
	}
	out := mustCLI(t, "--data", data, "contracts", "budget")
	if !strings.Contains(out, "2.0.1 (7500)") || !strings.Contains(out, "fits") {
		t.Errorf("budget:\n%s", out)
	}
	var rows []struct {
		Base64   int `json:"base64"`
		Versions []struct {
			Version string `json:"ocpp_version"`
			Fits    bool   `json:"fits"`
		} `json:"versions"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "--data", data, "contracts", "budget", "-o", "json")), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("budget -o json: %v %+v", err, rows)
	}
	if r := rows[0]; r.Base64 <= 5600 || r.Base64 > 7500 || len(r.Versions) != 3 || !r.Versions[0].Fits {
		t.Errorf("budget row %+v", r)
	}
}

// TestCACreateRefusedOverBudget: a new MO Sub-CA 2 whose names push its
// answers over the planned limit is refused before anything is stored;
// the hierarchy stays as it was.
func TestCACreateRefusedOverBudget(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mustCLI(t, "--data", data, "init", "--org", "Stadtwerke Musterstadt Energie GmbH", "--country", "DE", "--public-url", publicURL)
	before, cas := countCertificates(t, data), countCAs(t, data)
	_, errs, code := cli(t, "--data", data, "ca", "create", "--profile", "iso15118-2/mo-sub2", "--name", "mo-sub2-long", "--parent", "mo-sub1",
		"--org", org64, "--cn", org64, "--country", "DE")
	if code != 1 || !strings.Contains(errs, "CA mo-sub2-long refused") || !strings.Contains(errs, "with mo-sub2-long: up to") {
		t.Fatalf("ca create over the limit: exit %d\n%s", code, errs)
	}
	if after := countCertificates(t, data); after != before {
		t.Errorf("a refused CA left %d certificates", after-before)
	}
	if n := countCAs(t, data); n != cas {
		t.Errorf("%d CAs after a refused create, want %d", n, cas)
	}
	// The same CA with short names fits.
	mustCLI(t, "--data", data, "ca", "create", "--profile", "iso15118-2/mo-sub2", "--name", "mo-sub2-b", "--parent", "mo-sub1", "--org", "Stadtwerke", "--country", "DE")
}

func countCAs(t *testing.T, data string) int {
	t.Helper()
	if _, err := os.Stat(filepath.Join(data, "pncpki.db")); err != nil {
		return 0
	}
	d, err := datadir.Open(context.Background(), data, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cas, err := d.Store.CAs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(cas)
}

func countCertificates(t *testing.T, data string) int {
	t.Helper()
	d, err := datadir.Open(context.Background(), data, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	recs, err := d.Store.Certificates(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}
