package api_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/pncpki/pncpki/policies"
)

// TestOpenAPIRoutesAnswer: every route the OpenAPI document lists is served.
func TestOpenAPIRoutesAnswer(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	eachStore(t, func(t *testing.T, e *env) {
		status, body := e.rest(t, "POST", "/v1/certificates", e.tokens["cpo1"], map[string]any{"profile": policies.ISO2SECC, "csr": opensslCSR(t, e.dir, "DE*ABC*E3")})
		if status != 200 {
			t.Fatalf("setup: %d %v", status, body)
		}
		serial := body["certificate"].(map[string]any)["serial"].(string)
		n := 0
		for path, ops := range doc.Paths {
			for method := range ops {
				n++
				var reqBody any
				if method == "post" {
					reqBody = map[string]any{}
				}
				status, body := e.rest(t, strings.ToUpper(method), strings.ReplaceAll(path, "{serial}", serial), e.tokens["admin"], reqBody)
				if status == 404 || status == 405 || status >= 500 {
					t.Errorf("%s %s: HTTP %d %v", method, path, status, body)
				}
			}
		}
		if n != 9 {
			t.Errorf("%d documented operations, want 9", n)
		}
	})
}
