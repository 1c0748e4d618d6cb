package shadowtest

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

var traceparentRe = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

// one returns the single request u received with X-Seq: seq.
func one(t *testing.T, u *testkit.Upstream, seq string) testkit.Seen {
	t.Helper()
	s := u.ByHeader("X-Seq", seq)
	if len(s) != 1 {
		t.Fatalf("%s got %d requests with X-Seq %s, want 1", u.Name, len(s), seq)
	}
	return s[0]
}

// TestMarkersAndHeaderRules: copies are marked, share the live request's
// id and trace, follow the target's header rules and host suffix, and lose
// hop-by-hop headers; the live request is untouched by all of it.
func TestMarkersAndHeaderRules(t *testing.T) {
	live := newUpstream(t, "live", nil)
	v2 := newUpstream(t, "v2", nil)
	g := startGW(t, fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: shop
    backend: live
    shadow:
      - backend: v2
        percent: 100
        host_suffix: "-shadow"
        headers:
          remove: [Authorization, Cookie]
          set: {X-Env: shadow, X-Tenant: dark}
`, live.URL, v2.URL))
	c := testkit.NewClient(t, 1, testkit.Wait.Timeout)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	// 1: a client with a request id, a traceparent, credentials and
	// hop-by-hop headers.
	r := testkit.Do(t, c, "GET", g.URL+"/cart/a%2Fb%20c?x=1&y=%C3%A9", nil, "Host", "example.com", "X-Seq", "1",
		"X-Request-Id", "req-abc-123", "Traceparent", tp, "Authorization", "Bearer secret", "Cookie", "sid=1",
		"X-Tenant", "live-tenant",
		"Connection", "X-Hop-Custom, Keep-Alive", "X-Hop-Custom", "1", "Keep-Alive", "timeout=5",
		"Te", "trailers", "Proxy-Authorization", "Basic Zm9vOmJhcg==", "Upgrade", "h2c-nope", "Trailer", "X-Sum")
	if r.Status != 200 || r.Header.Get("X-Request-Id") != "req-abc-123" {
		t.Fatalf("live answer %d, X-Request-Id %q", r.Status, r.Header.Get("X-Request-Id"))
	}
	// 2: nothing from the client: the gateway makes the id and the trace.
	r2 := testkit.Do(t, c, "GET", g.URL+"/cart", nil, "Host", "example.com:8080", "X-Seq", "2")
	g.settled(t, "shop", "v2")

	l1, s1 := one(t, live, "1"), one(t, v2, "1")
	l2, s2 := one(t, live, "2"), one(t, v2, "2")

	// Markers: on copies only.
	for i, s := range []testkit.Seen{s1, s2} {
		if v := s.Header.Values("X-Umbra-Shadow"); len(v) != 1 || v[0] != "1" {
			t.Errorf("copy %d: X-Umbra-Shadow %q, want \"1\"", i+1, v)
		}
	}
	for i, l := range []testkit.Seen{l1, l2} {
		if l.Header.Get("X-Umbra-Shadow") != "" {
			t.Errorf("live %d carries X-Umbra-Shadow", i+1)
		}
	}
	// Same request id as live.
	if s1.Header.Get("X-Request-Id") != "req-abc-123" || l1.Header.Get("X-Request-Id") != "req-abc-123" {
		t.Errorf("request id: live %q copy %q, want req-abc-123", l1.Header.Get("X-Request-Id"), s1.Header.Get("X-Request-Id"))
	}
	id2 := r2.Header.Get("X-Request-Id")
	if id2 == "" || l2.Header.Get("X-Request-Id") != id2 || s2.Header.Get("X-Request-Id") != id2 {
		t.Errorf("generated request id: client %q live %q copy %q, want one id", id2, l2.Header.Get("X-Request-Id"), s2.Header.Get("X-Request-Id"))
	}
	// Trace: the live trace id, a span of the copy's own.
	for i, pair := range [][2]testkit.Seen{{l1, s1}, {l2, s2}} {
		lt := traceparentRe.FindStringSubmatch(pair[0].Header.Get("Traceparent"))
		st := traceparentRe.FindStringSubmatch(pair[1].Header.Get("Traceparent"))
		if lt == nil || st == nil {
			t.Errorf("request %d: traceparent live %q copy %q, want both valid", i+1, pair[0].Header.Get("Traceparent"), pair[1].Header.Get("Traceparent"))
			continue
		}
		if lt[1] != st[1] || lt[2] == st[2] || lt[3] != st[3] {
			t.Errorf("request %d: live %s copy %s: want the same trace id and flags, another span id", i+1, lt[0], st[0])
		}
	}
	if got := l1.Header.Get("Traceparent"); got != tp {
		t.Errorf("live traceparent changed: %q, want the client's %q", got, tp)
	}
	// Header rules.
	if s1.Header.Get("Authorization") != "" || s1.Header.Get("Cookie") != "" {
		t.Errorf("copy kept credentials: Authorization %q Cookie %q", s1.Header.Get("Authorization"), s1.Header.Get("Cookie"))
	}
	if l1.Header.Get("Authorization") != "Bearer secret" || l1.Header.Get("Cookie") != "sid=1" {
		t.Errorf("live lost credentials: %q %q", l1.Header.Get("Authorization"), l1.Header.Get("Cookie"))
	}
	if s1.Header.Get("X-Env") != "shadow" || s1.Header.Values("X-Tenant")[0] != "dark" || len(s1.Header.Values("X-Tenant")) != 1 {
		t.Errorf("copy: X-Env %q X-Tenant %q, want the set rules (replacing the client's)", s1.Header.Get("X-Env"), s1.Header.Values("X-Tenant"))
	}
	if l1.Header.Get("X-Env") != "" || l1.Header.Get("X-Tenant") != "live-tenant" {
		t.Errorf("live got the copy's header rules: X-Env %q X-Tenant %q", l1.Header.Get("X-Env"), l1.Header.Get("X-Tenant"))
	}
	// Host suffix, keeping the port; live keeps the host.
	if s1.Host != "example.com-shadow" || s2.Host != "example.com-shadow:8080" {
		t.Errorf("copy hosts %q, %q; want example.com-shadow and example.com-shadow:8080", s1.Host, s2.Host)
	}
	if l1.Host != "example.com" || l2.Host != "example.com:8080" {
		t.Errorf("live hosts %q, %q", l1.Host, l2.Host)
	}
	// Hop-by-hop headers never reach the copy (nor live).
	for _, h := range []string{"Connection", "X-Hop-Custom", "Keep-Alive", "Te", "Proxy-Authorization", "Upgrade", "Trailer"} {
		if v := s1.Header.Values(h); v != nil {
			t.Errorf("copy carries hop-by-hop %s: %q", h, v)
		}
		if v := l1.Header.Values(h); v != nil && h != "Te" {
			t.Errorf("live carries hop-by-hop %s: %q", h, v)
		}
	}
	// Path, query, method and forwarding headers as live.
	if s1.URI != "/cart/a%2Fb%20c?x=1&y=%C3%A9" || s1.URI != l1.URI || s1.Method != "GET" {
		t.Errorf("copy %s %s, live %s: want the client's request target unchanged", s1.Method, s1.URI, l1.URI)
	}
	if s1.Header.Get("X-Forwarded-Host") != "example.com" || s1.Header.Get("X-Forwarded-Proto") != "http" || s1.Header.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("copy forwarding headers: host %q proto %q for %q", s1.Header.Get("X-Forwarded-Host"), s1.Header.Get("X-Forwarded-Proto"), s1.Header.Get("X-Forwarded-For"))
	}
}

// TestPerTargetMatch: a target's match (methods, path_prefix, headers by
// value or regex) selects the requests it gets; the others are counted
// skipped_no_match.
func TestPerTargetMatch(t *testing.T) {
	live := newUpstream(t, "live", nil)
	ups := map[string]*testkit.Upstream{}
	yaml := fmt.Sprintf("backends:\n  live: {endpoints: [%q]}\n", live.URL)
	for _, n := range []string{"posts", "api", "beta", "all"} {
		ups[n] = newUpstream(t, n, nil)
		yaml += fmt.Sprintf("  %s: {endpoints: [%q]}\n", n, ups[n].URL)
	}
	g := startGW(t, yaml+`routes:
  - name: sel
    backend: live
    shadow:
      - {backend: posts, percent: 100, unsafe: allow, match: {methods: [post]}}
      - {backend: api, percent: 100, unsafe: allow, match: {path_prefix: /sel/api}}
      - {backend: beta, percent: 100, match: {headers: [{name: X-Beta, value: "yes"}]}}
      - backend: all
        percent: 100
        match:
          methods: [GET]
          path_prefix: /sel/api
          headers: [{name: x-beta, regex: "^y"}]
`)
	c := testkit.NewClient(t, 1, testkit.Wait.Timeout)
	reqs := []struct {
		method, path, beta string
		want               []string
	}{
		{"GET", "/sel/x", "", nil},
		{"GET", "/sel/api/1", "", []string{"api"}},
		{"POST", "/sel/x", "", []string{"posts"}},
		{"GET", "/sel/x", "yes", []string{"beta"}},
		{"GET", "/sel/api/2", "yes", []string{"api", "beta", "all"}},
		{"GET", "/sel/api/3", "no", []string{"api"}},
		{"POST", "/sel/api/4", "yup", []string{"posts", "api"}},
	}
	wantN := map[string]int{}
	for i, rq := range reqs {
		hdr := []string{"X-Seq", fmt.Sprint(i)}
		if rq.beta != "" {
			hdr = append(hdr, "X-Beta", rq.beta)
		}
		if r := testkit.Do(t, c, rq.method, g.URL+rq.path, nil, hdr...); r.Status != http.StatusOK {
			t.Fatalf("%s %s: %d", rq.method, rq.path, r.Status)
		}
		for _, w := range rq.want {
			wantN[w]++
		}
	}
	for name, u := range ups {
		m := g.settled(t, "sel", name)
		o := m.outcomes("sel", name)
		if o["ok"] != float64(wantN[name]) || o["skipped_no_match"] != float64(len(reqs)-wantN[name]) {
			t.Errorf("%s outcomes %v, want %d ok and %d skipped_no_match", name, o, wantN[name], len(reqs)-wantN[name])
		}
		for i, rq := range reqs {
			in := false
			for _, w := range rq.want {
				in = in || w == name
			}
			if got := len(u.ByHeader("X-Seq", fmt.Sprint(i))); got != map[bool]int{true: 1, false: 0}[in] {
				t.Errorf("%s got %d copies of %s %s (X-Beta %q), want match = %v", name, got, rq.method, rq.path, rq.beta, in)
			}
		}
	}
}

// TestConnectionCannotStripRequestID: a client's Connection header naming
// X-Request-Id (which makes it hop-by-hop for anything but the gateway's
// own fields) must not strip the request id from the live request, with
// or without a body, nor from the copies: the id the client gets back
// must be the one the upstream and the shadow logged.
func TestConnectionCannotStripRequestID(t *testing.T) {
	live := newUpstream(t, "live", nil)
	v2 := newUpstream(t, "v2", nil)
	g := startGW(t, fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: shop
    backend: live
    shadow: [{backend: v2, percent: 100, unsafe: allow}]
`, live.URL, v2.URL))
	c := testkit.NewClient(t, 1, testkit.Wait.Timeout)
	cases := []struct {
		method, body, connection, clientID string
	}{
		{"GET", "", "X-Request-Id", ""},                        // direct path, generated id
		{"GET", "", "keep-alive, x-request-id", "client-id-1"}, // direct path, the client's id
		{"POST", "payload", "X-Request-Id", ""},                // ReverseProxy path
		{"POST", "payload", "X-Request-Id", "client-id-2"},
	}
	for i, tc := range cases {
		seq := fmt.Sprint(i)
		hdr := []string{"X-Seq", seq, "Connection", tc.connection}
		if tc.clientID != "" {
			hdr = append(hdr, "X-Request-Id", tc.clientID)
		}
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		r := testkit.Do(t, c, tc.method, g.URL+"/cart", body, hdr...)
		id := r.Header.Get("X-Request-Id")
		if r.Status != 200 || id == "" || tc.clientID != "" && id != tc.clientID {
			t.Fatalf("%s with Connection: %s: status %d, X-Request-Id %q (client's %q)", tc.method, tc.connection, r.Status, id, tc.clientID)
		}
		g.settled(t, "shop", "v2")
		l, s := one(t, live, seq), one(t, v2, seq)
		if got := l.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != id {
			t.Errorf("%s with Connection: %s: live upstream got X-Request-Id %q, the client %q", tc.method, tc.connection, got, id)
		}
		if got := s.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != id {
			t.Errorf("%s with Connection: %s: the copy got X-Request-Id %q, the client %q", tc.method, tc.connection, got, id)
		}
	}
}

