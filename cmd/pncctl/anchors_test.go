package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestProvisioningAnchors: local provisioning put goes through the
// in-process API with the data directory's trust anchors: with an OEM
// root held, a provisioning chain leading to it is registered and one
// from another OEM's PKI is refused.
func TestProvisioningAnchors(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "pncd-data")
	ours, theirs := filepath.Join(dir, "ours"), filepath.Join(dir, "theirs")
	mustCLI(t, "testpki", "--out", ours, "--seed", "1")
	mustCLI(t, "testpki", "--out", theirs, "--seed", "2")
	mustCLI(t, "--data", data, "init", "--import",
		"name=oem-root,cert="+filepath.Join(ours, "certs", "oem-root.pem")+",key=softkms:path="+filepath.Join(ours, "keys", "oem-root.key"))
	mustCLI(t, "--data", data, "tenants", "create", "--name", "oem", "--kind", "oem")
	if out := mustCLI(t, "--data", data, "provisioning", "put", "--cert", filepath.Join(ours, "chains", "oem-prov.pem"), "--tenant", "oem"); !strings.Contains(out, "registered") {
		t.Errorf("provisioning put under the held OEM root: %s", out)
	}
	if _, errs, code := cli(t, "--data", data, "provisioning", "put", "--cert", filepath.Join(theirs, "chains", "oem-prov.pem"), "--tenant", "oem"); code != exitRefused {
		t.Errorf("a chain of another OEM's PKI: exit %d %s", code, errs)
	}
}
