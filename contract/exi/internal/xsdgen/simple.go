package xsdgen

import (
	"fmt"
	"math"
	"strconv"

	"github.com/pncpki/pncpki/contract/exi"
)

// builtin describes an XSD built-in simple type.
type builtin struct {
	kind           exi.ValueKind
	hasMin, hasMax bool
	min, max       int64
}

var builtins = map[string]builtin{
	"string": {kind: exi.KindString}, "normalizedString": {kind: exi.KindString},
	"token": {kind: exi.KindString}, "anyURI": {kind: exi.KindString},
	"ID": {kind: exi.KindString}, "IDREF": {kind: exi.KindString},
	"NCName": {kind: exi.KindString}, "Name": {kind: exi.KindString},
	"NMTOKEN": {kind: exi.KindString}, "language": {kind: exi.KindString},
	"anySimpleType":      {kind: exi.KindString},
	"boolean":            {kind: exi.KindBoolean},
	"base64Binary":       {kind: exi.KindBase64},
	"hexBinary":          {kind: exi.KindHex},
	"integer":            {kind: exi.KindInteger},
	"nonNegativeInteger": {kind: exi.KindInteger, hasMin: true},
	"positiveInteger":    {kind: exi.KindInteger, hasMin: true, min: 1},
	"nonPositiveInteger": {kind: exi.KindInteger, hasMax: true},
	"negativeInteger":    {kind: exi.KindInteger, hasMax: true, max: -1},
	"long":               {kind: exi.KindInteger, hasMin: true, hasMax: true, min: math.MinInt64, max: math.MaxInt64},
	"int":                {kind: exi.KindInteger, hasMin: true, hasMax: true, min: math.MinInt32, max: math.MaxInt32},
	"short":              {kind: exi.KindInteger, hasMin: true, hasMax: true, min: math.MinInt16, max: math.MaxInt16},
	"byte":               {kind: exi.KindInteger, hasMin: true, hasMax: true, min: math.MinInt8, max: math.MaxInt8},
	// unsignedLong's maximum does not fit an int64: it stays unbounded
	// above, which changes nothing in its encoding (Unsigned Integer).
	"unsignedLong":  {kind: exi.KindInteger, hasMin: true},
	"unsignedInt":   {kind: exi.KindInteger, hasMin: true, hasMax: true, max: math.MaxUint32},
	"unsignedShort": {kind: exi.KindInteger, hasMin: true, hasMax: true, max: math.MaxUint16},
	"unsignedByte":  {kind: exi.KindInteger, hasMin: true, hasMax: true, max: math.MaxUint8},
}

// simpleType returns the index of the simple type named q (or declared
// inline by n when q is zero), adding it to the schema on first use.
func (g *gen) simpleType(q exi.QName, n *node) (int32, error) {
	key := any(q)
	if n != nil {
		key = n
	}
	if i, ok := g.typeIdx[key]; ok {
		return i, nil
	}
	t := exi.SimpleType{Name: q.Local, MinLen: -1, MaxLen: -1}
	if n != nil {
		t.Name = "anonymous simple type"
	}
	if err := g.deriveSimple(&t, q, n, 0); err != nil {
		return 0, err
	}
	if len(t.Enum) > 0 {
		t.Kind, t.Bits = exi.KindEnum, codeBits(len(t.Enum))
	} else if t.Kind == exi.KindInteger {
		switch {
		case t.HasMin && t.HasMax && t.Max-t.Min >= 0 && t.Max-t.Min < 4096:
			t.Kind, t.Bits = exi.KindNBit, codeBits(int(t.Max-t.Min+1))
		case t.HasMin && t.Min >= 0:
			t.Kind = exi.KindUnsigned
		}
	}
	i := int32(len(g.out.Types))
	g.out.Types = append(g.out.Types, t)
	g.typeIdx[key] = i
	return i, nil
}

// deriveSimple walks a restriction chain down to its built-in type,
// applying the facets on the way; a facet of a derived type wins over the
// base's, as a restriction can only narrow.
func (g *gen) deriveSimple(t *exi.SimpleType, q exi.QName, n *node, depth int) error {
	if depth > 32 {
		return fmt.Errorf("simple type %s: derivation too deep", t.Name)
	}
	if n == nil {
		if q.Space == xsNS {
			b, ok := builtins[q.Local]
			if !ok {
				return fmt.Errorf("built-in type %s is not supported", q.Local)
			}
			if t.Kind == 0 {
				t.Kind = b.kind
			}
			if b.hasMin && !t.HasMin {
				t.HasMin, t.Min = true, b.min
			}
			if b.hasMax && !t.HasMax {
				t.HasMax, t.Max = true, b.max
			}
			return nil
		}
		n = g.s.stypes[q]
		if n == nil {
			return fmt.Errorf("simple type %s{%s} not found", q.Local, q.Space)
		}
	}
	var r *node
	for _, k := range n.kids {
		switch k.kind {
		case "restriction":
			r = k
		default:
			return fmt.Errorf("simple type %s: %s is not supported", t.Name, k.kind)
		}
	}
	if r == nil {
		return fmt.Errorf("simple type %s has no restriction", t.Name)
	}
	var enum []string
	for _, f := range r.kids {
		v := f.attr("value")
		num := func() (int64, error) {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("simple type %s: facet %s=%q: %w", t.Name, f.kind, v, err)
			}
			return x, nil
		}
		switch f.kind {
		case "simpleType":
		case "enumeration":
			enum = append(enum, v)
		case "maxLength", "minLength", "length":
			x, err := num()
			if err != nil {
				return err
			}
			if (f.kind == "maxLength" || f.kind == "length") && t.MaxLen < 0 {
				t.MaxLen = int32(x)
			}
			if (f.kind == "minLength" || f.kind == "length") && t.MinLen < 0 {
				t.MinLen = int32(x)
			}
		case "minInclusive", "maxInclusive":
			x, err := num()
			if err != nil {
				return err
			}
			if f.kind == "minInclusive" && !t.HasMin {
				t.HasMin, t.Min = true, x
			}
			if f.kind == "maxInclusive" && !t.HasMax {
				t.HasMax, t.Max = true, x
			}
		default:
			return fmt.Errorf("simple type %s: facet %s is not supported", t.Name, f.kind)
		}
	}
	if len(enum) > 0 && len(t.Enum) == 0 {
		t.Enum = enum
	}
	if len(r.kids) > 0 && r.attr("base") == "" {
		return fmt.Errorf("simple type %s: restriction without base", t.Name)
	}
	var inline *node
	for _, k := range r.kids {
		if k.kind == "simpleType" {
			inline = k
		}
	}
	if inline != nil {
		return g.deriveSimple(t, exi.QName{}, inline, depth+1)
	}
	base, err := n.doc.qname(r.attr("base"))
	if err != nil {
		return err
	}
	return g.deriveSimple(t, base, nil, depth+1)
}

func codeBits(n int) uint8 {
	b := uint8(0)
	for (1 << b) < n {
		b++
	}
	return b
}
