package headers

import (
	"bufio"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// WriteFields writes every field of h whose name is valid and not one
// skip reports, in map order: HTTP gives distinct field names no order,
// and the sorting net/http does showed in umbra's profile. (skip is a
// function, not a set: a switch on a few names costs less than hashing.)
func WriteFields(bw *bufio.Writer, h map[string][]string, skip func(k string) bool) {
	for k, vs := range h {
		if skip(k) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vs {
			WriteField(bw, k, v)
		}
	}
}

// WriteField writes "k: v\r\n" the way net/http does: each CR or LF in v
// becomes a space, so a value can never add a field or end the head, and
// surrounding white space is trimmed.
func WriteField(bw *bufio.Writer, k, v string) {
	if !plainValue(v) {
		v = strings.Trim(newlineToSpace.Replace(v), " \t")
	}
	// The common field, plain and fitting in the buffer, is appended in
	// one go; four WriteString calls cost more than the field itself.
	if n := len(k) + len(v) + 4; n <= bw.Available() {
		b := bw.AvailableBuffer()
		b = append(b, k...)
		b = append(b, ':', ' ')
		b = append(b, v...)
		b = append(b, '\r', '\n')
		bw.Write(b)
		return
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// plainValue reports whether v needs no rewriting: no CR or LF, and no
// white space to trim at either end.
func plainValue(v string) bool {
	if v == "" {
		return true
	}
	if c := v[0]; c == ' ' || c == '\t' {
		return false
	}
	if c := v[len(v)-1]; c == ' ' || c == '\t' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			return false
		}
	}
	return true
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")
