package headers

import (
	"bufio"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// WriteFields writes every field of h whose name is valid and not in
// skip, in map order: HTTP gives distinct field names no order, and the
// sorting net/http does showed in umbra's profile.
func WriteFields(bw *bufio.Writer, h map[string][]string, skip map[string]bool) {
	for k, vs := range h {
		if skip[k] || !httpguts.ValidHeaderFieldName(k) {
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
	bw.WriteString(k)
	bw.WriteString(": ")
	if strings.ContainsAny(v, "\r\n") {
		v = newlineToSpace.Replace(v)
	}
	bw.WriteString(strings.Trim(v, " \t"))
	bw.WriteString("\r\n")
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")
