package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
)

// responseSchema compiles the schema of OPCP's token answer for a status.
func responseSchema(t *testing.T, status string) *jsonschema.Schema {
	t.Helper()
	dir := os.Getenv("PNCPKI_SPEC")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "spec")
	}
	data, err := os.ReadFile(filepath.Join(dir, "opcp", "OPCP-1.0.0", "reference", "accessToken.v1.json"))
	if err != nil {
		t.Skipf("SKIP: OPCP documents not found (set PNCPKI_SPEC): %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AddResource("file:///token.json", doc)
	sch, err := c.Compile("file:///token.json#/paths/~1oauth~1token/post/responses/" + status + "/content/application~1json/schema")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func TestTokenEndpoint(t *testing.T) {
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}}); err != nil {
		t.Fatal(err)
	}
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := CreateClient(ctx, d.Store, "emsp-backend", "emsp1", auth.RoleOperator, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateClient(ctx, d.Store, "emsp-backend", "emsp1", auth.RoleOperator, time.Now()); err == nil {
		t.Error("a client ID was registered twice")
	}
	if _, err := CreateClient(ctx, d.Store, "x", "nobody", auth.RoleOperator, time.Now()); err == nil {
		t.Error("a client of an unknown tenant")
	}
	srv := httptest.NewServer(&Server{Store: d.Store, Key: key})
	defer srv.Close()
	post := func(contentType, body string, basic []string) (int, []byte) {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if basic != nil {
			req.SetBasicAuth(basic[0], basic[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	js := func(id, sec, grant string) string {
		b, _ := json.Marshal(map[string]string{"client_id": id, "client_secret": sec, "audience": "https://pki.example.com", "grant_type": grant})
		return string(b)
	}
	ok := responseSchema(t, "200")
	check := func(name string, status int, body []byte) {
		t.Helper()
		if status != 200 {
			t.Fatalf("%s: HTTP %d %s", name, status, body)
		}
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err := ok.Validate(v); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		var res struct {
			Token string `json:"access_token"`
		}
		json.Unmarshal(body, &res)
		c, err := key.Verify(res.Token, time.Now())
		if err != nil || c.Tenant != "emsp1" || c.Role != auth.RoleOperator || c.Party != "MO" || c.Subject != "oauth:emsp-backend" {
			t.Errorf("%s: claims %+v %v", name, c, err)
		}
	}
	status, body := post("application/json", js("emsp-backend", secret, "client_credentials"), nil)
	check("JSON", status, body)
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	status, body = post("application/x-www-form-urlencoded", form, []string{"emsp-backend", secret})
	check("form and Basic", status, body)

	refused := responseSchema(t, "401")
	bad := responseSchema(t, "400")
	for _, tt := range []struct {
		name, contentType, body string
		status                  int
	}{
		{"wrong secret", "application/json", js("emsp-backend", secret+"x", "client_credentials"), 401},
		{"unknown client", "application/json", js("nobody", secret, "client_credentials"), 401},
		{"malformed client ID", "application/json", js("a b", secret, "client_credentials"), 401},
		{"password grant", "application/json", js("emsp-backend", secret, "password"), 400},
		{"not JSON", "application/json", "{", 400},
		{"wrong content type", "text/plain", js("emsp-backend", secret, "client_credentials"), 400},
		{"oversize", "application/json", `{"client_id":"` + strings.Repeat("a", 9000) + `"}`, 400},
	} {
		status, body := post(tt.contentType, tt.body, nil)
		if status != tt.status {
			t.Errorf("%s: HTTP %d, want %d: %s", tt.name, status, tt.status, body)
			continue
		}
		sch := bad
		if status == 401 {
			sch = refused
		}
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if err := d.Store.RevokeOAuthClient(ctx, "emsp-backend", time.Now()); err != nil {
		t.Fatal(err)
	}
	if status, _ := post("application/json", js("emsp-backend", secret, "client_credentials"), nil); status != 401 {
		t.Errorf("revoked client: HTTP %d", status)
	}
}

// TestFailedAuthenticationsThrottled: after MaxFailures wrong secrets a
// client ID is answered 429 (even with the right secret) until the window
// passes, and so is the address the guesses came from for other IDs.
func TestFailedAuthenticationsThrottled(t *testing.T) {
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := CreateClient(ctx, d.Store, "admin-backend", "", auth.RoleAdmin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 10, 0, 5, 0, time.UTC)
	srv := httptest.NewServer(&Server{Store: d.Store, Key: key, Now: func() time.Time { return now }})
	defer srv.Close()
	post := func(id, sec string) int {
		body := `{"client_id":"` + id + `","client_secret":"` + sec + `","grant_type":"client_credentials"}`
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range MaxFailures {
		if s := post("admin-backend", "wrong"); s != 401 {
			t.Fatalf("guess %d: HTTP %d", i+1, s)
		}
	}
	if s := post("admin-backend", secret); s != 429 {
		t.Errorf("the right secret after %d wrong ones: HTTP %d, want 429", MaxFailures, s)
	}
	if s := post("another-client", "wrong"); s != 429 {
		t.Errorf("another ID from the same address: HTTP %d, want 429", s)
	}
	now = now.Add(FailureWindow)
	if s := post("admin-backend", secret); s != 200 {
		t.Errorf("after the window: HTTP %d", s)
	}
}
