package main

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pncd.yaml")
	os.WriteFile(file, []byte("listen: file:1\napi-rate: 10\nredis: redis://file\ndata: /from/file\n"), 0o600)
	t.Setenv("PNCPKI_API_RATE", "20")
	t.Setenv("PNCPKI_REDIS", "redis://env")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	listen := fs.String("listen", "default", "")
	rate := fs.Int("api-rate", 0, "")
	redis := fs.String("redis", "", "")
	data := fs.String("data", "", "")
	fs.String("config", "", "")
	if err := fs.Parse([]string{"--redis", "redis://flag"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(fs, file); err != nil {
		t.Fatal(err)
	}
	if *listen != "file:1" || *rate != 20 || *redis != "redis://flag" || *data != "/from/file" {
		t.Errorf("listen %q rate %d redis %q data %q", *listen, *rate, *redis, *data)
	}

	for _, tc := range []struct{ content, env, want string }{
		{"nosuch: 1\n", "", `"nosuch" is not a pncd setting`},
		{"api-rate: many\n", "", "api-rate"},
		{"", "lots", "PNCPKI_API_RATE"},
		{"listen: [\n", "", "yaml"},
	} {
		os.WriteFile(file, []byte(tc.content), 0o600)
		t.Setenv("PNCPKI_API_RATE", tc.env)
		if tc.env == "" {
			os.Unsetenv("PNCPKI_API_RATE")
		}
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.Int("api-rate", 0, "")
		fs.String("listen", "", "")
		if err := applyConfig(fs, file); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q / %q: %v, want an error about %s", tc.content, tc.env, err, tc.want)
		}
	}
}

// TestDeployFiles checks what CI can check of the container setup without
// a Docker engine: the flags in the Dockerfile's entry points and in the
// compose file are pncd's, and the compose file wires pncd to PostgreSQL
// and Redis.
func TestDeployFiles(t *testing.T) {
	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	entries := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])$`).FindAllSubmatch(dockerfile, -1)
	if len(entries) != 2 {
		t.Fatalf("%d ENTRYPOINTs, want 2 (static and pkcs11)", len(entries))
	}
	var compose struct {
		Services map[string]struct {
			Build       string                       `yaml:"build"`
			Image       string                       `yaml:"image"`
			Entrypoint  []string                     `yaml:"entrypoint"`
			Command     []string                     `yaml:"command"`
			Environment map[string]string            `yaml:"environment"`
			DependsOn   map[string]map[string]string `yaml:"depends_on"`
			Healthcheck map[string]any               `yaml:"healthcheck"`
			Ports       []string                     `yaml:"ports"`
			Volumes     []string                     `yaml:"volumes"`
			Deploy      struct{ Replicas int }       `yaml:"deploy"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(false)
	if err := dec.Decode(&compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	pncd, ok := compose.Services["pncd"]
	if !ok || pncd.Build != "." || pncd.Deploy.Replicas < 2 {
		t.Fatalf("compose pncd service: %+v", pncd)
	}
	// Started once what it needs is healthy, and the PKI made.
	for svc, want := range map[string]string{"postgres": "service_healthy", "redis": "service_healthy", "init": "service_completed_successfully"} {
		if got := pncd.DependsOn[svc]["condition"]; got != want {
			t.Errorf("pncd depends on %s with condition %q, want %q", svc, got, want)
		}
		if want == "service_healthy" && compose.Services[svc].Healthcheck == nil {
			t.Errorf("%s has no healthcheck", svc)
		}
	}
	for _, p := range pncd.Ports {
		if strings.Contains(p, ":") {
			t.Errorf("port %q is fixed on the host: replicas would clash", p)
		}
	}
	// The replicas share the init job's keys, read-only, as keys/ of
	// their data directories (the Dockerfile's /data).
	initJob := compose.Services["init"]
	if !slices.Contains(pncd.Volumes, "pki-keys:/data/keys:ro") || !slices.Contains(initJob.Volumes, "pki-keys:/pki/keys") ||
		!slices.Equal(initJob.Entrypoint, []string{"pncctl"}) || !slices.Contains(initJob.Command, "--exists-ok") {
		t.Errorf("keys not shared read-only from the init job: pncd %v, init %v %v %v", pncd.Volumes, initJob.Volumes, initJob.Entrypoint, initJob.Command)
	}
	if !strings.Contains(pncd.Environment["PNCPKI_STORE"], "@postgres:5432/") || !strings.Contains(pncd.Environment["PNCPKI_REDIS"], "//redis:6379") {
		t.Errorf("compose environment %v", pncd.Environment)
	}
	for name := range pncd.Environment {
		if fs := flagNames(t); !fs[strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "PNCPKI_"), "_", "-"))] {
			t.Errorf("compose sets %s, which is no pncd flag's variable", name)
		}
	}
	for _, e := range entries {
		var argv []string
		if err := json.Unmarshal(e[1], &argv); err != nil || argv[0] != "pncd" {
			t.Fatalf("ENTRYPOINT %s: %v", e[1], err)
		}
		args := append(append(argv[1:], pncd.Command...), "-help")
		if err := run(args); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("pncd %v: %v (an unknown flag?)", args, err)
		}
	}
}

func flagNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fs := flag.NewFlagSet("pncd", flag.ContinueOnError)
	defineFlags(fs)
	fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	return names
}

// TestREADMEListsEveryFlag keeps the configuration table complete.
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range flagNames(t) {
		row := "| `--" + name + "` | `" + envName(name) + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README's configuration table has no row %s", row)
		}
	}
}
