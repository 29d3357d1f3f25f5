package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
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

//go:embed openapiui
var openAPIUI embed.FS

// OpenAPIPage serves the page that renders /openapi.json (under
// /openapi/), from files embedded in the binary: no CDN, and a
// Content-Security-Policy that allows only this origin's script.
func OpenAPIPage() http.Handler {
	files, err := fs.Sub(openAPIUI, "openapiui")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	h := http.StripPrefix("/openapi/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}
