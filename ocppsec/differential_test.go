package ocppsec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestDecodeAgreesWithSchemas builds, for every message of every dialect,
// a complete valid payload from the official schema and hundreds of
// mutations of it (values at and beyond each length limit, wrong types,
// bad enum values, missing properties, unknown properties, too few and too
// many items, null), and checks that Decode accepts exactly what the schema
// validator accepts.
func TestDecodeAgreesWithSchemas(t *testing.T) {
	dir := specDir(t)
	for d := range catalog {
		for _, m := range Messages(d) {
			for i, typ := range []reflect.Type{m.Request, m.Response} {
				file := schemaFile(d, m.Action, i == 1)
				t.Run(string(d)+"/"+filepath.Base(file), func(t *testing.T) {
					doc, sch := loadSchema(t, filepath.Join(dir, file))
					base := doc.example(doc.root)
					cases := append([]any{base}, doc.mutations(d, doc.root, typ, base, nil)...)
					accepted, failed := 0, 0
					for _, inst := range cases {
						if failed > 5 {
							break
						}
						data, _ := json.Marshal(inst)
						want := sch.Validate(reparse(t, data)) == nil && !beyondInt32(inst)
						err := Decode(d, data, reflect.New(typ).Interface())
						if got := err == nil; got != want {
							t.Errorf("%s: schema accepts %v, Decode accepts %v (%v)", data, want, got, err)
							failed++
						}
						if want {
							accepted++
						}
					}
					if accepted == 0 || accepted == len(cases) {
						t.Errorf("%d of %d cases accepted: the mutations do not test both ways", accepted, len(cases))
					}
				})
			}
		}
	}
}

func reparse(t *testing.T, data []byte) any {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// example is a valid instance with every property present.
func (s *schemaDoc) example(n map[string]any) any {
	n = s.resolve(n)
	switch n["type"] {
	case "object":
		props, _ := n["properties"].(map[string]any)
		out := map[string]any{}
		for name, p := range props {
			if name == "customData" {
				out[name] = map[string]any{"vendorId": "org.example", "extra": 1}
				continue
			}
			out[name] = s.example(p.(map[string]any))
		}
		return out
	case "array":
		return []any{s.example(n["items"].(map[string]any))}
	case "string":
		if e := asSlice(n["enum"]); len(e) > 0 {
			return e[len(e)-1]
		}
		if n["format"] == "date-time" {
			return "2026-11-25T10:00:00Z"
		}
		return "x"
	case "integer":
		return 1
	case "number":
		return 1.5
	case "boolean":
		return true
	}
	panic(fmt.Sprintf("no example for %v", n))
}

// mutations returns copies of root with the value at path changed in ways
// that probe the schema of node n.
// typ is the Go type of the value: values the Go side passes through
// unchecked (raw) are not probed.
func (s *schemaDoc) mutations(d Dialect, n map[string]any, typ reflect.Type, root any, path []any) []any {
	n = s.resolve(n)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var out []any
	set := func(v any) { out = append(out, with(root, path, v)) }
	if len(path) > 0 {
		set(nil)
		out = append(out, without(root, path))
	}
	switch n["type"] {
	case "object":
		set("text")
		props, _ := n["properties"].(map[string]any)
		cur := at(root, path).(map[string]any)
		withExtra := map[string]any{"unknownProperty": 1}
		for k, v := range cur {
			withExtra[k] = v
		}
		set(withExtra)
		for name, p := range props {
			if name == "customData" {
				set(with(at(root, path), []any{name}, map[string]any{"novendor": true}))
				continue
			}
			var ft reflect.Type
			for _, f := range fieldsOf(typ) {
				if f.name == name && !ruleFor(d, f.tag).raw {
					ft = f.typ
				}
			}
			if ft != nil {
				out = append(out, s.mutations(d, p.(map[string]any), ft, root, append(append([]any(nil), path...), name))...)
			}
		}
	case "array":
		set(map[string]any{})
		set([]any{})
		item := at(root, path).([]any)[0]
		for _, k := range []int{intOf(n["maxItems"]), intOf(n["maxItems"]) + 1, 6} {
			if k > 0 {
				set(repeat(item, k))
			}
		}
		out = append(out, s.mutations(d, n["items"].(map[string]any), typ.Elem(), root, append(append([]any(nil), path...), 0))...)
	case "string":
		set(5)
		set("Bogus")
		if max := intOf(n["maxLength"]); max > 0 {
			set(strings.Repeat("é", max))
			set(strings.Repeat("é", max+1))
		}
		if n["format"] == "date-time" {
			set("yesterday")
		}
	case "integer":
		set(-1)
		set(0)
		set(1.5)
		set("1")
		set(1 << 40)
	}
	return out
}

// beyondInt32 reports an integer outside 32 bits anywhere in v. The
// schemas leave integers unbounded, but OCPP 2.0.1 Part 2 (section 2.1,
// primitive datatypes) defines integer as 32-bit: Decode refuses more.
func beyondInt32(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if beyondInt32(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if beyondInt32(e) {
				return true
			}
		}
	case float64:
		return x == float64(int64(x)) && int64(x) != int64(int32(x))
	case int:
		return int64(x) != int64(int32(x))
	}
	return false
}

func repeat(v any, k int) []any {
	out := make([]any, k)
	for i := range out {
		out[i] = v
	}
	return out
}

func at(v any, path []any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v
}

func clone(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}

func with(root any, path []any, v any) any {
	if len(path) == 0 {
		return v
	}
	root = clone(root)
	parent := at(root, path[:len(path)-1])
	switch k := path[len(path)-1].(type) {
	case string:
		parent.(map[string]any)[k] = v
	case int:
		parent.([]any)[k] = v
	}
	return root
}

func without(root any, path []any) any {
	root = clone(root)
	parent := at(root, path[:len(path)-1])
	switch k := path[len(path)-1].(type) {
	case string:
		delete(parent.(map[string]any), k)
	case int:
		a := parent.([]any)
		return with(root, path[:len(path)-1], append(a[:k:k], a[k+1:]...))
	}
	return root
}
