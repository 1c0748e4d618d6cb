package adoption

import "github.com/umbragw/umbra/internal/jsonpath"

// scan reports which of fields are present in the JSON document body, as
// a bit set (bit i for fields[i]), walking the document once without
// decoding it: only the members on some field's path are descended into,
// everything else is skipped byte by byte. A field is present when its
// path leads to a value, null included (a client that sends "email":
// null still depends on the field). ok is false when body is not a single
// well-formed JSON value.
//
// It does not allocate, which encoding/json into map[string]any does
// heavily (see BenchmarkScan).
func scan(body []byte, fields []field) (found uint64, ok bool) {
	s := scanner{data: body}
	var buf [MaxFields]act
	active := buf[:0]
	for i := range fields {
		active = append(active, act{field: uint8(i), step: 0})
	}
	s.fields = fields
	s.ws()
	if !s.value(active, 0) {
		return 0, false
	}
	s.ws()
	if s.pos != len(s.data) {
		return 0, false
	}
	return s.found, true
}

// act is a field path being followed: the next step to match.
type act struct {
	field uint8
	step  uint8
}

type scanner struct {
	data   []byte
	pos    int
	fields []field
	found  uint64
}

const maxDepth = 512

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value parses the value at pos. active are the paths that reach it; a
// path with no step left is found here.
func (s *scanner) value(active []act, depth int) bool {
	if depth > maxDepth || s.pos >= len(s.data) {
		return false
	}
	var buf [MaxFields]act
	next := buf[:0]
	for _, a := range active {
		if int(a.step) == len(s.fields[a.field].steps) {
			s.found |= 1 << a.field
		} else {
			next = append(next, a)
		}
	}
	active = next
	switch c := s.data[s.pos]; c {
	case '{':
		return s.object(active, depth)
	case '[':
		return s.array(active, depth)
	case '"':
		_, _, ok := s.str()
		return ok
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	default:
		return s.number()
	}
}

func (s *scanner) object(active []act, depth int) bool {
	s.pos++ // '{'
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return true
	}
	var buf [MaxFields]act
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return false
		}
		start, end, ok := s.str()
		if !ok {
			return false
		}
		key := s.data[start:end]
		next := buf[:0]
		for _, a := range active {
			st := s.fields[a.field].steps[a.step]
			if st.Kind == jsonpath.Key && keyEqual(key, st.Key) {
				next = append(next, act{a.field, a.step + 1})
			}
		}
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		s.ws()
		if !s.value(next, depth+1) {
			return false
		}
		s.ws()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return true
		default:
			return false
		}
	}
}

func (s *scanner) array(active []act, depth int) bool {
	s.pos++ // '['
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return true
	}
	var buf [MaxFields]act
	for i := 0; ; i++ {
		next := buf[:0]
		for _, a := range active {
			st := s.fields[a.field].steps[a.step]
			if st.Kind == jsonpath.Any || st.Kind == jsonpath.Index && st.Index == i {
				next = append(next, act{a.field, a.step + 1})
			}
		}
		s.ws()
		if !s.value(next, depth+1) {
			return false
		}
		s.ws()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return true
		default:
			return false
		}
	}
}

// str skips a string at pos (an opening quote) and returns the bounds of
// its raw content.
func (s *scanner) str() (start, end int, ok bool) {
	s.pos++
	start = s.pos
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; {
		case c == '"':
			end = s.pos
			s.pos++
			return start, end, true
		case c == '\\':
			if s.pos+1 >= len(s.data) {
				return 0, 0, false
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if jsonpath.Hex4(s.data, s.pos+2) < 0 {
					return 0, 0, false
				}
				s.pos += 6
			default:
				return 0, 0, false
			}
		case c < 0x20:
			return 0, 0, false
		default:
			s.pos++
		}
	}
	return 0, 0, false
}

func (s *scanner) lit(want string) bool {
	if len(s.data)-s.pos < len(want) || string(s.data[s.pos:s.pos+len(want)]) != want {
		return false
	}
	s.pos += len(want)
	return true
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	d := s.data
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return false
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return false
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	s.pos = i
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// keyEqual compares a raw (still escaped) JSON key with a name. Keys
// without escapes, nearly all of them, compare byte for byte.
func keyEqual(raw []byte, name string) bool {
	for _, c := range raw {
		if c == '\\' {
			var buf [256]byte
			return string(jsonpath.AppendUnquoted(buf[:0], raw)) == name
		}
	}
	return string(raw) == name
}
