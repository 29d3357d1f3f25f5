// Package xsdgen derives EXI grammars from XML Schema documents, following
// EXI 1.0 section 8.5 (schema-informed grammars, non-strict), and writes
// them as Go tables for package exi. It understands the XSD constructs the
// ISO 15118 and XML Signature schemas use and refuses the others by name,
// so a schema that needs more fails at generation, not at run time.
package xsdgen

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pncpki/pncpki/contract/exi"
)

const xsNS = "http://www.w3.org/2001/XMLSchema"

// node is an element of an XSD document.
type node struct {
	kind  string // local name: element, complexType, sequence, ...
	attrs map[string]string
	kids  []*node
	doc   *doc
}

func (n *node) attr(k string) string { return n.attrs[k] }

// doc is one schema document.
type doc struct {
	path          string
	target        string
	elemQualified bool
	attrQualified bool
	ns            map[string]string
	root          *node
}

func parseDoc(path string) (*doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := &doc{path: path, ns: map[string]string{}}
	dec := xml.NewDecoder(f)
	var stack []*node
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{kind: t.Name.Local, attrs: map[string]string{}, doc: d}
			if t.Name.Space != xsNS || n.kind == "annotation" {
				n.kind = "skip"
			}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					d.ns[a.Name.Local] = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					d.ns[""] = a.Value
				case a.Name.Space == "":
					n.attrs[a.Name.Local] = a.Value
				}
			}
			if len(stack) == 0 {
				d.root = n
			} else {
				stack[len(stack)-1].kids = append(stack[len(stack)-1].kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if d.root == nil || d.root.kind != "schema" {
		return nil, fmt.Errorf("%s: not an XML Schema", path)
	}
	d.target = d.root.attr("targetNamespace")
	d.elemQualified = d.root.attr("elementFormDefault") == "qualified"
	d.attrQualified = d.root.attr("attributeFormDefault") == "qualified"
	// Drop skipped subtrees (annotations, foreign elements).
	var prune func(n *node)
	prune = func(n *node) {
		kids := n.kids[:0]
		for _, k := range n.kids {
			if k.kind != "skip" {
				prune(k)
				kids = append(kids, k)
			}
		}
		n.kids = kids
	}
	prune(d.root)
	return d, nil
}

// qname resolves a prefixed name in the document's namespace context.
func (d *doc) qname(s string) (exi.QName, error) {
	prefix, local, ok := strings.Cut(s, ":")
	if !ok {
		prefix, local = "", s
	}
	uri, known := d.ns[prefix]
	if !known && prefix != "" {
		return exi.QName{}, fmt.Errorf("%s: unknown namespace prefix in %q", d.path, s)
	}
	return exi.QName{Space: uri, Local: local}, nil
}

// set is a schema set: every document reached from the entry files.
type set struct {
	docs     []*doc
	elements map[exi.QName]*node // global element declarations
	ctypes   map[exi.QName]*node
	stypes   map[exi.QName]*node
	attrs    map[exi.QName]*node // global attribute declarations
	subst    map[exi.QName][]exi.QName
}

func load(files []string) (*set, error) {
	s := &set{
		elements: map[exi.QName]*node{},
		ctypes:   map[exi.QName]*node{},
		stypes:   map[exi.QName]*node{},
		attrs:    map[exi.QName]*node{},
		subst:    map[exi.QName][]exi.QName{},
	}
	seen := map[string]bool{}
	var visit func(path string) error
	visit = func(path string) error {
		path = filepath.Clean(path)
		if seen[path] {
			return nil
		}
		seen[path] = true
		d, err := parseDoc(path)
		if err != nil {
			return err
		}
		s.docs = append(s.docs, d)
		for _, n := range d.root.kids {
			name := exi.QName{Space: d.target, Local: n.attr("name")}
			switch n.kind {
			case "import", "include":
				if loc := n.attr("schemaLocation"); loc != "" {
					if err := visit(filepath.Join(filepath.Dir(path), loc)); err != nil {
						return err
					}
				}
			case "element":
				s.elements[name] = n
				if h := n.attr("substitutionGroup"); h != "" {
					hq, err := d.qname(h)
					if err != nil {
						return err
					}
					s.subst[hq] = append(s.subst[hq], name)
				}
			case "complexType":
				s.ctypes[name] = n
			case "simpleType":
				s.stypes[name] = n
			case "attribute":
				s.attrs[name] = n
			default:
				return fmt.Errorf("%s: top-level %s is not supported", path, n.kind)
			}
		}
		return nil
	}
	for _, f := range files {
		if err := visit(f); err != nil {
			return nil, err
		}
	}
	return s, nil
}
