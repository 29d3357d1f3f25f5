package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The backup and restore commands as an operator runs them: a backup
// without keys, one with keys, a restore that needs --data and the
// passphrase, and a restored directory that audit verify accepts.
func TestBackupRestoreCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "pncd-data")
	mustCLI(t, "--data", data, "init", "--org", "Stadtwerke Musterstadt Ladeinfrastruktur GmbH", "--public-url", "https://pki.stadtwerke-musterstadt.de")
	mustCLI(t, "--data", data, "audit", "checkpoint", "--out", filepath.Join(dir, "cp.json"))

	plain := filepath.Join(dir, "plain.tgz")
	if out := mustCLI(t, "--data", data, "backup", "--out", plain); !strings.Contains(out, "private keys not included") {
		t.Errorf("backup without --keys: %s", out)
	}
	if _, errs, code := cli(t, "--data", data, "backup", "--out", filepath.Join(dir, "k.tgz"), "--keys"); code == 0 || !strings.Contains(errs, "passphrase") {
		t.Errorf("--keys without a passphrase: exit %d %s", code, errs)
	}
	passFile := filepath.Join(dir, "pass")
	os.WriteFile(passFile, []byte("Tresor 3, Fach 12\n"), 0o600)
	withKeys := filepath.Join(dir, "keys.tgz")
	if out := mustCLI(t, "--data", data, "backup", "--out", withKeys, "--keys", "--passphrase-file", passFile); !strings.Contains(out, "encrypted") {
		t.Errorf("backup --keys: %s", out)
	}
	if st, err := os.Stat(withKeys); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v", st, err)
	}

	t.Setenv("PNCPKI_DATA", "")
	if _, errs, code := cli(t, "restore", withKeys); code == 0 || !strings.Contains(errs, "--data DIR is required") {
		t.Errorf("restore without --data: exit %d %s", code, errs)
	}
	restored := filepath.Join(dir, "restored")
	if _, errs, code := cli(t, "--data", restored, "restore", withKeys); code == 0 || !strings.Contains(errs, "passphrase") {
		t.Errorf("restore without the passphrase: exit %d %s", code, errs)
	}
	out := mustCLI(t, "--data", restored, "restore", withKeys, "--passphrase-file", passFile)
	if !strings.Contains(out, "audit chain intact (") || !strings.Contains(out, "admin.token restored") {
		t.Errorf("restore: %s", out)
	}
	if out := mustCLI(t, "--data", restored, "audit", "verify"); !strings.Contains(out, "1 signed checkpoints") {
		t.Errorf("audit verify on the restored directory: %s", out)
	}
	if _, errs, code := cli(t, "--data", restored, "restore", plain); code == 0 || !strings.Contains(errs, "not empty") {
		t.Errorf("restore over a data directory: exit %d %s", code, errs)
	}
}
