package proxy

import (
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// refusedUpgrade returns the first protocol an upgrade request asks for
// that the route does not allow (routes[].upgrades), or "" when r is no
// upgrade request or everything it asks for is allowed. An upgrade hands
// the connection to the backend for good: without the allow-list a client
// could open a tunnel (h2c, a raw protocol) that carries later requests
// past routing, shadowing and the canary split.
//
// An upgrade request is what ReverseProxy takes for one: Upgrade and
// "Connection: upgrade". An Upgrade field alone is hop-by-hop and dropped.
func refusedUpgrade(route *Route, r *http.Request) string {
	up := r.Header["Upgrade"]
	if up == nil || !httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade") {
		return ""
	}
	allowed := route.Config.Upgrades
	for _, v := range up {
		for proto := range strings.SplitSeq(v, ",") {
			proto = strings.TrimSpace(proto)
			if proto == "" {
				continue
			}
			name, _, _ := strings.Cut(proto, "/") // "WebSocket/13": the name
			if !containsFold(allowed, name) {
				return proto
			}
		}
	}
	return ""
}

// containsFold reports whether list, in lower case, holds s in any case.
func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
