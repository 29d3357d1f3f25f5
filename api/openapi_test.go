package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/openapicheck"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// TestOpenAPIRoutesAnswer: every route the OpenAPI document lists is served,
// and its answer (a success or a refusal) fits the schema the document
// gives for that status.
func TestOpenAPIRoutesAnswer(t *testing.T) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapicheck.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	eachStore(t, func(t *testing.T, e *env) {
		status, body := e.rest(t, "POST", "/v1/certificates", e.tokens["cpo1"], map[string]any{"profile": policies.ISO2SECC, "csr": opensslCSR(t, e.dir, "DE*ABC*E3")})
		if status != 200 {
			t.Fatalf("setup: %d %v", status, body)
		}
		serial := body["certificate"].(map[string]any)["serial"].(string)
		if status, body := e.rest(t, "PUT", "/v1/stations/CS-1", e.tokens["cpo1"], map[string]any{"ocppVersion": "2.0.1"}); status != 200 {
			t.Fatalf("setup: %d %v", status, body)
		}
		if status, body := e.rest(t, "PUT", "/v1/contracts/DE8AAC12345678D", e.tokens["emsp1"], map[string]any{"pcid": "WMI00000000000001"}); status != 200 {
			t.Fatalf("setup: %d %v", status, body)
		}
		provPEM, pcid := provisioningPEM(t)
		if status, body := e.rest(t, "PUT", "/v1/provisioning-certificates/"+pcid, e.tokens["oem1"], map[string]any{"pem": provPEM}); status != 200 {
			t.Fatalf("setup: %d %v", status, body)
		}
		subCA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.oem.Get("oem-sub1").Cert.Raw}))
		status, body = e.rest(t, "POST", "/v1/oem-sub-cas", e.tokens["oem1"], map[string]any{"pem": subCA})
		if status != 200 {
			t.Fatalf("setup: %d %v", status, body)
		}
		fingerprint := body["subCa"].(map[string]any)["sha256"].(string)
		if err := e.d.Store.CreateTenant(context.Background(), &policies.Tenant{Name: "emsp-own", Kind: policies.TenantEMSP, ProviderIDs: []string{"DEPNC"}}); err != nil {
			t.Fatal(err)
		}
		// The eMSP's own MO root is a trust anchor here.
		if err := e.bridge.Anchors.Add(ocppsec.UseMO, e.oem.Get("mo-root").Cert); err != nil {
			t.Fatal(err)
		}
		c := e.oem.Get("contract")
		enc, dh, err := contract.EncryptPrivateKey(rand.Reader, c.Key, e.oem.Get("oem-prov").Cert.PublicKey.(*ecdsa.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		chainPEM := ""
		for _, cert := range append([]*x509.Certificate{c.Cert}, e.oem.Chain("contract")[:2]...) {
			chainPEM += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
		}
		// An OAuth client named like the station, for {id}.
		if status, body := e.rest(t, "POST", "/v1/oauth-clients", e.tokens["admin"], map[string]any{"id": "CS-1", "tenant": "cpo1"}); status != 200 || body["secret"] == "" {
			t.Fatalf("setup: %d %v", status, body)
		}
		status, body = e.rest(t, "PUT", "/v1/contract-deposits/"+pcid, e.tokens["admin"], map[string]any{"chainPem": chainPEM,
			"encryptedKey": enc, "dhPublicKey": dh, "tenant": "emsp-own"})
		if status != 200 {
			t.Fatalf("setup deposit: %d %v", status, body)
		}
		// An installation in the log, so that its schema is checked.
		if err := e.d.Store.PutInstallation(context.Background(), &store.InstallationRecord{At: time.Now(), Station: "CS-1", Action: "Install",
			PCID: pcid, EMAID: "DE8AAC12345678D", EMSP: "emsp1", ResponseCode: "OK", Source: "issued", Size: 7412, Limit: 7500}); err != nil {
			t.Fatal(err)
		}
		type op struct{ method, path string }
		var ops []op
		for path, methods := range doc.Paths {
			for method := range methods {
				ops = append(ops, op{method, path})
			}
		}
		// Deletes last, so that the station is there for the others.
		sort.Slice(ops, func(i, j int) bool { return ops[i].method != "delete" && ops[j].method == "delete" })
		for _, o := range ops {
			var reqBody any
			if o.method == "post" || o.method == "put" {
				reqBody = map[string]any{}
			}
			path := strings.NewReplacer("{serial}", serial, "{id}", "CS-1", "{station_id}", "CS-1", "{issuer}", "cpo-sub2", "{emaid}", "DE8AAC12345678D", "{pcid}", pcid, "{sha256}", fingerprint).Replace(o.path)
			status, body := e.rest(t, strings.ToUpper(o.method), path, e.tokens["admin"], reqBody)
			if status == 404 || status == 405 || status >= 500 {
				t.Errorf("%s %s: HTTP %d %v", o.method, o.path, status, body)
			}
			// Every /v1 answer is JSON: each must be documented as such and fit.
			raw, _ := json.Marshal(body)
			if validated, err := doc.Check(o.method, o.path, status, "application/json", raw); err != nil || !validated {
				t.Errorf("%s %s: HTTP %d, checked against a documented JSON schema %v: %v", o.method, o.path, status, validated, err)
			}
		}
		if len(ops) != 42 {
			t.Errorf("%d documented operations, want 42", len(ops))
		}
	})
}
