package exi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Element is an XML element of an EXI document: a name, attributes, and
// either a simple value or child elements. Values are lexical (see
// values.go). An Element built by hand may leave Name.Space empty: the
// grammar knows the namespace of every name it allows.
type Element struct {
	Name  QName
	Attrs []Attr
	Value string
	// Bytes, when not nil, is the value of a base64Binary or hexBinary
	// element as bytes, used instead of Value when encoding: certificates
	// need no round trip through base64 text.
	Bytes    []byte
	Children []*Element
}

// Attr is an attribute of an Element.
type Attr struct {
	Name  QName
	Value string
}

// Limits of the decoder beyond what the schema bounds itself.
const (
	maxElements = 4096 // elements in one document or fragment
	maxDepth    = 32
)

// header is the EXI header byte the ISO 15118 profiles use: distinguishing
// bits 10, no options in the stream, format version 1.
const header = 0x80

// Error is an encoding or decoding failure and where in the document it
// happened.
type Error struct {
	Path string // element path, e.g. /V2G_Message/Body/CertificateInstallationReq
	Bit  int    // bit offset in the stream (decoding) or -1
	Err  error
}

func (e *Error) Error() string {
	if e.Bit >= 0 {
		return fmt.Sprintf("exi: %s: %v (bit %d)", e.Path, e.Err, e.Bit)
	}
	return fmt.Sprintf("exi: %s: %v", e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrTruncated is the cause of a decoding error when the stream ends early.
var ErrTruncated = errTruncated

// Child returns the first child with the given local name, or nil.
func (e *Element) Child(local string) *Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name.Local == local {
			return c
		}
	}
	return nil
}

// All returns the children with the given local name.
func (e *Element) All(local string) []*Element {
	var out []*Element
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name.Local == local {
			out = append(out, c)
		}
	}
	return out
}

// Val returns the element's value, or "" for a nil element.
func (e *Element) Val() string {
	if e == nil {
		return ""
	}
	if e.Value == "" && e.Bytes != nil {
		return base64.StdEncoding.EncodeToString(e.Bytes)
	}
	return e.Value
}

