package xsdgen

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/pncpki/pncpki/contract/exi"
)

// gen builds one exi.Schema.
type gen struct {
	s          *set
	out        *exi.Schema
	names      map[exi.QName]int32
	typeIdx    map[any]int32
	grammarIdx map[any]int32
	decls      map[exi.QName][]decl // every element declaration, for fragments
	fragIdx    map[exi.QName]int32
	untyped    int32
}

// decl is an element declaration: its name and the key of its type.
type decl struct {
	name    exi.QName
	typeKey any // exi.QName of a named type, or the *node of an anonymous one
	node    *node
}

// Build derives the grammars of the schema set reached from files.
func Build(name string, files ...string) (*exi.Schema, error) {
	s, err := load(files)
	if err != nil {
		return nil, err
	}
	g := &gen{
		s:          s,
		out:        &exi.Schema{Name: name},
		names:      map[exi.QName]int32{},
		typeIdx:    map[any]int32{},
		grammarIdx: map[any]int32{},
		decls:      map[exi.QName][]decl{},
		fragIdx:    map[exi.QName]int32{},
	}
	if g.untyped, err = g.simpleType(exi.QName{Space: xsNS, Local: "string"}, nil); err != nil {
		return nil, err
	}
	// Document grammar (8.5.1): every global element, sorted by local
	// name then namespace; one more code for SE(*).
	globals := sortedNames(keys(s.elements))
	for _, q := range globals {
		d, err := g.globalDecl(q)
		if err != nil {
			return nil, err
		}
		gi, err := g.declGrammar(d)
		if err != nil {
			return nil, fmt.Errorf("element %s: %w", q.Local, err)
		}
		g.out.Document.Roots = append(g.out.Document.Roots, exi.Root{Name: g.name(q), Grammar: gi})
	}
	g.out.Document.Bits = codeBits(len(globals) + 1)
	// Fragment grammar (8.5.2): every element declaration, global and
	// local, one production per name; codes for SE(*) and ED follow.
	// Collecting the local declarations means walking every type.
	for _, q := range globals {
		d, _ := g.globalDecl(q)
		g.decls[q] = append(g.decls[q], d)
	}
	for _, q := range sortedNames(keys(s.ctypes)) {
		if err := g.collectLocal(s.ctypes[q]); err != nil {
			return nil, err
		}
	}
	for _, q := range globals {
		if err := g.collectLocal(s.elements[q]); err != nil {
			return nil, err
		}
	}
	frag := sortedNames(keys(g.decls))
	for _, q := range frag {
		gi, err := g.fragmentGrammar(q)
		if err != nil {
			return nil, fmt.Errorf("fragment element %s: %w", q.Local, err)
		}
		g.out.Fragment.Roots = append(g.out.Fragment.Roots, exi.Root{Name: g.name(q), Grammar: gi})
	}
	g.out.Fragment.Bits = codeBits(len(frag) + 2)
	return g.out, nil
}

func keys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// sortedNames sorts qualified names as EXI does: by local name, then by
// namespace.
func sortedNames(qs []exi.QName) []exi.QName {
	slices.SortFunc(qs, func(a, b exi.QName) int {
		return cmp.Or(cmp.Compare(a.Local, b.Local), cmp.Compare(a.Space, b.Space))
	})
	return qs
}

func (g *gen) name(q exi.QName) int32 {
	if i, ok := g.names[q]; ok {
		return i
	}
	i := int32(len(g.out.Names))
	g.out.Names = append(g.out.Names, q)
	g.names[q] = i
	return i
}

func (g *gen) globalDecl(q exi.QName) (decl, error) {
	n := g.s.elements[q]
	if n == nil {
		return decl{}, fmt.Errorf("element %s{%s} not found", q.Local, q.Space)
	}
	return g.declOf(q, n)
}

// declOf returns the declaration of element node n named q.
func (g *gen) declOf(q exi.QName, n *node) (decl, error) {
	d := decl{name: q, node: n}
	if t := n.attr("type"); t != "" {
		tq, err := n.doc.qname(t)
		if err != nil {
			return d, err
		}
		d.typeKey = tq
		return d, nil
	}
	for _, k := range n.kids {
		if k.kind == "complexType" || k.kind == "simpleType" {
			d.typeKey = k
			return d, nil
		}
	}
	return d, fmt.Errorf("element %s has no type (xs:anyType is not supported)", q.Local)
}

