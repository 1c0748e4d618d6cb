package router

import (
	"fmt"
	"net"
	"strings"
)

// maxHostLen bounds the request hosts that can match a host condition. DNS
// names are at most 253 bytes; anything longer is not a real host, and the
// bound lets Match lower-case into a stack buffer instead of the heap.
const maxHostLen = 255

// hostKey normalizes a configured host: the lookup key ("" for any host)
// and whether it is a wildcard, whose key is the suffix from the dot on.
func hostKey(host string) (key string, wild bool, err error) {
	h := asciiLower(strings.TrimSuffix(host, "."))
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1] // request hosts lose their IPv6 brackets too
	}
	switch {
	case len(h) > 253:
		return "", false, fmt.Errorf("host %q is longer than a DNS name can be (253 bytes)", host)
	case strings.Contains(h, ":") && net.ParseIP(h) == nil:
		return "", false, fmt.Errorf("host %q: no port (the request's port is ignored)", host)
	case strings.ContainsAny(h, " /\t"):
		return "", false, fmt.Errorf("host %q: use a host name or *.domain (no scheme, no path)", host)
	case strings.HasPrefix(h, "*.") && len(h) > 2 && !strings.Contains(h[1:], "*"):
		return h[1:], true, nil
	case strings.Contains(h, "*"):
		return "", false, fmt.Errorf("host %q: a wildcard is written *.domain and matches any subdomain", host)
	}
	return h, false, nil
}

// lowerHost writes the normalized request host into buf and returns it, or
// nil when it does not fit (then no host condition can match).
func lowerHost(buf *[maxHostLen]byte, host string) []byte {
	h := stripPort(host)
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	if len(h) > maxHostLen {
		return nil
	}
	n := copy(buf[:], h)
	for i := range n {
		if c := buf[i]; 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	return buf[:n]
}

// stripPort removes ":port" and IPv6 brackets. A bare IPv6 address (more
// than one colon, no brackets) has no port to remove.
func stripPort(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.IndexByte(h, ':'); i >= 0 && strings.LastIndexByte(h, ':') == i {
		return h[:i]
	}
	return h
}

// asciiLower lower-cases like the request side does: ASCII only, so a
// configured host and a request host agree byte for byte.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
