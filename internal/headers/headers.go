// Package headers holds the header rules every request umbra forwards
// follows, live or shadow copy: hop-by-hop headers removed (RFC 9110,
// section 7.6.1, plus the legacy ones httputil.ReverseProxy also removes)
// and X-Forwarded-For/-Host/-Proto set. One place, so the live request and
// its copies cannot drift apart.
package headers

import (
	"net"
	"net/http"
	"net/textproto"
	"strings"
)

// hopByHop lists the hop-by-hop headers in canonical form.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// IsHopByHop reports whether the canonical header name k is hop-by-hop.
// (A switch: no map lookup or canonicalization on the request path.)
func IsHopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// Owned lists, in canonical form, the request fields the gateway sets
// itself on what it forwards: the request id (kept from the client when
// sane, else generated) and the flags it forwards. They are end to end by
// the gateway's word, so a client's Connection header naming one (a field
// it lists there is removed as hop-by-hop) must not remove it: the
// upstream and the shadow copies would lose the id the client is given
// back and the logs are joined on.
var Owned = []string{"X-Request-Id", "X-Umbra-Flags"}

// isOwned reports whether the canonical header name k is in Owned.
func isOwned(k string) bool {
	switch k {
	case "X-Request-Id", "X-Umbra-Flags":
		return true
	}
	return false
}

// EndToEnd reports whether the request field k (canonical) goes on to the
// next hop: it is not hop-by-hop, and connection (the values of the
// request's Connection field) does not name it, unless it is one of the
// gateway's own (Owned), which no client can make hop-by-hop. The live
// request and its shadow copies are filtered by this one rule.
func EndToEnd(k string, connection []string) bool {
	return !IsHopByHop(k) && (connection == nil || isOwned(k) || !Named(connection, k))
}

// Named reports whether the values of a Connection field name the field
// k (canonical), which makes it hop-by-hop for that message.
func Named(connection []string, k string) bool {
	for _, v := range connection {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" && textproto.CanonicalMIMEHeaderKey(tok) == k {
				return true
			}
		}
	}
	return false
}

// Shared, never modified: header values are not written to after a
// request is sent.
var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// SetForwarded sets X-Forwarded-For on out to the X-Forwarded-For values
// r arrived with plus r's client address (as nginx's
// $proxy_add_x_forwarded_for does), and X-Forwarded-Host and -Proto to
// what the client asked for.
func SetForwarded(out http.Header, r *http.Request) {
	// One allocation holds both values; each slice is capped so that an
	// append to one cannot write into the other.
	values := make([]string, 2)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		values[0] = ip
		out["X-Forwarded-For"] = values[0:1:1]
	}
	values[1] = r.Host
	out["X-Forwarded-Host"] = values[1:2:2]
	if r.TLS == nil {
		out["X-Forwarded-Proto"] = protoHTTP
	} else {
		out["X-Forwarded-Proto"] = protoHTTPS
	}
}
