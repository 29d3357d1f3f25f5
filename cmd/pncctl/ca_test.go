package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// ca list shows each CA's remaining validity and what depends on it: its
// sub-CAs and its live certificates, with the last one's expiry.
func TestCAListLifetimes(t *testing.T) {
	data := filepath.Join(t.TempDir(), "pncd-data")
	mustCLI(t, "--data", data, "init", "--org", "Stadtwerke Musterstadt Ladeinfrastruktur GmbH", "--public-url", "https://pki.stadtwerke-musterstadt.de")
	type row struct {
		Name       string    `json:"name"`
		DaysLeft   *int      `json:"days_left"`
		SubCAs     []string  `json:"sub_cas"`
		Live       int       `json:"live_certificates"`
		LastExpiry time.Time `json:"last_expiry"`
	}
	list := func() map[string]row {
		t.Helper()
		var rows []row
		if err := json.Unmarshal([]byte(mustCLI(t, "--data", data, "ca", "list", "-o", "json")), &rows); err != nil {
			t.Fatal(err)
		}
		m := map[string]row{}
		for _, r := range rows {
			m[r.Name] = r
		}
		return m
	}
	before := list()
	sub2, sub1 := before["cpo-sub2"], before["cpo-sub1"]
	if sub2.DaysLeft == nil || *sub2.DaysLeft < 360 || *sub2.DaysLeft > 366 {
		t.Errorf("cpo-sub2 days left: %v", sub2.DaysLeft)
	}
	if !slices.Contains(sub1.SubCAs, "cpo-sub2") || sub1.Live == 0 || len(sub2.SubCAs) != 0 {
		t.Errorf("cpo-sub1 %+v, cpo-sub2 %+v", sub1, sub2)
	}
	mustCLI(t, "--data", data, "tenants", "create", "--name", "cpo", "--kind", "cpo", "--operator-id", "DE*MUS", "--org", "Stadtwerke Musterstadt Ladeinfrastruktur GmbH")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "DE*MUS*E1*1", Organization: []string{"Stadtwerke Musterstadt Ladeinfrastruktur GmbH"}}}, key)
	csr := filepath.Join(t.TempDir(), "s.csr")
	os.WriteFile(csr, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644)
	mustCLI(t, "--data", data, "issue", "--profile", "iso15118-2/secc", "--csr", csr, "--tenant", "cpo")
	after := list()["cpo-sub2"]
	if after.Live != sub2.Live+1 || after.LastExpiry.IsZero() {
		t.Errorf("after issuing an SECC leaf: cpo-sub2 %+v (before %+v)", after, sub2)
	}
}
