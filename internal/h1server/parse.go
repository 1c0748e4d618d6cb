package h1server

import (
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/umbragw/umbra/internal/headers"
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
	lines := headers.FieldLines(head)
	if lines < 0 {
		return false
	}
	s := string(head)
	eol := strings.Index(s, "\r\n")
	method, rest, ok1 := strings.Cut(s[:eol], " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !headers.IsToken(method) || method == http.MethodConnect ||
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
	u := requestURL(target)
	if u == nil {
		return false
	}
	// Host comes first from nearly every client: it goes to r.Host without
	// passing through the header map (http.ReadRequest deletes it there).
	fields := s[eol+2 : len(s)-2]
	var host []string
	if v, rest, ok := strings.Cut(fields, "\r\n"); ok && strings.HasPrefix(v, "Host:") {
		v = headers.TrimSpace(v[len("Host:"):])
		if !httpguts.ValidHeaderFieldValue(v) {
			return false
		}
		host = []string{v}
		fields, lines = rest, lines-1
	}
	h, ok := headers.ParseFields(fields, lines, acceptRequestField)
	if !ok {
		return false
	}
	if host == nil {
		host = h["Host"]
	} else if h["Host"] != nil {
		return false // two: http.ReadRequest refuses them
	}
	conn := h["Connection"]
	if len(host) > 1 || len(h["Content-Length"]) > 1 {
		return false // http.ReadRequest refuses or merges these
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

// requestURL parses an origin-form target as url.ParseRequestURI does.
// The common target, a path of characters that need no escaping and a
// query without control bytes, is read here without the general parser
// (which showed in the profile); anything else goes to ParseRequestURI.
func requestURL(target string) *url.URL {
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			return parseRequestURI(target)
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return nil // ParseRequestURI refuses control bytes
		}
	}
	return &url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
}

func parseRequestURI(target string) *url.URL {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil
	}
	return u
}

// plainPathByte: the bytes a path keeps as they are in url.URL.Path (no
// escaping, no RawPath): letters, digits and "-._~$&+,/:;=@".
var plainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

// acceptRequestField refuses the fields http.ReadRequest gives meaning
// to beyond the header: framing, trailers, Pragma's Cache-Control,
// expectations and upgrades. A zero Content-Length means no body.
func acceptRequestField(k, v string) bool {
	switch k {
	case "Transfer-Encoding", "Trailer", "Pragma", "Expect", "Upgrade":
		return false
	case "Content-Length":
		return v == "0"
	}
	return true
}