// localName is the name of a local element or attribute declaration.
func localName(n *node, qualifiedDefault bool) exi.QName {
	q := exi.QName{Local: n.attr("name")}
	if f := n.attr("form"); f == "qualified" || (f == "" && qualifiedDefault) {
		q.Space = n.doc.target
	}
	return q
}

// collectLocal records the local element declarations under n.
func (g *gen) collectLocal(n *node) error {
	for _, k := range n.kids {
		if k.kind == "element" && k.attr("ref") == "" {
			q := localName(k, k.doc.elemQualified)
			d, err := g.declOf(q, k)
			if err != nil {
				return err
			}
			g.decls[q] = append(g.decls[q], d)
		}
		if err := g.collectLocal(k); err != nil {
			return err
		}
	}
	return nil
}

// declGrammar returns the grammar of an element declaration's type.
func (g *gen) declGrammar(d decl) (int32, error) {
	if i, ok := g.grammarIdx[d.typeKey]; ok {
		return i, nil
	}
	i := int32(len(g.out.Grammars))
	g.out.Grammars = append(g.out.Grammars, exi.Grammar{})
	g.grammarIdx[d.typeKey] = i
	var gr exi.Grammar
	var err error
	switch k := d.typeKey.(type) {
	case exi.QName:
		if n := g.s.ctypes[k]; n != nil {
			gr, err = g.complexGrammar(k.Local, n)
		} else {
			gr, err = g.simpleGrammar(k, nil)
		}
	case *node:
		if k.kind == "complexType" {
			gr, err = g.complexGrammar("type of "+d.name.Local, k)
		} else {
			gr, err = g.simpleGrammar(exi.QName{}, k)
		}
	}
	if err != nil {
		return 0, err
	}
	g.out.Grammars[i] = gr
	return i, nil
}

// simpleGrammar is the grammar of an element of simple type:
// CH [typed value] then EE.
func (g *gen) simpleGrammar(q exi.QName, n *node) (exi.Grammar, error) {
	ti, err := g.simpleType(q, n)
	if err != nil {
		return exi.Grammar{}, err
	}
	var b builder
	s0, s1 := b.state(), b.state()
	b.add(s0, pprod{ev: exi.EventCH, typ: ti, next: s1})
	b.add(s1, pprod{ev: exi.EventEE})
	return b.finish(g.out.Types[ti].Name, s0)
}

// attrUse is an attribute of a complex type.
type attrUse struct {
	name     exi.QName
	typ      int32
	required bool
}

// content is what a complex type holds after its attributes.
type content struct {
	simple    int32   // simple content type, or -1
	particles []*node // complex content: particles in sequence
	mixed     bool
}

// complexParts collects a complex type's attributes and content, following
// derivation by extension to its bases.
func (g *gen) complexParts(name string, n *node, depth int) ([]attrUse, content, error) {
	c := content{simple: -1, mixed: n.attr("mixed") == "true"}
	var attrs []attrUse
	if depth > 32 {
		return nil, c, fmt.Errorf("type %s: derivation too deep", name)
	}
	addAttr := func(a *node) error {
		u, err := g.attribute(a)
		if err != nil {
			return fmt.Errorf("type %s: %w", name, err)
		}
		attrs = append(attrs, u)
		return nil
	}
	for _, k := range n.kids {
		switch k.kind {
		case "sequence", "choice":
			c.particles = append(c.particles, k)
		case "attribute":
			if err := addAttr(k); err != nil {
				return nil, c, err
			}
		case "complexContent", "simpleContent":
			if k.attr("mixed") == "true" {
				c.mixed = true
			}
			if len(k.kids) != 1 || k.kids[0].kind != "extension" {
				return nil, c, fmt.Errorf("type %s: only derivation by extension is supported", name)
			}
			ext := k.kids[0]
			base, err := ext.doc.qname(ext.attr("base"))
			if err != nil {
				return nil, c, err
			}
			if bn := g.s.ctypes[base]; bn != nil {
				ba, bc, err := g.complexParts(base.Local, bn, depth+1)
				if err != nil {
					return nil, c, err
				}
				attrs = append(attrs, ba...)
				c.simple = bc.simple
				c.particles = append(c.particles, bc.particles...)
				c.mixed = c.mixed || bc.mixed
			} else if k.kind == "simpleContent" {
				if c.simple, err = g.simpleType(base, nil); err != nil {
					return nil, c, err
				}
			} else {
				return nil, c, fmt.Errorf("type %s: base %s not found", name, base.Local)
			}
			for _, e := range ext.kids {
				switch e.kind {
				case "sequence", "choice":
					c.particles = append(c.particles, e)
				case "attribute":
					if err := addAttr(e); err != nil {
						return nil, c, err
					}
				default:
					return nil, c, fmt.Errorf("type %s: %s in an extension is not supported", name, e.kind)
				}
			}
		default:
			return nil, c, fmt.Errorf("type %s: %s is not supported", name, k.kind)
		}
	}
	return attrs, c, nil
}

