package compare

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// selKind is what one path step selects.
type selKind uint8

const (
	selKey   selKind = iota // .name or ['name']: the object member with that key
	selIndex                // [N]: array element N
	selAny                  // .* or [*]: any array element or object member
)

// step is one compiled path step.
type step struct {
	desc bool // reached through "..": matches at any depth below
	sel  selKind
	key  string
	idx  int
}

// Path is a compiled path (see the package documentation for the grammar).
type Path struct {
	src   string
	steps []step
}

// String returns the path as it was written.
func (p Path) String() string { return p.src }

// PathError reports a path that does not follow the grammar.
type PathError struct {
	Path   string
	Offset int // byte offset of the problem in Path
	Msg    string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("path %q: at offset %d: %s", e.Path, e.Offset, e.Msg)
}

// maxIndex bounds [N] so that indices fit any int.
const maxIndex = 1 << 30

// ParsePath compiles a path.
func ParsePath(s string) (Path, error) {
	fail := func(at int, msg string) (Path, error) {
		return Path{}, &PathError{Path: s, Offset: at, Msg: msg}
	}
	if s == "" || s[0] != '$' {
		return fail(0, `a path starts with "$", for example "$.created_at"`)
	}
	p := Path{src: s}
	i := 1
	for i < len(s) {
		var st step
		switch s[i] {
		case '.':
			i++
			if i < len(s) && s[i] == '.' {
				st.desc = true
				i++
			}
			switch {
			case i >= len(s):
				return fail(i, `expected a name, "*" or "[" after "."`)
			case s[i] == '*':
				st.sel = selAny
				i++
			case s[i] == '[' && st.desc:
				n, err := parseBracket(s, i, &st)
				if err != nil {
					return Path{}, err
				}
				i = n
			default:
				j := i
				for j < len(s) && nameByte(s[j]) {
					j++
				}
				if j == i {
					return fail(i, fmt.Sprintf("unexpected %q: a name after \".\" is letters, digits and similar; quote other keys: ['a key']", s[i]))
				}
				st.sel, st.key = selKey, s[i:j]
				i = j
			}
		case '[':
			n, err := parseBracket(s, i, &st)
			if err != nil {
				return Path{}, err
			}
			i = n
		default:
			return fail(i, fmt.Sprintf(`unexpected %q: expected "." or "["`, s[i]))
		}
		p.steps = append(p.steps, st)
	}
	return p, nil
}

// parseBracket parses "[N]", "[*]" or a quoted key at s[i] == '[' into st
// and returns the offset after the closing bracket.
func parseBracket(s string, i int, st *step) (int, error) {
	fail := func(at int, msg string) (int, error) {
		return 0, &PathError{Path: s, Offset: at, Msg: msg}
	}
	i++ // '['
	if i >= len(s) {
		return fail(i, `expected an index, "*" or a quoted key after "["`)
	}
	switch c := s[i]; {
	case c == '*':
		st.sel = selAny
		i++
	case c == '\'' || c == '"':
		var key strings.Builder
		j := i + 1
		for {
			if j >= len(s) {
				return fail(i, "unterminated quoted key")
			}
			b := s[j]
			if b == c {
				break
			}
			if b == '\\' {
				if j+1 >= len(s) || (s[j+1] != '\\' && s[j+1] != '\'' && s[j+1] != '"') {
					return fail(j, `in a quoted key, "\" escapes only \, ' and "`)
				}
				j++
				b = s[j]
			}
			key.WriteByte(b)
			j++
		}
		st.sel, st.key = selKey, key.String()
		i = j + 1
	case c >= '0' && c <= '9':
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if s[i] == '0' && j > i+1 {
			return fail(i, "an index has no leading zeros")
		}
		n, err := strconv.Atoi(s[i:j])
		if err != nil || n > maxIndex {
			return fail(i, "index too large")
		}
		st.sel, st.idx = selIndex, n
		i = j
	default:
		return fail(i, fmt.Sprintf(`unexpected %q: expected an index, "*" or a quoted key after "["`, c))
	}
	if i >= len(s) || s[i] != ']' {
		return fail(i, `expected "]"`)
	}
	return i + 1, nil
}

// nameByte reports whether b may appear in an unquoted name. UTF-8 bytes
// of non-ASCII characters are allowed.
func nameByte(b byte) bool {
	if b <= ' ' || b == 0x7f {
		return false
	}
	switch b {
	case '.', '[', ']', '*', '\'', '"', '\\':
		return false
	}
	return true
}

// isName reports whether key can be written as ".key".
func isName(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		if !nameByte(key[i]) {
			return false
		}
	}
	return true
}

// appendKey appends ".key", or "['key']" when key is not a plain name.
func appendKey(b []byte, key string) []byte {
	if isName(key) {
		b = append(b, '.')
		return append(b, key...)
	}
	b = append(b, "['"...)
	for i := 0; i < len(key); i++ {
		if key[i] == '\'' || key[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, key[i])
	}
	return append(b, "']"...)
}

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

func (st *step) matches(s seg) bool {
	switch st.sel {
	case selAny:
		return true
	case selKey:
		return s.idx == keySeg && s.key == st.key
	default:
		return s.idx == st.idx
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
	steps  []step  // per position; unused at accepting positions
	accept []uint8 // per position: accept flags, 0 for an inner position
	start  []uint64
	words  int // len of a state
	ignore []uint64
	unord  []uint64
}

func newMatcher(ignore, unordered []Path) *matcher {
	m := &matcher{}
	add := func(p Path, flag uint8) {
		m.steps = append(m.steps, p.steps...)
		m.accept = append(m.accept, make([]uint8, len(p.steps))...)
		m.steps = append(m.steps, step{})
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
			if st.desc {
				dst[w] |= 1 << b
			}
			if st.matches(s) {
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
