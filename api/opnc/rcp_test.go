package opnc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/testcerts"
)

// TestRootPoolChanges: the root pool's operator adds a root in OPNC's and
// in OPCP's shape and removes it again; the change is stored (a second
// replica on the same store sees it) and announced to subscribers; others
// may not change the pool, and configured roots stay.
func TestRootPoolChanges(t *testing.T) {
	e := newEnv(t)
	recv := newReceiver(t)
	hook, _ := json.Marshal(map[string]any{"url": recv.srv.URL, "enabledEvents": []string{"root.cert.added", "root.cert.revoked"}})
	status, out := e.do(t, "POST", "/opnc/v1/event/endpoints", "application/json", hook, e.emsp)
	if status != 201 {
		t.Fatalf("subscribe: %d %s", status, out)
	}
	recv.secret = secretOf(t, out)

	foreign, err := testcerts.Generate(11, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v2g := foreign.Get("v2g-root").Cert
	// OPNC's body is its rootCertificate object, which requires rootType
	// and caCertificate but allows one property (see TestRootCertificates):
	// the body has the two required ones, caCertificate checked against
	// its schema.
	b64 := base64.StdEncoding.EncodeToString(v2g.Raw)
	body, _ := json.Marshal(map[string]any{"caCertificate": b64, "rootType": "V2G"})
	certJSON, _ := json.Marshal(b64)
	validate(t, schema(t, "rcp.api.consolidated.v1.json", "/components/schemas/rootCertificate.v1/properties/caCertificate"), certJSON)
	path := "/opnc/v1/rcp/rootcertificates"
	for _, tok := range []string{e.token, e.emsp, e.oem} {
		if status, out := e.do(t, "PUT", path, "application/json", body, tok); status != 403 {
			t.Errorf("a tenant changes the root pool: %d %s", status, out)
		}
	}
	status, out = e.do(t, "PUT", path, "application/json", body, e.admin)
	if status != 200 {
		t.Fatalf("add: %d %s", status, out)
	}
	var added map[string]any
	json.Unmarshal(out, &added)
	id, _ := added["rootCertificateId"].(string)
	if status, out := e.do(t, "GET", path+"/"+id, "", nil, e.token); status != 200 || !strings.Contains(string(out), b64) {
		t.Errorf("the added root: %d %s", status, out)
	}
	rootSchema := webhookSchema(t, "/customer.defined.root.event.webhook.path")
	got := recv.next(t)
	validate(t, rootSchema, []byte(got["raw"].(string)))
	if got["eventType"] != "root.cert.added" || got["payload"].(map[string]any)["rootCertificateId"] != id {
		t.Errorf("event %v", got)
	}
	// Another replica on the same store.
	replica := &ocppsec.Bridge{Store: e.d.Store, Anchors: e.bridge.Anchors}
	if err := replica.RefreshAnchors(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, m := len(replica.TrustAnchors()[ocppsec.UseV2G]), len(e.bridge.Anchors[ocppsec.UseV2G]); n != m+1 {
		t.Errorf("replica has %d V2G anchors, want %d", n, m+1)
	}
	// OPCP's shape, the MO root.
	mo := foreign.Get("mo-root").Cert
	opcp, _ := json.Marshal(map[string]any{"caCertificate": base64.StdEncoding.EncodeToString(mo.Raw), "rootType": "MO"})
	validate(t, opcpSchema(t, "rcp.v1.json", "/paths/~1v1~1root~1rootCerts/put/requestBody/content/application~1json/schema"), opcp)
	if status, out := e.do(t, "PUT", "/opcp/v1/root/rootCerts", "application/json", opcp, e.admin); status != 200 {
		t.Fatalf("OPCP add: %d %s", status, out)
	}
	if got := recv.next(t); got["payload"].(map[string]any)["rootType"] != "MO" {
		t.Errorf("event %v", got)
	}
	if !containsCert(e.bridge.TrustAnchors()[ocppsec.UseMO], mo.Raw) {
		t.Error("the MO root is no trust anchor")
	}

	refusals := []struct {
		name string
		body string
	}{
		{"sub-CA", `{"caCertificate":"` + base64.StdEncoding.EncodeToString(foreign.Get("mo-sub1").Cert.Raw) + `","rootType":"MO"}`},
		{"bad base64", `{"caCertificate":"!!","rootType":"V2G"}`},
		{"not a certificate", `{"caCertificate":"AAAA","rootType":"V2G"}`},
		{"private environment", `{"caCertificate":"` + base64.StdEncoding.EncodeToString(foreign.Get("oem-root").Cert.Raw) + `","rootType":"PE"}`},
		{"no type", `{"caCertificate":"` + base64.StdEncoding.EncodeToString(foreign.Get("oem-root").Cert.Raw) + `"}`},
		{"unknown field", `{"caCertificate":"AAAA","rootType":"V2G","x":1}`},
	}
	before := len(e.bridge.TrustAnchors()[ocppsec.UseOEM])
	for _, tt := range refusals {
		if status, out := e.do(t, "PUT", path, "application/json", []byte(tt.body), e.admin); status != 400 {
			t.Errorf("%s: %d %s", tt.name, status, out)
		}
	}
	if n := len(e.bridge.TrustAnchors()[ocppsec.UseOEM]); n != before {
		t.Errorf("refusals changed the OEM anchors: %d, want %d", n, before)
	}

	// Removal: tenants may not, configured roots stay, added ones go.
	own, _ := e.d.CA.Authority("v2g-root")
	if status, _ := e.do(t, "DELETE", path+"/"+id, "", nil, e.emsp); status != 403 {
		t.Errorf("a tenant removes a root: %d", status)
	}
	if status, out := e.do(t, "DELETE", path+"/"+rootID(own.Cert), "", nil, e.admin); status != 400 {
		t.Errorf("remove a configured root: %d %s", status, out)
	}
	if status, out := e.do(t, "DELETE", path+"/"+id, "", nil, e.admin); status != 200 {
		t.Fatalf("remove: %d %s", status, out)
	}
	got = recv.next(t)
	validate(t, rootSchema, []byte(got["raw"].(string)))
	if got["eventType"] != "root.cert.revoked" {
		t.Errorf("event %v", got)
	}
	if status, _ := e.do(t, "GET", path+"/"+id, "", nil, e.token); status != 404 {
		t.Errorf("removed root still served: %d", status)
	}
	if status, _ := e.do(t, "DELETE", path+"/"+id, "", nil, e.admin); status != 404 {
		t.Errorf("second remove: %d", status)
	}
	replica.RefreshAnchors(context.Background())
	if containsCert(replica.TrustAnchors()[ocppsec.UseV2G], v2g.Raw) {
		t.Error("the replica still trusts the removed root")
	}
}