func (g *gen) attribute(a *node) (attrUse, error) {
	var u attrUse
	if ref := a.attr("ref"); ref != "" {
		q, err := a.doc.qname(ref)
		if err != nil {
			return u, err
		}
		gn := g.s.attrs[q]
		if gn == nil {
			return u, fmt.Errorf("attribute %s not found", q.Local)
		}
		u.name = q
		u.required = a.attr("use") == "required"
		a = gn
	} else {
		u.name = localName(a, a.doc.attrQualified)
		u.required = a.attr("use") == "required"
	}
	var err error
	if t := a.attr("type"); t != "" {
		q, err := a.doc.qname(t)
		if err != nil {
			return u, err
		}
		u.typ, err = g.simpleType(q, nil)
		return u, err
	}
	for _, k := range a.kids {
		if k.kind == "simpleType" {
			u.typ, err = g.simpleType(exi.QName{}, k)
			return u, err
		}
	}
	u.typ = g.untyped
	return u, nil
}

// complexGrammar builds the grammar of a complex type (8.5.4.1.3): one
// small grammar per attribute use, sorted by name, then the content,
// concatenated and normalized.
func (g *gen) complexGrammar(name string, n *node) (exi.Grammar, error) {
	attrs, c, err := g.complexParts(name, n, 0)
	if err != nil {
		return exi.Grammar{}, err
	}
	slices.SortStableFunc(attrs, func(a, b attrUse) int {
		return cmp.Or(cmp.Compare(a.name.Local, b.name.Local), cmp.Compare(a.name.Space, b.name.Space))
	})
	var b builder
	var parts []sub
	for _, a := range attrs {
		s0, s1 := b.state(), b.state()
		b.add(s0, pprod{ev: exi.EventAT, name: g.name(a.name), typ: a.typ, next: s1})
		if !a.required {
			b.add(s0, pprod{ev: exi.EventEE})
		}
		b.add(s1, pprod{ev: exi.EventEE})
		parts = append(parts, sub{start: s0, states: []int{s0, s1}})
	}
	var body sub
	switch {
	case c.simple >= 0:
		s0, s1 := b.state(), b.state()
		b.add(s0, pprod{ev: exi.EventCH, typ: c.simple, next: s1})
		b.add(s1, pprod{ev: exi.EventEE})
		body = sub{start: s0, states: []int{s0, s1}}
	default:
		body = b.empty()
		for _, p := range c.particles {
			ps, err := g.particle(&b, p)
			if err != nil {
				return exi.Grammar{}, fmt.Errorf("type %s: %w", name, err)
			}
			body = b.concat(body, ps)
		}
		if c.mixed {
			for _, s := range body.states {
				b.add(s, pprod{ev: exi.EventCHAny, next: s})
			}
		}
	}
	all := body
	for i := len(parts) - 1; i >= 0; i-- {
		all = b.concat(parts[i], all)
	}
	return b.finish(name, all.start)
}

// occurs reads minOccurs and maxOccurs; max -1 is unbounded.
func occurs(n *node) (int, int, error) {
	lo, hi := 1, 1
	var err error
	if v := n.attr("minOccurs"); v != "" {
		if lo, err = strconv.Atoi(v); err != nil {
			return 0, 0, fmt.Errorf("minOccurs %q: %w", v, err)
		}
	}
	if v := n.attr("maxOccurs"); v == "unbounded" {
		hi = -1
	} else if v != "" {
		if hi, err = strconv.Atoi(v); err != nil {
			return 0, 0, fmt.Errorf("maxOccurs %q: %w", v, err)
		}
	}
	if hi >= 0 && hi < lo || hi > 4096 || lo > 4096 {
		return 0, 0, fmt.Errorf("occurrence range %d..%d not supported", lo, hi)
	}
	return lo, hi, nil
}