// Attr returns the value of the attribute with the given local name.
func (e *Element) Attr(local string) (string, bool) {
	if e == nil {
		return "", false
	}
	for _, a := range e.Attrs {
		if a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// New returns an element with a local name and children.
func New(local string, children ...*Element) *Element {
	return &Element{Name: QName{Local: local}, Children: children}
}

// Text returns an element with a local name and a simple value.
func Text(local, value string) *Element {
	return &Element{Name: QName{Local: local}, Value: value}
}

// Binary returns an element with a local name and a base64Binary or
// hexBinary value given as bytes.
func Binary(local string, value []byte) *Element {
	return &Element{Name: QName{Local: local}, Bytes: value}
}

// WithAttr adds an attribute and returns e.
func (e *Element) WithAttr(local, value string) *Element {
	e.Attrs = append(e.Attrs, Attr{Name: QName{Local: local}, Value: value})
	return e
}

// WithAttrNS adds a namespace-qualified attribute and returns e.
func (e *Element) WithAttrNS(space, local, value string) *Element {
	e.Attrs = append(e.Attrs, Attr{Name: QName{Space: space, Local: local}, Value: value})
	return e
}

func (n QName) matches(q QName) bool {
	return n.Local == q.Local && (n.Space == "" || n.Space == q.Space)
}

// stack is the path of open elements, for errors.
type stack []*Element

func (s stack) String() string {
	if len(s) == 0 {
		return "/"
	}
	var b strings.Builder
	for i, e := range s {
		b.WriteByte('/')
		b.WriteString(e.Name.Local)
		if i > 0 {
			n, k := 0, 0
			for _, c := range s[i-1].Children {
				if c.Name.Local == e.Name.Local {
					n++
					if c == e {
						k = n
					}
				}
			}
			if n > 1 {
				fmt.Fprintf(&b, "[%d]", k)
			}
		}
	}
	return b.String()
}

// Encode encodes a document whose root is one of the schema's global
// elements.
func (s *Schema) Encode(root *Element) ([]byte, error) {
	e := encoder{s: s}
	e.w.buf = make([]byte, 0, sizeHint(root))
	e.w.writeBits(header, 8)
	if err := e.root(&s.Document, root); err != nil {
		return nil, err
	}
	return e.w.buf, nil
}

// EncodeFragment encodes elements as an EXI fragment with the schema's
// fragment grammar: what ISO 15118-2 digests and signs.
func (s *Schema) EncodeFragment(elems ...*Element) ([]byte, error) {
	return s.AppendFragment(make([]byte, 0, sizeHint(elems...)), elems...)
}

// AppendFragment is EncodeFragment appending to dst: digests need the
// encoding only for a moment, so one buffer serves them all.
func (s *Schema) AppendFragment(dst []byte, elems ...*Element) ([]byte, error) {
	e := encoder{s: s}
	e.w.buf = dst
	e.w.writeBits(header, 8)
	for _, el := range elems {
		if err := e.root(&s.Fragment, el); err != nil {
			return nil, err
		}
	}
	e.w.writeBits(uint64(len(s.Fragment.Roots)+1), s.Fragment.Bits) // ED
	return e.w.buf, nil
}

// sizeHint is about what elems encode to, so that the output is allocated
// once: the values' bytes and a few bytes per element for event codes and
// lengths.
func sizeHint(elems ...*Element) int {
	n := 1
	for _, el := range elems {
		if el == nil {
			continue
		}
		n += 4 + len(el.Value) + len(el.Bytes)
		for _, a := range el.Attrs {
			n += 2 + len(a.Value)
		}
		n += sizeHint(el.Children...)
	}
	return n
}

type encoder struct {
	s     *Schema
	w     writer
	stack stack
}

func (e *encoder) fail(err error) error {
	return &Error{Path: e.stack.String(), Bit: -1, Err: err}
}

func (e *encoder) root(c *Content, el *Element) error {
	if el == nil {
		return e.fail(errors.New("no element"))
	}
	for i, r := range c.Roots {
		if el.Name.matches(e.s.Names[r.Name]) {
			e.w.writeBits(uint64(i), c.Bits)
			return e.element(r.Grammar, el)
		}
	}
	e.stack = append(e.stack, el)
	return e.fail(fmt.Errorf("%s is not an element of schema %s", el.Name.Local, e.s.Name))
}

func (e *encoder) element(gi int32, el *Element) error {
	e.stack = append(e.stack, el)
	if len(e.stack) > maxDepth {
		return e.fail(errors.New("elements nested too deep"))
	}
	g := &e.s.Grammars[gi]
	attrs := el.Attrs
	if len(attrs) > 1 { // sorted copy; el is the caller's
		attrs = slices.Clone(attrs)
		slices.SortStableFunc(attrs, func(a, b Attr) int {
			if c := strings.Compare(a.Name.Local, b.Name.Local); c != 0 {
				return c
			}
			return strings.Compare(a.Name.Space, b.Name.Space)
		})
	}
	ai, ci, valueDone := 0, 0, false
	state := int32(0)
	for {
		st := &g.States[state]
		code, p := -1, (*Prod)(nil)
		switch {
		case ai < len(attrs):
			for i := range st.Prods {
				q := &st.Prods[i]
				if q.Event == EventAT && attrs[ai].Name.matches(e.s.Names[q.Name]) {
					if p != nil {
						// Relaxed fragment grammars list every attribute of
						// the schema: Id exists in several namespaces.
						return e.fail(fmt.Errorf("attribute %s is ambiguous here: give its namespace", attrs[ai].Name.Local))
					}
					code, p = i, q
				}
			}
		case !valueDone && hasCH(st) && (el.Value != "" || el.Bytes != nil || !canEnd(st)):
			for i := range st.Prods {
				if st.Prods[i].Event == EventCH {
					code, p = i, &st.Prods[i]
				}
			}
		case ci < len(el.Children):
			for i := range st.Prods {
				q := &st.Prods[i]
				if q.Event == EventSE && el.Children[ci].Name.matches(e.s.Names[q.Name]) {
					code, p = i, q
					break
				}
			}
		default:
			for i := range st.Prods {
				if st.Prods[i].Event == EventEE {
					code, p = i, &st.Prods[i]
				}
			}
		}
		if p == nil {
			// Named only now: building the name on every event was a
			// tenth of an installation's allocations. Character data
			// cannot fail here (hasCH).
			want := "the end of the element"
			if ai < len(attrs) {
				want = "attribute " + attrs[ai].Name.Local
			} else if ci < len(el.Children) {
				want = "element " + el.Children[ci].Name.Local
			}
			return e.fail(fmt.Errorf("%s not allowed here by %s (allowed: %s)", want, g.Name, e.s.expected(st)))
		}
		e.w.writeBits(uint64(code), st.Bits)
		switch p.Event {
		case EventAT:
			if err := e.s.Types[p.Type].encodeValue(&e.w, attrs[ai].Value); err != nil {
				return e.fail(fmt.Errorf("attribute %s: %w", attrs[ai].Name.Local, err))
			}
			ai++
		case EventCH:
			t := e.s.Types[p.Type]
			var err error
			if el.Bytes != nil {
				err = t.encodeBinary(&e.w, el.Bytes)
			} else {
				err = t.encodeValue(&e.w, el.Value)
			}
			if err != nil {
				return e.fail(err)
			}
			valueDone = true
		case EventSE:
			if err := e.element(p.Grammar, el.Children[ci]); err != nil {
				return err
			}
			ci++
		case EventEE:
			if (el.Value != "" || el.Bytes != nil) && !valueDone {
				return e.fail(fmt.Errorf("%s has no text content", g.Name))
			}
			e.stack = e.stack[:len(e.stack)-1]
			return nil
		}
		state = p.Next
	}
}

// canEnd says whether a state may close the element: an empty value is
// then no CH event (relaxed grammars), while a simple type's first state
// always codes its value, empty or not.
func canEnd(st *State) bool {
	for _, p := range st.Prods {
		if p.Event == EventEE {
			return true
		}
	}
	return false
}

func hasCH(st *State) bool {
	for _, p := range st.Prods {
		if p.Event == EventCH {
			return true
		}
	}
	return false
}

// expected lists the declared events of a state, for errors.
func (s *Schema) expected(st *State) string {
	var out []string
	for _, p := range st.Prods {
		switch p.Event {
		case EventSE:
			out = append(out, s.Names[p.Name].Local)
		case EventAT:
			out = append(out, "@"+s.Names[p.Name].Local)
		case EventCH:
			out = append(out, "text")
		case EventEE:
			out = append(out, "end")
		}
	}
	return strings.Join(out, ", ")
}

// Decode decodes a document of the schema.
func (s *Schema) Decode(data []byte) (*Element, error) {
	d, err := s.newDecoder(data)
	if err != nil {
		return nil, err
	}
	el, end, err := d.root(&s.Document, false)
	if err != nil {
		return nil, err
	}
	if end {
		return nil, d.fail(errors.New("empty document"))
	}
	return el, d.finish()
}

// DecodeFragment decodes an EXI fragment of the schema.
func (s *Schema) DecodeFragment(data []byte) ([]*Element, error) {
	d, err := s.newDecoder(data)
	if err != nil {
		return nil, err
	}
	var out []*Element
	for {
		el, end, err := d.root(&s.Fragment, true)
		if err != nil {
			return nil, err
		}
		if end {
			return out, d.finish()
		}
		out = append(out, el)
	}
}

type decoder struct {
	s     *Schema
	r     reader
	stack stack
	count int
}

func (s *Schema) newDecoder(data []byte) (*decoder, error) {
	d := &decoder{s: s, r: reader{buf: data}}
	if bytes.HasPrefix(data, []byte("$EXI")) {
		d.r.pos = 32
	}
	h, err := d.r.readBits(8)
	if err != nil {
		return nil, d.fail(err)
	}
	if h != header {
		return nil, d.fail(fmt.Errorf("EXI header %#02x, want %#02x (no options, version 1)", h, header))
	}
	return d, nil
}

func (d *decoder) fail(err error) error {
	return &Error{Path: d.stack.String(), Bit: int(d.r.pos), Err: err}
}

// finish checks that only the padding of the last byte is left.
func (d *decoder) finish() error {
	if d.r.remaining() >= 8 {
		return d.fail(fmt.Errorf("%d bytes after the end of the document", d.r.remaining()/8))
	}
	return nil
}

func (d *decoder) root(c *Content, fragment bool) (*Element, bool, error) {
	code, err := d.r.readBits(c.Bits)
	if err != nil {
		return nil, false, d.fail(err)
	}
	switch {
	case code < uint64(len(c.Roots)):
	case code == uint64(len(c.Roots)):
		return nil, false, d.fail(errors.New("SE(*): an element the schema does not declare"))
	case fragment && code == uint64(len(c.Roots))+1:
		return nil, true, nil
	default:
		return nil, false, d.fail(fmt.Errorf("event code %d out of range", code))
	}
	r := c.Roots[code]
	el := &Element{Name: d.s.Names[r.Name]}
	return el, false, d.element(r.Grammar, el)
}

func (d *decoder) element(gi int32, el *Element) error {
	d.stack = append(d.stack, el)
	d.count++
	if d.count > maxElements {
		return d.fail(fmt.Errorf("more than %d elements", maxElements))
	}
	if len(d.stack) > maxDepth {
		return d.fail(errors.New("elements nested too deep"))
	}
	g := &d.s.Grammars[gi]
	state := int32(0)
	for {
		st := &g.States[state]
		code, err := d.r.readBits(st.Bits)
		if err != nil {
			return d.fail(err)
		}
		if code >= uint64(len(st.Prods)) {
			if code == uint64(len(st.Prods)) {
				return d.fail(fmt.Errorf("undeclared event (second-level code) in %s: the content deviates from the schema (allowed: %s)", g.Name, d.s.expected(st)))
			}
			return d.fail(fmt.Errorf("event code %d out of range in %s", code, g.Name))
		}
		p := &st.Prods[code]
		switch p.Event {
		case EventAT:
			v, err := d.s.Types[p.Type].decodeValue(&d.r)
			if err != nil {
				return d.fail(fmt.Errorf("attribute %s: %w", d.s.Names[p.Name].Local, err))
			}
			el.Attrs = append(el.Attrs, Attr{Name: d.s.Names[p.Name], Value: v})
		case EventCH:
			v, err := d.s.Types[p.Type].decodeValue(&d.r)
			if err != nil {
				return d.fail(err)
			}
			el.Value = v
		case EventSE:
			c := &Element{Name: d.s.Names[p.Name]}
			el.Children = append(el.Children, c)
			if err := d.element(p.Grammar, c); err != nil {
				return err
			}
		case EventEE:
			d.stack = d.stack[:len(d.stack)-1]
			return nil
		default:
			return d.fail(fmt.Errorf("wildcard or mixed content in %s is not supported", g.Name))
		}
		state = p.Next
	}
}
