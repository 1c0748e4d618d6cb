package headers

import (
	"bytes"
	"net/http"
	"net/textproto"

	"golang.org/x/net/http/httpguts"
)

// ParseFields reads a field block, at most n lines of "Name: value\r\n"
// (without the empty line that ends a head), into a header as
// textproto.Reader.ReadMIMEHeader would, and reports whether it could.
// It refuses rather than guesses: folded lines, names that are not tokens
// and values with control characters are for the standard library's
// reader, which also words the errors. accept sees each canonical name
// and value and can refuse the block too.
//
// Keys and values are slices of s (a name already in canonical form, as
// clients nearly always send them, costs nothing) and the values share one
// backing array, so a head costs the map and two allocations.
func ParseFields(s string, n int, accept func(k, v string) bool) (http.Header, bool) {
	h := make(http.Header, n)
	values := make([]string, n)
	for s != "" {
		k, v, rest, ok := NextField(s)
		if !ok {
			return nil, false
		}
		s = rest
		if !isCanonical(k) {
			k = textproto.CanonicalMIMEHeaderKey(k)
		}
		if !accept(k, v) {
			return nil, false
		}
		if vs, ok := h[k]; ok {
			h[k] = append(vs, v)
			continue
		}
		if len(values) == 0 {
			return nil, false // more lines than n
		}
		values[0] = v
		h[k] = values[:1:1]
		values = values[1:]
	}
	return h, true
}

// NextField reads the first line of a field block, "Name: value\r\n",
// as ParseFields does: it returns the name as sent, the value without the
// white space around it and the rest of s, or false for a line ParseFields
// refuses (no CRLF, no colon, a name that is not a token, a value with
// control characters).
func NextField(s string) (k, v, rest string, ok bool) {
	// One pass over the line instead of a search for its end, one for the
	// colon and a check of each part: this runs for every field of every
	// message the gateway reads.
	i := 0
	for i < len(s) && httpguts.IsTokenRune(rune(s[i])) {
		i++
	}
	if i == 0 || i == len(s) || s[i] != ':' {
		return "", "", "", false
	}
	j := i + 1
	for ; j < len(s) && s[j] != '\r'; j++ {
		if c := s[j]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", "", false // a control character, a bare LF among them
		}
	}
	if j+1 >= len(s) || s[j+1] != '\n' {
		return "", "", "", false
	}
	return s[:i], TrimSpace(s[i+1 : j]), s[j+2:], true
}

// TrimSpace drops the spaces and tabs around a field value.
func TrimSpace(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// IsCanonical reports whether the token k is in textproto's canonical
// form already ("Content-Type").
func IsCanonical(k string) bool { return isCanonical(k) }

func isCanonical(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// IsToken reports whether s is a non-empty RFC 9110 token (a method or a
// field name).
func IsToken(s string) bool { return isToken(s) }

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// HeadLength is the length of the message head at the start of b, up to
// and including the empty line that ends it, or 0 when b does not hold a
// whole head.
func HeadLength(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return 0
}

// FieldLines bounds the number of field lines in a head of HeadLength:
// its line feeds less the start line's and the end's. A bare LF counts
// too, so it may be more, never fewer (ParseFields, splitting at CRLF,
// refuses a bare LF anyway); counting one byte is a vector instruction,
// counting "\r\n" a loop of searches.
func FieldLines(head []byte) int { return bytes.Count(head, lf) - 2 }

var lf = []byte("\n")