// particle builds a particle grammar (8.5.4.1.5): the term repeated
// minOccurs times, then either a loop (unbounded) or the optional copies
// up to maxOccurs.
func (g *gen) particle(b *builder, p *node) (sub, error) {
	lo, hi, err := occurs(p)
	if err != nil {
		return sub{}, err
	}
	out := b.empty()
	for range lo {
		t, err := g.term(b, p)
		if err != nil {
			return sub{}, err
		}
		out = b.concat(out, t)
	}
	if hi < 0 {
		t, err := g.term(b, p)
		if err != nil {
			return sub{}, err
		}
		for _, s := range t.states {
			b.replaceEE(s, t.start)
		}
		b.add(t.start, pprod{ev: exi.EventEE})
		return b.concat(out, t), nil
	}
	for range hi - lo {
		t, err := g.term(b, p)
		if err != nil {
			return sub{}, err
		}
		b.addEE(t.start)
		out = b.concat(out, t)
	}
	return out, nil
}

// term builds the grammar of one occurrence of a particle's term.
func (g *gen) term(b *builder, p *node) (sub, error) {
	switch p.kind {
	case "element":
		var members []decl
		if ref := p.attr("ref"); ref != "" {
			q, err := p.doc.qname(ref)
			if err != nil {
				return sub{}, err
			}
			// A substitution group head stands for itself and every
			// member, sorted by name (8.5.4.1.6). Abstract declarations
			// keep their codes, as the deployed codecs number them
			// (ISO 15118-2's BodyElement is code 0 of every Body).
			for _, m := range sortedNames(append([]exi.QName{q}, g.substMembers(q)...)) {
				n := g.s.elements[m]
				if n == nil {
					return sub{}, fmt.Errorf("element %s not found", m.Local)
				}
				d, err := g.declOf(m, n)
				if err != nil {
					return sub{}, err
				}
				members = append(members, d)
			}
		} else {
			d, err := g.declOf(localName(p, p.doc.elemQualified), p)
			if err != nil {
				return sub{}, err
			}
			members = append(members, d)
		}
		s0, s1 := b.state(), b.state()
		for _, d := range members {
			gi, err := g.declGrammar(d)
			if err != nil {
				return sub{}, fmt.Errorf("element %s: %w", d.name.Local, err)
			}
			b.add(s0, pprod{ev: exi.EventSE, name: g.name(d.name), grammar: gi, next: s1})
		}
		b.add(s1, pprod{ev: exi.EventEE})
		return sub{start: s0, states: []int{s0, s1}}, nil
	case "any":
		if ns := p.attr("namespace"); ns != "" && ns != "##any" && ns != "##other" {
			return sub{}, fmt.Errorf("wildcard namespace %q not supported", ns)
		}
		s0, s1 := b.state(), b.state()
		b.add(s0, pprod{ev: exi.EventSEAny, next: s1})
		b.add(s1, pprod{ev: exi.EventEE})
		return sub{start: s0, states: []int{s0, s1}}, nil
	case "sequence":
		out := b.empty()
		for _, k := range p.kids {
			ps, err := g.particle(b, k)
			if err != nil {
				return sub{}, err
			}
			out = b.concat(out, ps)
		}
		return out, nil
	case "choice":
		s0 := b.state()
		out := sub{start: s0, states: []int{s0}}
		if len(p.kids) == 0 {
			b.add(s0, pprod{ev: exi.EventEE})
		}
		for _, k := range p.kids {
			ps, err := g.particle(b, k)
			if err != nil {
				return sub{}, err
			}
			b.add(s0, pprod{eps: true, next: ps.start})
			out.states = append(out.states, ps.states...)
		}
		return out, nil
	}
	return sub{}, fmt.Errorf("particle %s is not supported", p.kind)
}

// substMembers lists the members of a substitution group, transitively.
func (g *gen) substMembers(head exi.QName) []exi.QName {
	var out []exi.QName
	for _, m := range g.s.subst[head] {
		out = append(out, m)
		out = append(out, g.substMembers(m)...)
	}
	return out
}
