package opnc

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
	"github.com/pncpki/pncpki/webhook"
)

// receiver is a subscriber's webhook endpoint: it checks each delivery's
// signature and fails the first one, so that the retry is exercised.
type receiver struct {
	srv    *httptest.Server
	secret string
	got    chan map[string]any

	mu       sync.Mutex
	failNext bool
	bad      []string
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{got: make(chan map[string]any, 16), failNext: true}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.failNext {
			r.failNext = false
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		sig := req.Header.Get("payload-signature")
		if sig != webhook.Signature(r.secret, body) || req.Header.Get("X-Operator-Signature") != sig || req.Header.Get("Content-Type") != "application/json" {
			r.bad = append(r.bad, string(body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var v map[string]any
		json.Unmarshal(body, &v)
		v["raw"] = string(body)
		r.got <- v
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next delivery.
func (r *receiver) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case v := <-r.got:
		return v
	case <-time.After(10 * time.Second):
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("no delivery (bad signatures: %v)", r.bad)
		return nil
	}
}

// none checks that nothing more arrives within a short while.
func (r *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case v := <-r.got:
		t.Errorf("unexpected delivery %v", v)
	case <-time.After(200 * time.Millisecond):
	}
}

func secretOf(t *testing.T, out []byte) string {
	t.Helper()
	var v struct {
		Secret string `json:"secret"`
	}
	if json.Unmarshal(out, &v) != nil || v.Secret == "" {
		t.Fatalf("no secret in %s", out)
	}
	return v.Secret
}

func containsCert(cs []*x509.Certificate, der []byte) bool {
	for _, c := range cs {
		if bytes.Equal(c.Raw, der) {
			return true
		}
	}
	return false
}

// webhookSchema compiles OPNC's webhook body for contract events.
func webhookSchema(t *testing.T, path string) *jsonschemaSchema {
	return specSchema(t, filepath.Join("opnc", "specification", "apis", "event"), "webhook.payload.v1.json",
		"/paths/"+strings.ReplaceAll(path, "/", "~1")+"/post/requestBody/content/application~1json/schema")
}

// TestEvents: an OEM subscribes to its vehicles' contract events; the
// eMSP creates, changes and cancels a contract and the OEM's endpoint gets
// each event, signed, after a failed first attempt; the bodies validate
// against OPNC's webhook payload. Endpoints are the subscriber's own.
func TestEvents(t *testing.T) {
	e := newEnv(t)
	ctx := store.WithActor(context.Background(), "test")
	recv := newReceiver(t)
	// oem1 registers the vehicle's provisioning certificate.
	if _, err := e.pool.PutProvisioning(ctx, "oem1", "", []*x509.Certificate{e.pki.Get("oem-prov").Cert}, nil); err != nil {
		t.Fatal(err)
	}
	req := map[string]any{"description": "contracts of our vehicles", "enabledEvents": []string{"oem.contract.created", "oem.contract.updated", "oem.contract.deleted"},
		"wmi": []string{testcerts.PCID[:3]}, "status": "enabled", "url": recv.srv.URL}
	body, _ := json.Marshal(req)
	validate(t, schema(t, "event.api.consolidated.v1.json", "/components/schemas/postEndpointReq.v1"), body)
	status, out := e.do(t, "POST", "/opnc/v1/event/endpoints", "application/json", body, e.oem)
	if status != 201 {
		t.Fatalf("create: %d %s", status, out)
	}
	validate(t, schema(t, "event.api.consolidated.v1.json", "/components/schemas/endpointRes.v1"), out)
	recv.secret = secretOf(t, out)
	var ep struct {
		ID string `json:"id"`
	}
	json.Unmarshal(out, &ep)

	// Reads and changes are the subscriber's own.
	if status, out := e.do(t, "GET", "/opnc/v1/event/endpoints", "", nil, e.oem); status != 200 || !strings.Contains(string(out), ep.ID) || strings.Contains(string(out), recv.secret) {
		t.Errorf("list: %d %s", status, out)
	}
	if status, out := e.do(t, "GET", "/opnc/v1/event/endpoints", "", nil, e.emsp); status != 200 || strings.Contains(string(out), ep.ID) {
		t.Errorf("another tenant lists: %d %s", status, out)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if status, _ := e.do(t, m, "/opnc/v1/event/endpoints/"+ep.ID, "", nil, e.emsp); status != 404 {
			t.Errorf("another tenant %s: %d", m, status)
		}
	}

	// The eMSP's contract changes reach the OEM.
	const emaid = "DE8AAC87654321"
	c, err := e.pool.Put(ctx, "emsp1", store.Contract{EMAID: emaid, PCID: testcerts.PCID})
	if err != nil {
		t.Fatal(err)
	}
	contractSchema := webhookSchema(t, "/customer.defined.pcid.emaid.event.webhook.path")
	got := recv.next(t)
	validate(t, contractSchema, []byte(got["raw"].(string)))
	if got["eventType"] != "oem.contract.created" || got["payload"].(map[string]any)["emaid"] != c.EMAID || got["payload"].(map[string]any)["pcid"] != testcerts.PCID {
		t.Errorf("created: %v", got)
	}
	c.Default = true
	if _, err := e.pool.Put(ctx, "emsp1", *c); err != nil {
		t.Fatal(err)
	}
	if got := recv.next(t); got["eventType"] != "oem.contract.updated" {
		t.Errorf("updated: %v", got)
	}
	if _, _, err := e.pool.Cancel(ctx, "emsp1", emaid); err != nil {
		t.Fatal(err)
	}
	got = recv.next(t)
	validate(t, contractSchema, []byte(got["raw"].(string)))
	if got["eventType"] != "oem.contract.deleted" {
		t.Errorf("deleted: %v", got)
	}

	// Disabled, then another WMI: nothing arrives.
	req["status"] = "disabled"
	body, _ = json.Marshal(req)
	if status, out := e.do(t, "PUT", "/opnc/v1/event/endpoints/"+ep.ID, "application/json", body, e.oem); status != 200 || !strings.Contains(string(out), `"disabled"`) {
		t.Fatalf("update: %d %s", status, out)
	}
	if _, err := e.pool.Put(ctx, "emsp1", store.Contract{EMAID: "DE8AAC11111111", PCID: testcerts.PCID}); err != nil {
		t.Fatal(err)
	}
	req["status"], req["wmi"] = "enabled", []string{"ZZZ"}
	body, _ = json.Marshal(req)
	if status, out := e.do(t, "PUT", "/opnc/v1/event/endpoints/"+ep.ID, "application/json", body, e.oem); status != 200 {
		t.Fatalf("update: %d %s", status, out)
	}
	if _, err := e.pool.Put(ctx, "emsp1", store.Contract{EMAID: "DE8AAC22222222", PCID: testcerts.PCID}); err != nil {
		t.Fatal(err)
	}
	recv.none(t)

	if status, _ := e.do(t, "DELETE", "/opnc/v1/event/endpoints/"+ep.ID, "", nil, e.oem); status != 200 {
		t.Errorf("delete: %d", status)
	}
	if status, _ := e.do(t, "GET", "/opnc/v1/event/endpoints/"+ep.ID, "", nil, e.oem); status != 404 {
		t.Errorf("after delete: %d", status)
	}
}

// TestOPCPWebhookEndpoints: OPCP's webhook endpoints are the same
// subscriptions under OPCP's paths and schemas.
func TestOPCPWebhookEndpoints(t *testing.T) {
	e := newEnv(t)
	body := []byte(`{"url":"https://oem.example/hook","enabledEvents":["oem.contract.created","root.cert.added"],"status":"enabled"}`)
	validate(t, opcpSchema(t, "webhooks.v1.json", "/components/schemas/EndpointRequest"), body)
	status, out := e.do(t, "POST", "/opcp/v1/webhook/endpoints", "application/json", body, e.oem)
	if status != 201 {
		t.Fatalf("create: %d %s", status, out)
	}
	validate(t, opcpSchema(t, "webhooks.v1.json", "/components/schemas/EndpointResponse"), out)
	var ep struct {
		ID string `json:"id"`
	}
	json.Unmarshal(out, &ep)
	if status, out := e.do(t, "GET", "/opnc/v1/event/endpoints/"+ep.ID, "", nil, e.oem); status != 200 {
		t.Errorf("the same endpoint under OPNC's path: %d %s", status, out)
	}
	if status, _ := e.do(t, "DELETE", "/opcp/v1/webhook/endpoints/"+ep.ID, "", nil, e.oem); status != 200 {
		t.Errorf("delete: %d", status)
	}
}

// TestEventEndpointRefusals: bad subscriptions are refused and stored not.
func TestEventEndpointRefusals(t *testing.T) {
	e := newEnv(t)
	ok := `"enabledEvents":["oem.contract.created"]`
	tests := []struct {
		name, contentType, token, body string
		status                         int
	}{
		{"no token", "application/json", "", `{"url":"https://x.example/h",` + ok + `}`, 401},
		{"wrong content type", "text/plain", e.oem, `{"url":"https://x.example/h",` + ok + `}`, 415},
		{"no url", "application/json", e.oem, `{` + ok + `}`, 400},
		{"plain http to another host", "application/json", e.oem, `{"url":"http://x.example/h",` + ok + `}`, 400},
		{"relative url", "application/json", e.oem, `{"url":"/h",` + ok + `}`, 400},
		{"no events", "application/json", e.oem, `{"url":"https://x.example/h","enabledEvents":[]}`, 400},
		{"event pncpki does not publish", "application/json", e.oem, `{"url":"https://x.example/h","enabledEvents":["emsp.contract.rejected.by.oem"]}`, 400},
		{"bad WMI", "application/json", e.oem, `{"url":"https://x.example/h",` + ok + `,"wmi":["wp"]}`, 400},
		{"bad status", "application/json", e.oem, `{"url":"https://x.example/h",` + ok + `,"status":"on"}`, 400},
		{"metadata", "application/json", e.oem, `{"url":"https://x.example/h",` + ok + `,"metadata":{"a":"b"}}`, 400},
		{"unknown field", "application/json", e.oem, `{"url":"https://x.example/h",` + ok + `,"x":1}`, 400},
		{"oversize", "application/json", e.oem, `{"url":"https://x.example/` + strings.Repeat("a", MaxBody) + `",` + ok + `}`, 413},
		// Addresses a tenant's endpoint may not reach (the test allows
		// only 127.0.0.0/8, where its receivers listen).
		{"cloud metadata", "application/json", e.oem, `{"url":"https://169.254.169.254/latest/meta-data/",` + ok + `}`, 400},
		{"private network", "application/json", e.oem, `{"url":"https://10.0.0.1:8443/",` + ok + `}`, 400},
		{"IPv6 loopback", "application/json", e.oem, `{"url":"https://[::1]:6379/",` + ok + `}`, 400},
		{"IPv4-mapped link-local", "application/json", e.oem, `{"url":"https://[::ffff:169.254.169.254]/",` + ok + `}`, 400},
		{"IPv6 unique local", "application/json", e.oem, `{"url":"https://[fd00::1]/",` + ok + `}`, 400},
		{"multicast", "application/json", e.oem, `{"url":"https://224.0.0.1/",` + ok + `}`, 400},
		{"unspecified", "application/json", e.oem, `{"url":"https://0.0.0.0/",` + ok + `}`, 400},
		{"credentials in the URL", "application/json", e.oem, `{"url":"https://user:pass@x.example/h",` + ok + `}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.do(t, "POST", "/opnc/v1/event/endpoints", tt.contentType, []byte(tt.body), tt.token)
			if status != tt.status {
				t.Fatalf("HTTP %d, want %d: %s", status, tt.status, out)
			}
		})
	}
	if list, _ := e.d.Store.ListEventEndpoints(context.Background(), ""); len(list) != 0 {
		t.Errorf("%d endpoints stored after refusals", len(list))
	}
}
