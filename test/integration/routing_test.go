package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

// TestRoutingEndToEnd: host, path template, prefix, method, header and
// query conditions send requests to the expected backend, through real
// sockets (the router's own tests cover precedence in depth).
func TestRoutingEndToEnd(t *testing.T) {
	t.Parallel()
	names := []string{"host-api", "tmpl", "prefix", "post", "beta", "q2", "fallback"}
	var backends strings.Builder
	for _, n := range names {
		fmt.Fprintf(&backends, "  %s: {endpoints: [%q]}\n", n, testkit.NewUpstream(t, n, nil).URL)
	}
	g := startGW(t, base+"backends:\n"+backends.String()+`
routes:
  - {name: host, match: {host: api.example.com}, backend: host-api}
  - {name: orders, match: {path: "/users/{id}/orders"}, backend: tmpl}
  - {name: static, match: {path_prefix: /static/}, backend: prefix}
  - {name: submit, match: {path: /submit, methods: [post]}, backend: post}
  - {name: beta, match: {path_prefix: /feature, headers: [{name: X-Beta, value: "1"}]}, backend: beta}
  - {name: v2, match: {path_prefix: /q, query: [{name: v, value: "2"}]}, backend: q2}
  - {name: fallback, backend: fallback}
`)
	c := newClient(t)
	for _, tc := range []struct {
		method, host, target string
		hdr                  []string
		want                 string
	}{
		{"GET", "api.example.com", "/users/7/orders", nil, "host-api"},
		{"GET", "API.Example.COM:8080", "/anything", nil, "host-api"},
		{"GET", "www.example.com", "/users/7/orders", nil, "tmpl"},
		{"GET", "www.example.com", "/users/7/orders/9", nil, "fallback"},
		{"GET", "www.example.com", "/users/7", nil, "fallback"},
		{"GET", "www.example.com", "/static/app.js", nil, "prefix"},
		{"GET", "www.example.com", "/static", nil, "fallback"},
		{"POST", "www.example.com", "/submit", nil, "post"},
		{"GET", "www.example.com", "/submit", nil, "fallback"},
		{"GET", "www.example.com", "/feature/x", []string{"X-Beta", "1"}, "beta"},
		{"GET", "www.example.com", "/feature/x", []string{"X-Beta", "0"}, "fallback"},
		{"GET", "www.example.com", "/feature/x", nil, "fallback"},
		{"GET", "www.example.com", "/q?v=2&x=1", nil, "q2"},
		{"GET", "www.example.com", "/q?v=3", nil, "fallback"},
	} {
		hdr := append([]string{"Host", tc.host}, tc.hdr...)
		r := do(t, c, tc.method, g.URL+tc.target, nil, hdr...)
		e := echoOf(t, r)
		if e.Backend != tc.want {
			t.Errorf("%s %s%s %v: served by %s, want %s", tc.method, tc.host, tc.target, tc.hdr, e.Backend, tc.want)
		}
		// The path and query reach the backend unchanged.
		path, query, _ := strings.Cut(tc.target, "?")
		if e.Path != path || e.RawQuery != query || e.Method != tc.method {
			t.Errorf("%s %s: backend got %s %s?%s", tc.method, tc.target, e.Method, e.Path, e.RawQuery)
		}
	}
	// Route names and endpoints label the metrics.
	g.WaitMetric(t, "umbra_requests_total", testkit.Labels("route", "orders", "backend", "tmpl", "code", "200"), 1)
	if ri := routes(t, g)["orders"]; ri.Endpoint != "/users/{id}/orders" || ri.Backend != "tmpl" {
		t.Errorf("/api/v1/routes orders = %+v", ri)
	}
}
