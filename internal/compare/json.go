package compare

import (
	"slices"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
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

var kindNames = [...]string{"null", "boolean", "number", "string", "array", "object"}

// value is a JSON value. str holds a string's decoded text, a number's
// literal or "true"/"false".
type value struct {
	kind kind
	str  string
	arr  []value
	obj  []member
}

type member struct {
	key string
	val value
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

type parser struct {
	s     string
	i     int
	depth int
	vals  []value  // scratch stack of array elements being parsed
	mems  []member // scratch stack of object members being parsed
	hiV   int      // high-water marks of the stacks, to clear them
	hiM   int
	keys  []string // scratch for duplicate detection
}

// parse parses s as one JSON document.
func (p *parser) parse(s string) (value, bool) {
	p.s, p.i, p.depth = s, 0, 0
	p.vals, p.mems = p.vals[:0], p.mems[:0]
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
	clear(p.mems[:p.hiM])
	p.hiV, p.hiM, p.s = 0, 0, ""
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

// string parses the string at p.s[p.i] == '"' and returns its decoded text.
func (p *parser) string() (string, bool) {
	s := p.s
	i := p.i + 1
	start := i
	escaped, high := false, false
	for {
		if i >= len(s) {
			return "", false
		}
		c := s[i]
		switch {
		case c == '"':
			raw := s[start:i]
			p.i = i + 1
			if !escaped && (!high || utf8.ValidString(raw)) {
				return raw, true
			}
			return unquote(raw), true
		case c == '\\':
			escaped = true
			if i+1 >= len(s) {
				return "", false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if getu4(s, i+2) < 0 {
					return "", false
				}
				i += 6
			default:
				return "", false
			}
		case c < 0x20:
			return "", false
		default:
			high = high || c >= utf8.RuneSelf
			i++
		}
	}
}

// getu4 decodes four hex digits at s[i:], or returns -1.
func getu4(s string, i int) rune {
	if i+4 > len(s) {
		return -1
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unquote decodes a validated string body with escapes or non-UTF-8 bytes
// the way encoding/json does.
func unquote(raw string) string {
	b := make([]byte, 0, len(raw)+8)
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			e := raw[i+1]
			i += 2
			switch e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := getu4(raw, i)
				i += 4
				if utf16.IsSurrogate(r) {
					if i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, getu4(raw, i+2)); dec != unicode.ReplacementChar {
							i += 6
							b = utf8.AppendRune(b, dec)
							break
						}
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
			default: // '"', '\\', '/'
				b = append(b, e)
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(raw[i:])
			b = utf8.AppendRune(b, r)
			i += size
		}
	}
	return string(b)
}

func (p *parser) array() (value, bool) {
	p.i++ // '['
	if p.depth++; p.depth > maxDepth {
		return value{}, false
	}
	mark := len(p.vals)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		p.depth--
		return value{kind: kArray}, true
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
	arr := make([]value, len(p.vals)-mark)
	copy(arr, p.vals[mark:])
	p.vals = p.vals[:mark]
	p.depth--
	return value{kind: kArray, arr: arr}, true
}

func (p *parser) object() (value, bool) {
	p.i++ // '{'
	if p.depth++; p.depth > maxDepth {
		return value{}, false
	}
	mark := len(p.mems)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		p.depth--
		return value{kind: kObject}, true
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
		p.mems = append(p.mems, member{key: key, val: v})
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
	p.hiM = max(p.hiM, len(p.mems))
	obj := p.dedupe(p.mems[mark:])
	p.mems = p.mems[:mark]
	p.depth--
	return value{kind: kObject, obj: obj}, true
}

// dedupe copies an object's members out of the scratch stack. A key given
// twice keeps its first position and its last value, as in encoding/json
// (and JavaScript).
func (p *parser) dedupe(ms []member) []member {
	if !p.hasDuplicates(ms) {
		return append([]member(nil), ms...)
	}
	out := make([]member, 0, len(ms))
	at := make(map[string]int, len(ms))
	for _, m := range ms {
		if i, ok := at[m.key]; ok {
			out[i].val = m.val
			continue
		}
		at[m.key] = len(out)
		out = append(out, m)
	}
	return out
}

func (p *parser) hasDuplicates(ms []member) bool {
	if len(ms) <= 16 {
		for i := 1; i < len(ms); i++ {
			for j := 0; j < i; j++ {
				if ms[i].key == ms[j].key {
					return true
				}
			}
		}
		return false
	}
	p.keys = p.keys[:0]
	for i := range ms {
		p.keys = append(p.keys, ms[i].key)
	}
	slices.Sort(p.keys)
	dup := false
	for i := 1; i < len(p.keys); i++ {
		dup = dup || p.keys[i] == p.keys[i-1]
	}
	clear(p.keys)
	return dup
}
