package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/store/postgres/pgtest"
)

// TestUnknownWords: pncd refuses words it does not know instead of
// starting a server on the defaults.
func TestUnknownWords(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, `unknown command "serve"`},
		{[]string{"version", "now"}, `unexpected argument "now"`},
		{[]string{"--listen", "127.0.0.1:1", "healthcheck"}, "not ready"},
	} {
		if err := run(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("pncd %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestFirstStartPublicURL: a first start's public URL follows --listen.
func TestFirstStartPublicURL(t *testing.T) {
	if got := publicURLOf("0.0.0.0:22080"); got != "http://127.0.0.1:22080" {
		t.Errorf("publicURLOf(0.0.0.0:22080) = %s", got)
	}
	if got := publicURLOf("127.0.0.1:8080"); got != datadir.DefaultPublicURL {
		t.Errorf("publicURLOf(127.0.0.1:8080) = %s", got)
	}
}

// TestStoreRemembered: a data directory opened with a PostgreSQL store
// remembers it (without the password), and opening it without one uses
// it instead of an empty SQLite file.
func TestStoreRemembered(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	dir := filepath.Join(t.TempDir(), "data")
	d, err := datadir.OpenWith(ctx, dir, url, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Init(ctx, datadir.InitConfig{}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	again, err := datadir.OpenWith(ctx, dir, "", ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if done, err := again.Initialized(ctx); err != nil || !done {
		t.Fatalf("reopened without a store URL: initialised %v, %v", done, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pncpki.db")); !os.IsNotExist(err) {
		t.Error("an SQLite file was made beside the PostgreSQL store")
	}
}

// TestListenMismatch: the warning when the certificates' public URL names
// this host on another port than pncd listens on.
func TestListenMismatch(t *testing.T) {
	for _, tc := range []struct {
		public, listen string
		warn           bool
	}{
		{"http://127.0.0.1:8080", "127.0.0.1:8080", false},
		{"http://127.0.0.1:8080", "127.0.0.1:22080", true},
		{"http://localhost:8080", "0.0.0.0:9090", true},
		{"https://pki.example.com", "0.0.0.0:8080", false}, // behind a proxy
		{"http://127.0.0.1", "127.0.0.1:80", false},
	} {
		if got := listenMismatch(tc.public, tc.listen) != ""; got != tc.warn {
			t.Errorf("listenMismatch(%s, %s) = %v, want %v", tc.public, tc.listen, got, tc.warn)
		}
	}
}
