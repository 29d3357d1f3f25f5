package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
)

// openAPIv1 documents the REST transcoding of the API (/v1); openAPIHTTP
// every other HTTP route pncd serves (health, CRLs, OCSP, OAuth, gRPC
// reflection and health, EST, OPNC, OPCP).
var (
	//go:embed openapi.json
	openAPIv1 []byte
	//go:embed openapi-http.json
	openAPIHTTP []byte
)

// OpenAPI returns one OpenAPI document of every HTTP route pncd serves:
// the /v1 API's merged with the other families'. pncd serves it at
// /openapi.json.
var OpenAPI = sync.OnceValues(func() ([]byte, error) {
	var v1, other map[string]any
	if err := json.Unmarshal(openAPIv1, &v1); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	if err := json.Unmarshal(openAPIHTTP, &other); err != nil {
		return nil, fmt.Errorf("openapi-http.json: %w", err)
	}
	paths, _ := v1["paths"].(map[string]any)
	for p, item := range other["paths"].(map[string]any) {
		if _, dup := paths[p]; dup {
			return nil, fmt.Errorf("path %s documented twice", p)
		}
		paths[p] = item
	}
	components, _ := v1["components"].(map[string]any)
	for k, v := range other["components"].(map[string]any) {
		m, _ := components[k].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		maps.Copy(m, v.(map[string]any))
		components[k] = m
	}
	info := v1["info"].(map[string]any)
	info["title"] = "pncpki: every HTTP route"
	info["description"] = fmt.Sprint(info["description"], " ", other["info"].(map[string]any)["description"])
	return json.MarshalIndent(v1, "", "  ")
})
