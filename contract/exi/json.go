package exi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The JSON form of a document is what `pncctl exi` prints and reads: an
// object with one key per element in document order. An element without
// attributes or children is its value (a string); otherwise an object
// whose "@name" keys are attributes, "#text" its value, and other keys its
// children, a run of children with the same name becoming an array. An
// attribute in another namespace than its element's is "@{namespace}name".
// Values stay strings, so 160-bit serial numbers survive.

// JSON returns the JSON form of elements.
func JSON(elems ...*Element) ([]byte, error) {
	var b bytes.Buffer
	writeChildren(&b, elems)
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func writeString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // strings always marshal
	b.Write(q)
}

func writeChildren(b *bytes.Buffer, elems []*Element) {
	b.WriteByte('{')
	first := true
	for i := 0; i < len(elems); {
		j := i + 1
		for j < len(elems) && elems[j].Name.Local == elems[i].Name.Local {
			j++
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeString(b, elems[i].Name.Local)
		b.WriteByte(':')
		if j-i == 1 {
			writeContent(b, elems[i])
		} else {
			b.WriteByte('[')
			for k := i; k < j; k++ {
				if k > i {
					b.WriteByte(',')
				}
				writeContent(b, elems[k])
			}
			b.WriteByte(']')
		}
		i = j
	}
	b.WriteByte('}')
}

func writeContent(b *bytes.Buffer, e *Element) {
	if len(e.Attrs) == 0 && len(e.Children) == 0 {
		writeString(b, e.Value)
		return
	}
	var inner bytes.Buffer
	writeChildren(&inner, e.Children)
	b.WriteByte('{')
	for _, a := range e.Attrs {
		writeString(b, "@"+a.Name.clark(e.Name.Space))
		b.WriteByte(':')
		writeString(b, a.Value)
		b.WriteByte(',')
	}
	if e.Value != "" {
		b.WriteString(`"#text":`)
		writeString(b, e.Value)
		b.WriteByte(',')
	}
	body := inner.Bytes()
	if len(body) > 2 {
		b.Write(body[1 : len(body)-1])
	} else if b.Bytes()[b.Len()-1] == ',' {
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
}

// clark is an attribute's name in the JSON form: its local name, with
// "{namespace}" before it when that is not its element's (elemSpace), as
// relaxed fragment grammars know some attributes (Id) in several
// namespaces: eMAID's Id is MsgDataTypes'.
func (n QName) clark(elemSpace string) string {
	if n.Space == "" || n.Space == elemSpace {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}

// parseClark reads what clark writes.
func parseClark(s string) QName {
	if rest, ok := strings.CutPrefix(s, "{"); ok {
		if ns, local, ok := strings.Cut(rest, "}"); ok {
			return QName{Space: ns, Local: local}
		}
	}
	return QName{Local: s}
}

// ParseJSON reads the JSON form back into elements, in order.
func ParseJSON(data []byte) ([]*Element, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("exi json: %w", err)
	}
	if tok != json.Delim('{') {
		return nil, errors.New("exi json: want an object of elements")
	}
	root := &Element{}
	if err := parseMembers(dec, root, 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("exi json: data after the object")
	}
	return root.Children, nil
}

// parseMembers reads an object's members into e, up to its closing brace.
func parseMembers(dec *json.Decoder, e *Element, depth int) error {
	if depth > maxDepth {
		return errors.New("exi json: nested too deep")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("exi json: %w", err)
		}
		key := tok.(string) // object keys are strings
		tok, err = dec.Token()
		if err != nil {
			return fmt.Errorf("exi json: %s: %w", key, err)
		}
		switch {
		case strings.HasPrefix(key, "@"):
			v, err := scalar(tok)
			if err != nil {
				return fmt.Errorf("exi json: attribute %s: %w", key, err)
			}
			e.Attrs = append(e.Attrs, Attr{Name: parseClark(key[1:]), Value: v})
		case key == "#text":
			v, err := scalar(tok)
			if err != nil {
				return fmt.Errorf("exi json: %s text: %w", e.Name.Local, err)
			}
			e.Value = v
		case tok == json.Delim('['):
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return fmt.Errorf("exi json: %s: %w", key, err)
				}
				if err := parseElement(dec, e, key, tok, depth); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("exi json: %s: %w", key, err)
			}
		default:
			if err := parseElement(dec, e, key, tok, depth); err != nil {
				return err
			}
		}
	}
	_, err := dec.Token() // the closing brace
	return err
}

func parseElement(dec *json.Decoder, parent *Element, name string, tok json.Token, depth int) error {
	c := &Element{Name: QName{Local: name}}
	parent.Children = append(parent.Children, c)
	if tok == json.Delim('{') {
		return parseMembers(dec, c, depth+1)
	}
	v, err := scalar(tok)
	if err != nil {
		return fmt.Errorf("exi json: %s: %w", name, err)
	}
	c.Value = v
	return nil
}

func scalar(tok json.Token) (string, error) {
	switch v := tok.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("want a string, number or boolean, got %v", tok)
}
