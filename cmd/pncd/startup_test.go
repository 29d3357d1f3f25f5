package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
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

// TestStartup: what pncd does with its data directory before it serves,
// as a table. It creates a PKI only on the default directory's first
// start or with --init; it refuses a missing or empty directory (a typo,
// an unmounted volume) and one without CAs, creating nothing; a
// directory on PostgreSQL is opened on PostgreSQL without --store; a
// first start's public URL follows --listen, and a later start on
// another port warns. (A refused 'pncctl init --import' leaving nothing
// is TestImportAndOutsideRoot in cmd/pncctl.)
func TestStartup(t *testing.T) {
	ctx := context.Background()
	initialised := func(t *testing.T, storeURL string) string {
		dir := filepath.Join(t.TempDir(), "data")
		d, err := datadir.OpenWith(ctx, dir, storeURL, ca.Options{PublicURL: "http://127.0.0.1:8080"})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Init(ctx, datadir.InitConfig{}); err != nil {
			t.Fatal(err)
		}
		cfg := d.Config
		cfg.PublicURL = "http://127.0.0.1:8080"
		if err := datadir.WriteConfig(dir, cfg); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, tc := range []struct {
		name string
		// dir prepares the data directory ("" for the default one,
		// ./pncd-data in a new working directory) and returns it.
		dir     func(t *testing.T) string
		args    []string
		refused string // part of the error, or "" for a start
		warning string // part of a logged warning
		check   func(t *testing.T, dir string)
	}{{
		name:    "missing directory",
		dir:     func(t *testing.T) string { return filepath.Join(t.TempDir(), "typo") },
		refused: "missing or empty",
		check:   notThere,
	}, {
		name:    "empty directory (an unmounted volume)",
		dir:     func(t *testing.T) string { return t.TempDir() },
		refused: "missing or empty",
		check:   notThere,
	}, {
		name: "directory without CAs",
		dir: func(t *testing.T) string {
			dir := t.TempDir()
			if err := datadir.WriteConfig(dir, datadir.Config{PublicURL: "http://pki.example.com"}); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		refused: "has no CAs",
		check: func(t *testing.T, dir string) {
			if _, err := os.Stat(filepath.Join(dir, AdminTokenFile)); !os.IsNotExist(err) {
				t.Errorf("admin token written: %v", err)
			}
		},
	}, {
		name: "missing directory with --init: public URL follows --listen",
		dir:  func(t *testing.T) string { return filepath.Join(t.TempDir(), "new") },
		args: []string{"--init", "--listen", "127.0.0.1:22080"},
		check: func(t *testing.T, dir string) {
			firstStart(t, dir, "http://127.0.0.1:22080")
		},
	}, {
		name:  "default directory's first start",
		dir:   func(t *testing.T) string { t.Chdir(t.TempDir()); return "" },
		check: func(t *testing.T, dir string) { firstStart(t, "pncd-data", datadir.DefaultPublicURL) },
	}, {
		name:    "saved public URL on another port than --listen",
		dir:     func(t *testing.T) string { return initialised(t, "") },
		args:    []string{"--listen", "127.0.0.1:22080"},
		warning: "127.0.0.1:8080",
	}, {
		name: "directory on PostgreSQL without --store",
		dir:  func(t *testing.T) string { return initialised(t, pgtest.URL(t)) },
		check: func(t *testing.T, dir string) {
			if _, err := os.Stat(filepath.Join(dir, "pncpki.db")); !os.IsNotExist(err) {
				t.Error("an SQLite file was made beside the PostgreSQL store")
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			args := tc.args
			if dir != "" {
				args = append([]string{"--data", dir}, args...)
			}
			fs := flag.NewFlagSet("pncd", flag.ContinueOnError)
			st := defineFlags(fs)
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			d, err := openData(ctx, st, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("err = %v, want %q", err, tc.refused)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				if done, err := d.Initialized(ctx); err != nil || !done {
					t.Errorf("initialised %v, %v", done, err)
				}
				d.Close()
			}
			if tc.warning != "" && (!strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), tc.warning)) {
				t.Errorf("log lacks the warning %q:\n%s", tc.warning, logs.String())
			}
			if tc.check != nil {
				tc.check(t, dir)
			}
		})
	}
}

// notThere: a refused start left the directory missing or empty.
func notThere(t *testing.T, dir string) {
	t.Helper()
	if !datadir.Fresh(dir) {
		t.Errorf("%s was written to", dir)
	}
}

// firstStart: a demo PKI with an administrator token and the public URL.
func firstStart(t *testing.T, dir, publicURL string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, AdminTokenFile)); err != nil {
		t.Errorf("no admin token: %v", err)
	}
	if cfg, err := datadir.ReadConfig(dir); err != nil || cfg.PublicURL != publicURL {
		t.Errorf("public URL %q, %v; want %s", cfg.PublicURL, err, publicURL)
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
