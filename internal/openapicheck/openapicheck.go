// Package openapicheck checks HTTP answers against an OpenAPI 3 document:
// that their status is documented and that a JSON answer fits the schema
// documented for it. The route tests of the API and of pncd use it.
package openapicheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Doc is an OpenAPI document with its schemas compiled on demand.
type Doc struct {
	Paths    map[string]map[string]Operation `json:"paths"`
	compiler *jsonschema.Compiler
}

// Operation is what Doc reads of an operation: its answers by status.
type Operation struct {
	Responses map[string]struct {
		Content map[string]json.RawMessage `json:"content"`
	} `json:"responses"`
}

// Parse reads an OpenAPI document.
func Parse(doc []byte) (*Doc, error) {
	d := &Doc{}
	if err := json.Unmarshal(doc, d); err != nil {
		return nil, err
	}
	tree, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	d.compiler = jsonschema.NewCompiler()
	d.compiler.AssertFormat()
	if err := d.compiler.AddResource("openapi.json", tree); err != nil {
		return nil, err
	}
	return d, nil
}

// Check checks an answer with status, media type and body to method
// (lower case) on path (as documented, e.g. /crl/{file}): the status must
// be documented, or a default; a JSON answer documented as JSON must fit
// its schema (validated then reports true); and a success's media type
// must be one documented.
func (d *Doc) Check(method, path string, status int, mediaType string, body []byte) (validated bool, err error) {
	responses := d.Paths[path][method].Responses
	key := strconv.Itoa(status)
	r, ok := responses[key]
	if !ok {
		key = "default"
		r, ok = responses[key]
	}
	if !ok {
		return false, fmt.Errorf("status %d is not documented for %s %s", status, method, path)
	}
	if _, isJSON := r.Content["application/json"]; isJSON && mediaType == "application/json" {
		esc := strings.NewReplacer("~", "~0", "/", "~1")
		sch, err := d.compiler.Compile("openapi.json#/paths/" + esc.Replace(path) + "/" + method + "/responses/" + key + "/content/application~1json/schema")
		if err != nil {
			return false, err
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err == nil {
			err = sch.Validate(v)
		}
		if err != nil {
			return false, fmt.Errorf("HTTP %d answer does not fit the document: %w\n%s", status, err, body)
		}
		validated = true
	}
	if status < 300 && len(r.Content) > 0 {
		if _, ok := r.Content[mediaType]; !ok {
			return validated, fmt.Errorf("%s answer, documented %v", mediaType, r.Content)
		}
	}
	return validated, nil
}