// TestHostHeaderMatch: a shadow target's match.headers condition on Host
// behaves as the same condition on a route (docs/config.md): by value,
// regex, presence and absence. The server keeps Host apart from the
// other header fields (r.Host), so a condition that reads only r.Header
// never saw it.
func TestHostHeaderMatch(t *testing.T) {
	live := newUpstream(t, "live", nil)
	ups := map[string]*testkit.Upstream{}
	yaml := fmt.Sprintf("backends:\n  live: {endpoints: [%q]}\n", live.URL)
	for _, n := range []string{"beta", "re", "present", "absent"} {
		ups[n] = newUpstream(t, n, nil)
		yaml += fmt.Sprintf("  %s: {endpoints: [%q]}\n", n, ups[n].URL)
	}
	g := startGW(t, yaml+`routes:
  - name: byhost
    backend: live
    match: {headers: [{name: host, regex: "^(beta|api)\\.example\\.com(:[0-9]+)?$"}]}
    shadow:
      - {backend: beta, percent: 100, match: {headers: [{name: Host, value: beta.example.com}]}}
      - {backend: re, percent: 100, match: {headers: [{name: host, regex: "^api\\."}]}}
      - {backend: present, percent: 100, match: {headers: [{name: Host}]}}
      - {backend: absent, percent: 100, match: {headers: [{name: Host, present: false}]}}
`)
	c := testkit.NewClient(t, 1, testkit.Wait.Timeout)
	reqs := []struct {
		host string
		want []string
	}{
		{"beta.example.com", []string{"beta", "present"}},
		{"api.example.com", []string{"re", "present"}},
		{"api.example.com:8080", []string{"re", "present"}},
	}
	wantN := map[string]int{}
	for i, rq := range reqs {
		if r := testkit.Do(t, c, "GET", g.URL+"/x", nil, "Host", rq.host, "X-Seq", fmt.Sprint(i)); r.Status != http.StatusOK {
			t.Fatalf("GET with Host %s: %d (the route's own Host condition must match)", rq.host, r.Status)
		}
		for _, w := range rq.want {
			wantN[w]++
		}
	}
	for name, u := range ups {
		m := g.settled(t, "byhost", name)
		o := m.outcomes("byhost", name)
		if o["ok"] != float64(wantN[name]) || o["skipped_no_match"] != float64(len(reqs)-wantN[name]) {
			t.Errorf("%s outcomes %v, want %d ok and %d skipped_no_match", name, o, wantN[name], len(reqs)-wantN[name])
		}
		for i, rq := range reqs {
			in := slices.Contains(rq.want, name)
			if got := len(u.ByHeader("X-Seq", fmt.Sprint(i))); got != map[bool]int{true: 1, false: 0}[in] {
				t.Errorf("%s got %d copies of the request with Host %s, want match = %v", name, got, rq.host, in)
			}
		}
	}
}
