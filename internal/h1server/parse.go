package h1server

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// parseSimple reads the common request head, a bodyless HTTP/1.x request
// in origin form with plain fields, into r, as http.ReadRequest would read
// it, and reports whether it could. head is the whole head including its
// closing empty line. Anything else (a body, a transfer coding, folded or
// unusual fields, other request-target forms) is left to http.ReadRequest,
// which also words the errors: this path only ever accepts.
//
// Why: http.ReadRequest was the largest user-space cost left on the
// gateway's request path (~2 µs and 9 allocations per request). Here the
// head becomes one string that every method, target, key and value is a
// slice of, and the values share one backing array, as in textproto.
func parseSimple(head []byte, r *http.Request) bool {
	lines := bytes.Count(head, crlf) - 2 // fields, without request line and end
	if lines < 0 {
		return false
	}
	s := string(head)
	eol := strings.Index(s, "\r\n")
	method, rest, ok1 := strings.Cut(s[:eol], " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || method == http.MethodConnect ||
		len(target) == 0 || target[0] != '/' {
		return false
	}
	var minor int
	switch proto {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		return false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return false
	}
	h := make(http.Header, lines)
	values := make([]string, lines)
	var host, conn []string
	for line := s[eol+2 : len(s)-2]; line != ""; {
		eol = strings.Index(line, "\r\n")
		field := line[:eol]
		line = line[eol+2:]
		k, v, ok := strings.Cut(field, ":")
		if !ok || !isToken(k) {
			return false
		}
		v = trimSpace(v)
		if !httpguts.ValidHeaderFieldValue(v) {
			return false
		}
		if !isCanonical(k) {
			k = textproto.CanonicalMIMEHeaderKey(k)
		}
		switch k {
		case "Transfer-Encoding", "Trailer", "Pragma", "Expect", "Upgrade":
			return false // http.ReadRequest gives these meaning
		case "Content-Length":
			if v != "0" || h[k] != nil {
				return false
			}
		}
		vs, ok := h[k]
		if ok {
			vs = append(vs, v)
		} else {
			values[0] = v
			vs = values[:1:1]
			values = values[1:]
		}
		h[k] = vs
		switch k {
		case "Host":
			host = vs
		case "Connection":
			conn = vs
		}
	}
	if len(host) > 1 {
		return false
	}
	*r = http.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		ProtoMajor: 1,
		ProtoMinor: minor,
		Header:     h,
		Body:       http.NoBody,
		RequestURI: target,
	}
	if len(host) == 1 {
		r.Host = host[0]
		delete(h, "Host") // as http.ReadRequest does: it is in r.Host
	}
	if minor == 0 {
		r.Close = !httpguts.HeaderValuesContainsToken(conn, "keep-alive") || httpguts.HeaderValuesContainsToken(conn, "close")
	} else {
		r.Close = httpguts.HeaderValuesContainsToken(conn, "close")
	}
	return true
}

// trimSpace drops the spaces and tabs around a field value.
func trimSpace(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// isCanonical reports whether the token k is in textproto's canonical
// form already ("Content-Type"), as clients nearly always send it: then
// the key is a slice of the head and costs nothing.
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

var crlf = []byte("\r\n")

// isToken reports whether s is a non-empty RFC 9110 token.
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
