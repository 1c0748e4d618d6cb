package compare

import (
	"slices"
	"unicode/utf8"

	"github.com/umbragw/umbra/internal/jsonpath"
)

// A small JSON parser building a compact tree. It accepts exactly what
// encoding/json accepts and decodes to the same values (strings with invalid
// UTF-8 or lone surrogates get U+FFFD, a duplicate key keeps the last value,
// nesting is limited to 10000), which the fuzz tests check against
// encoding/json. It exists because decoding into interface values with
// encoding/json is several times slower and allocates per value, while here
// strings and numbers without escapes are substrings of one copy of the body
// and each container is one allocation.

type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

// value is a JSON value. str holds a string's decoded text, a number's
// literal, "true"/"false", or a container's source text (so that two
// containers written identically are equal without a walk). list holds an array's elements, or an
// object's keys and values alternately: list[2i] is a key (a string
// value) and list[2i+1] its value.
//
// A tree is valid only during the comparison that parsed it: its strings
// alias the body bytes (see bytesView) and its containers are reused
// slabs. Whatever leaves Diff is copied (renderings and paths are built by
// appending to buffers), which TestResultsDoNotAlias checks.
type value struct {
	kind kind
	str  string
	list []value
}

// members returns the number of an object's members.
func (v *value) members() int { return len(v.list) / 2 }

func (v *value) key(i int) string { return v.list[2*i].str }

func (v *value) val(i int) *value { return &v.list[2*i+1] }

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

type parser struct {
	s     string
	i     int
	depth int
	vals  []value  // scratch stack of the containers being parsed
	hiV   int      // high-water mark of vals, to clear it
	keys  []string // scratch for duplicate detection
	// Containers are carved from a slab reused from one comparison to the
	// next, so that a warm parser allocates almost nothing.
	slab slab[value]
}

// slab hands out slices of chunks that are kept and reused after reset.
type slab[T any] struct {
	chunks [][]T
	cur    int // chunk in use
	used   int // elements used in it
}

const (
	minChunk = 64
	maxChunk = 1 << 14
	// maxKept bounds the elements a slab keeps for reuse.
	maxKept = 1 << 17
)

func (s *slab[T]) alloc(n int) []T {
	for s.cur < len(s.chunks) {
		c := s.chunks[s.cur]
		if len(c)-s.used >= n {
			out := c[s.used : s.used+n : s.used+n]
			s.used += n
			return out
		}
		s.cur++
		s.used = 0
	}
	size := minChunk
	if k := len(s.chunks); k > 0 {
		size = min(2*len(s.chunks[k-1]), maxChunk)
	}
	c := make([]T, max(size, n))
	s.chunks = append(s.chunks, c)
	s.used = n
	return c[:n:n]
}

// reset makes all chunks available again. They are not cleared (that
// costs more than the rest of a small comparison under GC write
// barriers): a pooled parser may keep its last bodies reachable until it
// is reused or the pool is emptied, and keeps no more than maxKept
// elements of slabs.
func (s *slab[T]) reset() {
	kept := 0
	for _, c := range s.chunks {
		kept += len(c)
	}
	if kept > maxKept {
		s.chunks = nil
	}
	s.cur, s.used = 0, 0
}

// parse parses s as one JSON document. The tree lives until release.
func (p *parser) parse(s string) (value, bool) {
	p.s, p.i, p.depth = s, 0, 0
	p.vals = p.vals[:0]
	p.ws()
	v, ok := p.value()
	if !ok {
		return value{}, false
	}
	p.ws()
	return v, p.i == len(s)
}

// release drops references into the last parsed document.
func (p *parser) release() {
	clear(p.vals[:p.hiV])
	p.hiV, p.s = 0, ""
	p.slab.reset()
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value() (value, bool) {
	if p.i >= len(p.s) {
		return value{}, false
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, ok := p.string()
		return value{kind: kString, str: s}, ok
	case c == 't':
		return p.literal("true", kBool)
	case c == 'f':
		return p.literal("false", kBool)
	case c == 'n':
		return p.literal("null", kNull)
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return value{}, false
}

func (p *parser) literal(lit string, k kind) (value, bool) {
	if len(p.s)-p.i < len(lit) || p.s[p.i:p.i+len(lit)] != lit {
		return value{}, false
	}
	p.i += len(lit)
	v := value{kind: k}
	if k == kBool {
		v.str = lit
	}
	return v, true
}

func (p *parser) number() (value, bool) {
	s, i := p.s, p.i
	start := i
	if s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return value{}, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return value{}, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return value{}, false
		}
	}
	p.i = i
	return value{kind: kNumber, str: s[start:i]}, true
}

