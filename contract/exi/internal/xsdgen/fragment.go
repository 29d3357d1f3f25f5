package xsdgen

import (
	"github.com/pncpki/pncpki/contract/exi"
)

// fragmentGrammar is the grammar a fragment uses for elements named q:
// the declaration's own grammar when every declaration of q has the same
// type, else the relaxed element fragment grammar of 8.5.3. ISO 15118-2's
// eMAID (EMAIDType in certificate responses, eMAIDType elsewhere) is the
// case that matters: its signed fragment must use the relaxed grammar.
func (g *gen) fragmentGrammar(q exi.QName) (int32, error) {
	ds := g.decls[q]
	same := true
	for _, d := range ds[1:] {
		if d.typeKey != ds[0].typeKey {
			same = false
		}
	}
	if same {
		return g.declGrammar(ds[0])
	}
	if i, ok := g.fragIdx[q]; ok {
		return i, nil
	}
	i := int32(len(g.out.Grammars))
	g.out.Grammars = append(g.out.Grammars, exi.Grammar{})
	g.fragIdx[q] = i

	// Whether any declaration of q has content decides between the two
	// forms of the grammar; its productions list every attribute and
	// every element the schema declares, as 8.5.3 specifies.
	hasContent := false
	for _, d := range ds {
		switch k := d.typeKey.(type) {
		case exi.QName:
			n := g.s.ctypes[k]
			if n == nil {
				hasContent = true // simple type
				continue
			}
			_, c, err := g.complexParts(k.Local, n, 0)
			if err != nil {
				return 0, err
			}
			hasContent = hasContent || c.simple >= 0 || c.mixed || len(c.particles) > 0
		case *node:
			if k.kind != "complexType" {
				hasContent = true
				continue
			}
			_, c, err := g.complexParts(q.Local, k, 0)
			if err != nil {
				return 0, err
			}
			hasContent = hasContent || c.simple >= 0 || c.mixed || len(c.particles) > 0
		}
	}
	attrType, err := g.allAttributes()
	if err != nil {
		return 0, err
	}
	var b builder
	s0 := b.state()
	attrs := sortedNames(keys(attrType))
	for _, a := range attrs {
		b.add(s0, pprod{ev: exi.EventAT, name: g.name(a), typ: attrType[a], next: s0})
	}
	b.add(s0, pprod{ev: exi.EventATAny, next: s0})
	if !hasContent {
		b.add(s0, pprod{ev: exi.EventEE})
		g.out.Grammars[i] = relaxed(q.Local, &b, s0, -1)
		return i, nil
	}
	s1 := b.state()
	names := sortedNames(keys(g.decls))
	for _, s := range []int{s0, s1} {
		for _, c := range names {
			gi, err := g.fragmentGrammar(c)
			if err != nil {
				return 0, err
			}
			b.add(s, pprod{ev: exi.EventSE, name: g.name(c), grammar: gi, next: s1})
		}
		b.add(s, pprod{ev: exi.EventSEAny, next: s1})
		b.add(s, pprod{ev: exi.EventEE})
		// Character content of a relaxed grammar is untyped: a string.
		b.add(s, pprod{ev: exi.EventCH, typ: g.untyped, next: s1})
	}
	g.out.Grammars[i] = relaxed(q.Local, &b, s0, s1)
	return i, nil
}

// relaxed turns the element fragment grammar's states into a Grammar. It
// is already complete (it has no undeclared productions to escape to), so
// its codes count only what it lists.
func relaxed(name string, b *builder, s0, s1 int) exi.Grammar {
	gr := exi.Grammar{Name: "element fragment grammar of " + name}
	for _, s := range []int{s0, s1} {
		if s < 0 {
			continue
		}
		st := exi.State{Bits: codeBits(len(b.states[s]))}
		for _, p := range b.states[s] {
			q := exi.Prod{Event: p.ev, Name: p.name, Grammar: p.grammar, Type: p.typ}
			if p.ev != exi.EventEE {
				q.Next = map[int]int32{s0: 0, s1: 1}[p.next]
			}
			st.Prods = append(st.Prods, q)
		}
		gr.States = append(gr.States, st)
	}
	return gr
}

// allAttributes returns every attribute name the schema declares with its
// type: the declared one when all declarations agree, else untyped.
func (g *gen) allAttributes() (map[exi.QName]int32, error) {
	out := map[exi.QName]int32{}
	var walk func(n *node, top bool) error
	walk = func(n *node, top bool) error {
		for _, k := range n.kids {
			if k.kind == "attribute" && k.attr("ref") == "" {
				u, err := g.attribute(k)
				if err != nil {
					return err
				}
				if top {
					u.name = exi.QName{Space: k.doc.target, Local: k.attr("name")}
				}
				if t, ok := out[u.name]; ok && t != u.typ {
					out[u.name] = g.untyped
				} else {
					out[u.name] = u.typ
				}
			}
			if err := walk(k, false); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range g.s.docs {
		if err := walk(d.root, true); err != nil {
			return nil, err
		}
	}
	return out, nil
}
