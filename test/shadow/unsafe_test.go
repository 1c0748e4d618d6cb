package shadowtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

// TestUnsafePolicies: unsafe methods are skipped by default (counted),
// sent marked with X-Umbra-Sandbox: 1 under "mark", sent unmarked under
// "allow"; safe methods are never marked, and the live request never
// carries a shadow marker.
func TestUnsafePolicies(t *testing.T) {
	live := newUpstream(t, "live", nil)
	skip, mark, allow := newUpstream(t, "skip", nil), newUpstream(t, "mark", nil), newUpstream(t, "allow", nil)
	g := startGW(t, fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  skip: {endpoints: [%q]}
  mark: {endpoints: [%q]}
  allow: {endpoints: [%q]}
routes:
  - name: api
    backend: live
    shadow:
      - {backend: skip, percent: 100}
      - {backend: mark, percent: 100, unsafe: mark}
      - {backend: allow, percent: 100, unsafe: allow}
`, live.URL, skip.URL, mark.URL, allow.URL))
	c := testkit.NewClient(t, 2, testkit.Wait.Timeout)
	safe := []string{"GET", "HEAD", "OPTIONS"}
	unsafe := []string{"POST", "PUT", "PATCH", "DELETE"}
	body := `{"order": 42}`
	sum := sha256.Sum256([]byte(body))
	for _, m := range append(append([]string{}, safe...), unsafe...) {
		var r testkit.Response
		if m == "GET" || m == "HEAD" || m == "OPTIONS" {
			r = testkit.Do(t, c, m, g.URL+"/things/"+m, nil, "X-Method", m)
		} else {
			r = testkit.Do(t, c, m, g.URL+"/things/"+m, strings.NewReader(body), "X-Method", m, "Content-Type", "application/json")
		}
		if r.Status != 200 {
			t.Fatalf("%s: live status %d", m, r.Status)
		}
	}
	n := float64(len(safe) + len(unsafe))
	g.settled(t, "api", "mark")
	g.settled(t, "api", "allow")
	m := g.settled(t, "api", "skip")

	if o := m.outcomes("api", "skip"); o["skipped_unsafe_method"] != 4 || total(o) != 7 || o["ok"] != 3 {
		t.Errorf("unsafe: skip outcomes %v, want 4 skipped_unsafe_method and 3 copies", o)
	}
	for _, tg := range []string{"mark", "allow"} {
		if o := m.outcomes("api", tg); o["ok"] != n || o["skipped_unsafe_method"] != 0 {
			t.Errorf("unsafe: %s outcomes %v, want all %v copied", tg, o, n)
		}
	}
	got := func(u *testkit.Upstream) map[string]testkit.Seen {
		out := map[string]testkit.Seen{}
		for _, s := range u.Seen() {
			out[s.Method] = s
		}
		return out
	}
	sk, mk, al := got(skip), got(mark), got(allow)
	for _, meth := range safe {
		for name, set := range map[string]map[string]testkit.Seen{"skip": sk, "mark": mk, "allow": al} {
			s, ok := set[meth]
			if !ok {
				t.Errorf("%s: no %s copy", name, meth)
				continue
			}
			if _, marked := s.Header["X-Umbra-Sandbox"]; marked {
				t.Errorf("%s: %s copy carries X-Umbra-Sandbox", name, meth)
			}
		}
	}
	for _, meth := range unsafe {
		if _, ok := sk[meth]; ok {
			t.Errorf("skip: got a %s copy", meth)
		}
		if s, ok := mk[meth]; !ok || s.Header.Get("X-Umbra-Sandbox") != "1" || s.Header.Get("X-Umbra-Shadow") != "1" {
			t.Errorf("mark: %s copy present %v with X-Umbra-Sandbox %q, want \"1\"", meth, ok, s.Header.Get("X-Umbra-Sandbox"))
		} else if s.SHA != hex.EncodeToString(sum[:]) {
			t.Errorf("mark: %s copy body differs", meth)
		}
		if s, ok := al[meth]; !ok || s.Header.Values("X-Umbra-Sandbox") != nil {
			t.Errorf("allow: %s copy present %v, X-Umbra-Sandbox %q; want sent without it", meth, ok, s.Header.Values("X-Umbra-Sandbox"))
		} else if s.SHA != hex.EncodeToString(sum[:]) {
			t.Errorf("allow: %s copy body differs", meth)
		}
	}
	for _, s := range live.Seen() {
		if s.Header.Get("X-Umbra-Shadow") != "" || s.Header.Get("X-Umbra-Sandbox") != "" {
			t.Errorf("live %s request carries a shadow marker: %v", s.Method, s.Header)
		}
	}
}

// TestMarkersNotSpoofable: a client sending the shadow markers itself must
// not reach the live backend with them (a live service sharing the new
// version's code would run a real request in its sandbox profile), and a
// GET copy must not carry X-Umbra-Sandbox.
func TestMarkersNotSpoofable(t *testing.T) {
	live := newUpstream(t, "live", nil)
	v2 := newUpstream(t, "v2", nil)
	g := startGW(t, fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: api
    backend: live
    shadow:
      - {backend: v2, percent: 100, unsafe: mark}
`, live.URL, v2.URL))
	c := testkit.NewClient(t, 1, testkit.Wait.Timeout)
	testkit.Do(t, c, "GET", g.URL+"/pay", nil, "X-Umbra-Sandbox", "1", "X-Umbra-Shadow", "1")
	g.settled(t, "api", "v2")
	l := live.Seen()[0]
	if v := l.Header.Values("X-Umbra-Sandbox"); v != nil {
		t.Errorf("BUG: live request carries the client's X-Umbra-Sandbox %q", v)
	}
	if v := l.Header.Values("X-Umbra-Shadow"); v != nil {
		t.Errorf("BUG: live request carries the client's X-Umbra-Shadow %q", v)
	}
	s := v2.Seen()[0]
	if v := s.Header.Values("X-Umbra-Sandbox"); v != nil {
		t.Errorf("BUG: GET copy carries X-Umbra-Sandbox %q (from the client)", v)
	}
	if v := s.Header.Values("X-Umbra-Shadow"); len(v) != 1 || v[0] != "1" {
		t.Errorf("copy X-Umbra-Shadow %q, want exactly one \"1\"", v)
	}
}