// stringStop marks the bytes that end the fast scan of a string: the
// closing quote, a backslash, a control character (invalid) and
// non-ASCII bytes (to check UTF-8).
var stringStop = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf
	}
	return t
}()

// string parses the string at p.s[p.i] == '"' and returns its decoded text.
func (p *parser) string() (string, bool) {
	s := p.s
	i := p.i + 1
	start := i
	escaped, high := false, false
	for {
		for i < len(s) && !stringStop[s[i]] {
			i++
		}
		if i >= len(s) {
			return "", false
		}
		switch c := s[i]; {
		case c == '"':
			raw := s[start:i]
			p.i = i + 1
			if !escaped && (!high || utf8.ValidString(raw)) {
				return raw, true
			}
			return string(jsonpath.AppendUnquoted(make([]byte, 0, len(raw)+8), raw)), true
		case c == '\\':
			escaped = true
			if i+1 >= len(s) {
				return "", false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if jsonpath.Hex4(s, i+2) < 0 {
					return "", false
				}
				i += 6
			default:
				return "", false
			}
		case c < 0x20:
			return "", false
		default:
			high = true
			i++
		}
	}
}

func (p *parser) array() (value, bool) {
	start := p.i
	p.i++ // '['
	if p.depth++; p.depth > maxDepth {
		return value{}, false
	}
	mark := len(p.vals)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		p.depth--
		return value{kind: kArray, str: p.s[start:p.i]}, true
	}
	for {
		p.ws()
		v, ok := p.value()
		if !ok {
			return value{}, false
		}
		p.vals = append(p.vals, v)
		p.ws()
		if p.i >= len(p.s) {
			return value{}, false
		}
		c := p.s[p.i]
		p.i++
		if c == ']' {
			break
		}
		if c != ',' {
			return value{}, false
		}
	}
	p.hiV = max(p.hiV, len(p.vals))
	list := p.slab.alloc(len(p.vals) - mark)
	copy(list, p.vals[mark:])
	p.vals = p.vals[:mark]
	p.depth--
	return value{kind: kArray, str: p.s[start:p.i], list: list}, true
}

func (p *parser) object() (value, bool) {
	start := p.i
	p.i++ // '{'
	if p.depth++; p.depth > maxDepth {
		return value{}, false
	}
	mark := len(p.vals)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		p.depth--
		return value{kind: kObject, str: p.s[start:p.i]}, true
	}
	for {
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return value{}, false
		}
		key, ok := p.string()
		if !ok {
			return value{}, false
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return value{}, false
		}
		p.i++
		p.ws()
		v, ok := p.value()
		if !ok {
			return value{}, false
		}
		p.vals = append(p.vals, value{kind: kString, str: key}, v)
		p.ws()
		if p.i >= len(p.s) {
			return value{}, false
		}
		c := p.s[p.i]
		p.i++
		if c == '}' {
			break
		}
		if c != ',' {
			return value{}, false
		}
	}
	p.hiV = max(p.hiV, len(p.vals))
	list := p.dedupe(p.vals[mark:])
	p.vals = p.vals[:mark]
	p.depth--
	return value{kind: kObject, str: p.s[start:p.i], list: list}, true
}

// dedupe copies an object's keys and values out of the scratch stack. A
// key given twice keeps its first position and its last value, as in
// encoding/json (and JavaScript).
func (p *parser) dedupe(kv []value) []value {
	if !p.hasDuplicates(kv) {
		out := p.slab.alloc(len(kv))
		copy(out, kv)
		return out
	}
	out := make([]value, 0, len(kv))
	at := make(map[string]int, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		if j, ok := at[kv[i].str]; ok {
			out[j+1] = kv[i+1]
			continue
		}
		at[kv[i].str] = len(out)
		out = append(out, kv[i], kv[i+1])
	}
	return out
}

func (p *parser) hasDuplicates(kv []value) bool {
	n := len(kv) / 2
	if n <= 16 {
		for i := 1; i < n; i++ {
			for j := 0; j < i; j++ {
				if kv[2*i].str == kv[2*j].str {
					return true
				}
			}
		}
		return false
	}
	p.keys = p.keys[:0]
	for i := 0; i < len(kv); i += 2 {
		p.keys = append(p.keys, kv[i].str)
	}
	slices.Sort(p.keys)
	dup := false
	for i := 1; i < len(p.keys); i++ {
		dup = dup || p.keys[i] == p.keys[i-1]
	}
	clear(p.keys)
	return dup
}
