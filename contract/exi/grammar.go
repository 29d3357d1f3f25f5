//go:generate go run ./internal/gen -o iso2_grammar.go
//go:generate go run ./internal/gen -schema iso15118-20 -o iso20_grammar.go

package exi

// The tables below are what the generator (internal/xsdgen) derives from
// the XSDs following EXI 1.0 section 8.5: schema-informed grammars,
// normalized, with event codes assigned and, for non-strict grammars, one
// more first-level code in every element state for the escape to the
// second level (undeclared productions). Only the first level is kept:
// an encoder of schema-valid documents never needs the others, and the
// decoder refuses them as deviations from the schema.

// QName is an expanded XML name.
type QName struct {
	Space, Local string
}

// Event is the kind of a grammar production's terminal.
type Event uint8

// Events a production can carry.
const (
	EventSE    Event = iota + 1 // SE(qname): a declared child element
	EventAT                     // AT(qname): a declared attribute
	EventCH                     // CH [schema-typed value]
	EventEE                     // EE: end of the element
	EventSEAny                  // SE(*) or SE(uri:*): wildcard content
	EventATAny                  // AT(*): wildcard attribute
	EventCHAny                  // CH [untyped value]: mixed content
)

// Prod is one production of a grammar state.
type Prod struct {
	Event   Event
	Name    int32 // SE, AT: index into Schema.Names
	Grammar int32 // SE: index into Schema.Grammars
	Type    int32 // AT, CH: index into Schema.Types
	Next    int32 // state after the event
}

// State is a grammar state: its productions in event-code order and the
// width of the first-level event code.
type State struct {
	Bits  uint8
	Prods []Prod
}

// Grammar is the grammar of one element declaration's type. State 0 is
// where the element starts.
type Grammar struct {
	Name   string // the type's name, for errors
	States []State
}

// Root is a production of a document or fragment grammar.
type Root struct {
	Name    int32
	Grammar int32
}

// Content is the content production list of the document or fragment
// grammar: SE of each root in code order, then SE(*) and, for fragments, ED.
type Content struct {
	Bits  uint8
	Roots []Root
}

// ValueKind is how a simple type's values are represented in EXI (7.1).
type ValueKind uint8

// Value kinds used by the generated schemas.
const (
	KindString   ValueKind = iota + 1 // String (7.1.10), also anyURI, ID
	KindBase64                        // Binary (7.1.1), base64Binary lexical form
	KindHex                           // Binary (7.1.1), hexBinary lexical form
	KindBoolean                       // Boolean (7.1.2)
	KindInteger                       // Integer (7.1.5): sign bit and magnitude
	KindUnsigned                      // Unsigned Integer (7.1.6)
	KindNBit                          // n-bit Unsigned Integer of value-Min (7.1.9)
	KindEnum                          // Enumeration (7.2): index in schema order
)

// SimpleType is a simple type with the facets EXI and validation need.
type SimpleType struct {
	Name   string
	Kind   ValueKind
	MinLen int32 // characters or bytes; -1 when unbounded
	MaxLen int32
	// Integer bounds (Min/Max valid when HasMin/HasMax); Bits is the
	// width of an n-bit integer or of an enumeration index.
	HasMin, HasMax bool
	Min, Max       int64
	Bits           uint8
	Enum           []string
}

// Schema is one generated schema set with its document grammar and its
// fragment grammar (EXI 8.5.1 and 8.5.2).
type Schema struct {
	Name     string
	Names    []QName
	Types    []SimpleType
	Grammars []Grammar
	Document Content
	Fragment Content
}
