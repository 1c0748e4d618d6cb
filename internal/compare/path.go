package compare

import (
	"math/bits"

	"github.com/umbragw/umbra/internal/jsonpath"
)

// Path is a parsed path (see package jsonpath for the grammar).
type Path = jsonpath.Path

// PathError reports a path that does not follow the grammar.
type PathError = jsonpath.Error

// ParsePath parses a path.
func ParsePath(s string) (Path, error) { return jsonpath.Parse(s) }

// seg is one step of a concrete location in a JSON document: an object
// key, or an array index.
type seg struct {
	key string
	idx int // -1 for a key; anyIndex for an element of a multiset
}

const (
	keySeg   = -1
	anyIndex = -2 // an array element whose position does not count: matches [*] only
)

func matches(st *jsonpath.Step, s seg) bool {
	switch st.Kind {
	case jsonpath.Any:
		return true
	case jsonpath.Key:
		return s.idx == keySeg && s.key == st.Key
	default:
		return s.idx == st.Index
	}
}

// Accept flags of a matcher position.
const (
	acceptIgnore uint8 = 1 << iota
	acceptUnordered
)

// matcher runs all compiled paths at once as a nondeterministic automaton.
// A state is a bit set over positions; pattern k occupies positions
// base..base+len(steps), the last being its accepting position. Matching a
// location costs one transition per path segment, with no parsing and no
// allocation.
type matcher struct {
	steps  []jsonpath.Step // per position; unused at accepting positions
	accept []uint8         // per position: accept flags, 0 for an inner position
	start  []uint64
	words  int // len of a state
	ignore []uint64
	unord  []uint64
}

func newMatcher(ignore, unordered []Path) *matcher {
	m := &matcher{}
	add := func(p Path, flag uint8) {
		m.steps = append(m.steps, p.Steps()...)
		m.accept = append(m.accept, make([]uint8, len(p.Steps()))...)
		m.steps = append(m.steps, jsonpath.Step{})
		m.accept = append(m.accept, flag)
	}
	var starts []int
	for _, p := range ignore {
		starts = append(starts, len(m.steps))
		add(p, acceptIgnore)
	}
	for _, p := range unordered {
		starts = append(starts, len(m.steps))
		add(p, acceptUnordered)
	}
	m.words = (len(m.steps) + 63) / 64
	m.start = make([]uint64, m.words)
	m.ignore = make([]uint64, m.words)
	m.unord = make([]uint64, m.words)
	for _, s := range starts {
		m.start[s/64] |= 1 << (s % 64)
	}
	for p, f := range m.accept {
		if f&acceptIgnore != 0 {
			m.ignore[p/64] |= 1 << (p % 64)
		}
		if f&acceptUnordered != 0 {
			m.unord[p/64] |= 1 << (p % 64)
		}
	}
	return m
}

// next computes into dst the state after segment s from state cur, and
// reports whether an ignore path matches there.
func (m *matcher) next(cur, dst []uint64, s seg) (ignored bool) {
	clear(dst)
	any := uint64(0)
	for w, word := range cur {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &= word - 1
			p := w*64 + b
			if m.accept[p] != 0 {
				continue
			}
			st := &m.steps[p]
			if st.Descend {
				dst[w] |= 1 << b
			}
			if matches(st, s) {
				q := p + 1
				dst[q/64] |= 1 << (q % 64)
			}
			any = 1
		}
	}
	if any == 0 {
		return false
	}
	return intersects(dst, m.ignore)
}

func intersects(a, b []uint64) bool {
	for i := range a {
		if a[i]&b[i] != 0 {
			return true
		}
	}
	return false
}
