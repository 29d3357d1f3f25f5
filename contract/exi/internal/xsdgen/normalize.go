package xsdgen

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/pncpki/pncpki/contract/exi"
)

// pprod is a production of a grammar under construction; eps marks a
// production without terminal (an edge to another state).
type pprod struct {
	ev      exi.Event
	eps     bool
	name    int32
	grammar int32
	typ     int32
	next    int
}

// builder holds the states of one grammar under construction.
type builder struct {
	states [][]pprod
}

// sub is a part grammar: its start and every state it owns. Its EE
// productions are where a concatenation continues.
type sub struct {
	start  int
	states []int
}

func (b *builder) state() int {
	b.states = append(b.states, nil)
	return len(b.states) - 1
}

func (b *builder) add(s int, p pprod) { b.states[s] = append(b.states[s], p) }

func (b *builder) empty() sub {
	s := b.state()
	b.add(s, pprod{ev: exi.EventEE})
	return sub{start: s, states: []int{s}}
}

func (b *builder) addEE(s int) {
	for _, p := range b.states[s] {
		if !p.eps && p.ev == exi.EventEE {
			return
		}
	}
	b.add(s, pprod{ev: exi.EventEE})
}

// replaceEE turns the EE productions of state s into edges to next.
func (b *builder) replaceEE(s, next int) {
	for i, p := range b.states[s] {
		if !p.eps && p.ev == exi.EventEE {
			b.states[s][i] = pprod{eps: true, next: next}
		}
	}
}

// concat is grammar concatenation (8.5.4.1.1).
func (b *builder) concat(x, y sub) sub {
	for _, s := range x.states {
		b.replaceEE(s, y.start)
	}
	return sub{start: x.start, states: append(slices.Clone(x.states), y.states...)}
}

// finish normalizes the grammar reachable from start (8.5.4.2): edges are
// replaced by the productions they lead to, duplicates are removed, and
// two productions with the same terminal but different targets are merged
// into one whose target is the union of both. Then the event codes are
// assigned (8.5.4.3) and, the grammar being non-strict, one more
// first-level code is counted for the escape to undeclared productions.
func (b *builder) finish(name string, start int) (exi.Grammar, error) {
	type key struct {
		ev   exi.Event
		name int32
	}
	unions := map[[2]int]int{}
	done := map[int][]pprod{}
	var order []int
	queue := []int{start}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if _, ok := done[s]; ok {
			continue
		}
		var prods []pprod
		seen := map[int]bool{}
		var expand func(int)
		expand = func(x int) {
			if seen[x] {
				return
			}
			seen[x] = true
			for _, p := range b.states[x] {
				if p.eps {
					expand(p.next)
				} else {
					prods = append(prods, p)
				}
			}
		}
		expand(s)
		var out []pprod
		index := map[key]int{}
		for _, p := range prods {
			k := key{p.ev, p.name}
			if p.ev == exi.EventSE || p.ev == exi.EventAT {
				k.name = p.name
			} else {
				k.name = -1
			}
			i, dup := index[k]
			if !dup {
				index[k] = len(out)
				out = append(out, p)
				continue
			}
			q := &out[i]
			if q.ev == exi.EventEE || q.next == p.next || q.ev == exi.EventCHAny || q.ev == exi.EventSEAny || q.ev == exi.EventATAny {
				// Same terminal to the same place, or an undeclared-content
				// event whose target pncpki never follows: one production.
				continue
			}
			if q.ev == exi.EventSE && q.grammar != p.grammar {
				return exi.Grammar{}, fmt.Errorf("type %s: element %d declared twice with different types in one state", name, p.name)
			}
			pair := [2]int{min(q.next, p.next), max(q.next, p.next)}
			u, ok := unions[pair]
			if !ok {
				u = b.state()
				b.add(u, pprod{eps: true, next: pair[0]})
				b.add(u, pprod{eps: true, next: pair[1]})
				unions[pair] = u
			}
			q.next = u
		}
		done[s] = out
		order = append(order, s)
		for _, p := range out {
			if p.ev != exi.EventEE {
				queue = append(queue, p.next)
			}
		}
	}
	num := map[int]int32{}
	for i, s := range order {
		num[s] = int32(i)
	}
	gr := exi.Grammar{Name: name, States: make([]exi.State, len(order))}
	for i, s := range order {
		prods := done[s]
		slices.SortStableFunc(prods, func(a, b pprod) int {
			return cmp.Compare(rank(a.ev), rank(b.ev))
		})
		st := exi.State{Bits: codeBits(len(prods) + 1)}
		for _, p := range prods {
			q := exi.Prod{Event: p.ev, Name: p.name, Grammar: p.grammar, Type: p.typ}
			if p.ev != exi.EventEE {
				q.Next = num[p.next]
			}
			st.Prods = append(st.Prods, q)
		}
		gr.States[i] = st
	}
	return gr, nil
}

// rank orders productions for event codes (8.5.4.3): attributes, attribute
// wildcards, elements in schema order, element wildcards, EE, characters.
// Attributes of one state are already in name order: attribute uses are
// concatenated sorted.
func rank(e exi.Event) int {
	switch e {
	case exi.EventAT:
		return 0
	case exi.EventATAny:
		return 1
	case exi.EventSE:
		return 2
	case exi.EventSEAny:
		return 3
	case exi.EventEE:
		return 4
	}
	return 5
}