// TestOutcomeSeriesBound: every outcome of the contract is exported, at 0,
// as soon as a target exists (children are bound once), so dashboards and
// alerts see the series before the first event.
func TestOutcomeSeriesBound(t *testing.T) {
	live := newUpstream(t, "live", nil)
	v2 := newUpstream(t, "v2", nil)
	g := startGW(t, fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: api
    backend: live
    shadow:
      - {backend: v2, percent: 12.5}
`, live.URL, v2.URL))
	m := g.scrape(t)
	for _, o := range []string{"not_sampled", "skipped_no_match", "skipped_unsafe_method", "skipped_body_too_large",
		"skipped_body_incomplete", "skipped_upgrade", "skipped_live_aborted", "skipped_circuit_open", "dropped_queue_full",
		"ok", "status_5xx", "error_connect", "error_timeout", "error_reset", "error_other", "dropped_shutdown"} {
		if v, ok := m.Sum("umbra_shadow_requests_total", testkit.Labels("route", "api", "target", "v2", "outcome", o)); !ok || v != 0 {
			t.Errorf("umbra_shadow_requests_total{outcome=%q}: present %v value %v, want 0", o, ok, v)
		}
	}
	for _, name := range []string{"umbra_shadow_in_flight", "umbra_shadow_queue_length", "umbra_shadow_circuit_open"} {
		if v, ok := m.Sum(name, testkit.Labels("route", "api", "target", "v2")); !ok || v != 0 {
			t.Errorf("%s: present %v value %v, want 0", name, ok, v)
		}
	}
}
