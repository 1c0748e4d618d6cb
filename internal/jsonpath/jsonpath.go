// Package jsonpath parses the JSONPath subset umbra uses to name places in
// JSON documents: comparison ignore and unordered-array paths, and adoption
// field rules. One grammar, one parser:
//
//	path   = "$" { step }
//	step   = "." name | ".*" | ".." ( name | "*" | bracket ) | bracket
//	bracket = "[" ( index | "*" | quoted ) "]"
//	name   = one or more bytes other than space, control, . [ ] * ' " \
//	index  = decimal, no leading zeros, at most 2^30
//	quoted = "'" or '"' delimited, \ escaping only \ ' and "
//
// "..name" matches at any depth below ("recursive descent").
//
// A document's keys are JSON strings: AppendUnquoted and Hex4 decode them
// for the readers that walk documents without encoding/json.
package jsonpath

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is what one path step selects.
type Kind uint8

// Step kinds.
const (
	Key   Kind = iota // .name or ['name']: the object member with that key
	Index             // [N]: array element N
	Any               // .* or [*]: any array element or object member
)

// Step is one parsed path step.
type Step struct {
	Descend bool // reached through "..": matches at any depth below
	Kind    Kind
	Key     string
	Index   int
}

// Path is a parsed path.
type Path struct {
	src   string
	steps []Step
}

// String returns the path as it was written.
func (p Path) String() string { return p.src }

// Steps returns the path's steps after "$" (callers must not modify them).
func (p Path) Steps() []Step { return p.steps }

// Error reports a path that does not follow the grammar.
type Error struct {
	Path   string
	Offset int // byte offset of the problem in Path
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("path %q: at offset %d: %s", e.Path, e.Offset, e.Msg)
}

// MaxIndex bounds [N] so that indices fit any int.
const MaxIndex = 1 << 30

// Parse parses a path.
func Parse(s string) (Path, error) {
	fail := func(at int, msg string) (Path, error) {
		return Path{}, &Error{Path: s, Offset: at, Msg: msg}
	}
	if s == "" || s[0] != '$' {
		return fail(0, `a path starts with "$", for example "$.created_at"`)
	}
	p := Path{src: s}
	i := 1
	for i < len(s) {
		var st Step
		switch s[i] {
		case '.':
			i++
			if i < len(s) && s[i] == '.' {
				st.Descend = true
				i++
			}
			switch {
			case i >= len(s):
				return fail(i, `expected a name, "*" or "[" after "."`)
			case s[i] == '*':
				st.Kind = Any
				i++
			case s[i] == '[' && st.Descend:
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
				st.Kind, st.Key = Key, s[i:j]
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
func parseBracket(s string, i int, st *Step) (int, error) {
	fail := func(at int, msg string) (int, error) {
		return 0, &Error{Path: s, Offset: at, Msg: msg}
	}
	i++ // '['
	if i >= len(s) {
		return fail(i, `expected an index, "*" or a quoted key after "["`)
	}
	switch c := s[i]; {
	case c == '*':
		st.Kind = Any
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
		st.Kind, st.Key = Key, key.String()
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
		if err != nil || n > MaxIndex {
			return fail(i, "index too large")
		}
		st.Kind, st.Index = Index, n
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

// IsName reports whether key can be written as ".key".
func IsName(key string) bool {
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

// AppendKey appends ".key", or "['key']" when key is not a plain name.
func AppendKey(b []byte, key string) []byte {
	if IsName(key) {
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
