package flagstest

import (
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

const routeFlags = `{"flags": {
  "geo-report": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"in": [{"var": "targetingKey"}, ["alice", "bob"]]}, "on", "off"]}},
  "new-ui": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"in": [{"var": "plan"}, ["pro", "enterprise"]]}, "on", "off"]}},
  "region-copy": {"state": "ENABLED", "variants": {"eu west": "eu-west", "us": "us"}, "defaultVariant": "us",
    "targeting": {"if": [{"==": [{"var": "country"}, "fr"]}, "eu west", "us"]}},
  "retired": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
  "code-default": {"state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": null}
}}`

const routeConfig = `backends:
  v1: {endpoints: [URL_v1_]}
  v2: {endpoints: [URL_v2_]}
  v3: {endpoints: [URL_v3_]}
flags: {file: DIR/flags.json}
routes:
  # The new endpoint, dark until its flag opens it for a caller.
  - name: geo
    match: {path: "/v1/reports/{id}/geo", methods: [GET], flag: {key: geo-report, variant: "on"}}
    dark: true
    backend: v2
    key: "header:X-User-ID"
    flag_context: {plan: "header:X-Plan", country: "query:country"}
    forward_flags: [geo-report, new-ui, region-copy, retired, code-default]
  # A less specific route the dark one must not fall through to.
  - name: reports
    match: {path_prefix: /v1/reports}
    backend: v3
  # A flag-gated route that is not dark: others fall through.
  - name: app-new
    match: {path_prefix: /app, flag: {key: new-ui, variant: "on"}}
    backend: v2
    key: "header:X-User-ID"
    flag_context: {plan: "header:X-Plan"}
    forward_flags: [new-ui]
  # Forwards only flags without a variant: nothing to send.
  - name: quiet
    match: {path: /quiet}
    backend: v1
    forward_flags: [retired, code-default]
  # Shadow copies and canary answers carry the header too.
  - name: mirror
    match: {path: /mirror}
    backend: v1
    key: "header:X-User-ID"
    shadow: [{backend: v3, percent: 100}]
    forward_flags: [geo-report]
  - name: canaried
    match: {path: /canaried}
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v3, weight: 100}
    forward_flags: [geo-report]
  - {name: rest, backend: v1}
`

func routeEnv(t *testing.T) (*env, map[string]*upstream) {
	ups := upstreams(t)
	ups["v3"] = newUpstream(t, "v3")
	return start(t, routeConfig, routeFlags, ups), ups
}

// A dark route answers only the callers its flag lets in; everyone else
// gets umbra's 404, not a less specific route nor the catch-all. A flagged
// route that is not dark lets the others fall through to the next route.
// Opening the flag for a caller in the flag file opens the route for
// them, without a config reload.
func TestDarkAndFlaggedRoutes(t *testing.T) {
	e, ups := routeEnv(t)
	const geo = "/v1/reports/42/geo"
	for _, c := range []struct {
		name, method, path string
		hdr                []string
		want               string
	}{
		{"dark, flag on", "GET", geo, []string{"X-User-ID", "alice"}, "v2"},
		{"dark, flag on for another caller", "GET", geo, []string{"X-User-ID", "bob"}, "v2"},
		{"dark, flag off: 404", "GET", geo, []string{"X-User-ID", "carol"}, "404"},
		{"dark, no caller key: 404", "GET", geo, nil, "404"},
		{"dark, another method: its own condition fails first", "POST", geo, []string{"X-User-ID", "carol"}, "v3"},
		{"less specific path: not the dark route", "GET", "/v1/reports/42", []string{"X-User-ID", "carol"}, "v3"},
		{"flagged, flag on", "GET", "/app/home", []string{"X-User-ID", "carol", "X-Plan", "pro"}, "v2"},
		{"flagged, flag off: falls through", "GET", "/app/home", []string{"X-User-ID", "carol", "X-Plan", "free"}, "v1"},
		{"flagged, no attribute: falls through", "GET", "/app/home", []string{"X-User-ID", "carol"}, "v1"},
	} {
		r := testkitDo(t, e, c.method, c.path, c.hdr...)
		if got := servedBy(r); got != c.want {
			t.Errorf("%s: %s %s served by %s, want %s", c.name, c.method, c.path, got, c.want)
		}
		if c.want == "404" && (r.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(r.Body), "no route matches")) {
			t.Errorf("%s: the dark 404 is not umbra's own: %v %s", c.name, r.Header, r.Body)
		}
	}
	// OFREP agrees with the router for the same targeting key.
	for user, want := range map[string]string{"alice": "on", "carol": "off"} {
		r, err := ofrepPost(e.C, e.URL+"/ofrep/v1/evaluate/flags/geo-report", evalBody("targetingKey", user))
		if err != nil || r.Status != 200 || testkit.Decode[ofrepAnswer](t, r.Body).Variant != want {
			t.Errorf("OFREP geo-report for %s: %v %d %s, want %s", user, err, r.Status, r.Body, want)
		}
	}
	v2 := ups["v2"].Hits.Load()

	// Let carol in by editing the flag file: the dark route opens for
	// her, and only for her.
	edited := strings.Replace(routeFlags, `["alice", "bob"]`, `["alice", "bob", "carol"]`, 1)
	testkit.WriteAtomic(t, e.Flags, edited)
	e.waitFlags(t, edited)
	if got := servedBy(e.get(t, geo, "X-User-ID", "carol")); got != "v2" {
		t.Errorf("carol after the flag edit: %s, want v2", got)
	}
	if got := servedBy(e.get(t, geo, "X-User-ID", "dave")); got != "404" {
		t.Errorf("dave after the flag edit: %s, want 404", got)
	}
	if got := ups["v2"].Hits.Load() - v2; got != 1 {
		t.Errorf("v2 served %d requests after the edit, want 1", got)
	}
}

// forward_flags sends the route's evaluations upstream in X-Umbra-Flags,
// in the configured order, with the route's context (key and
// flag_context), leaving out flags without a variant and %-escaping
// variants; a client-sent X-Umbra-Flags never reaches a backend.
func TestForwardedFlags(t *testing.T) {
	e, ups := routeEnv(t)
	upstreamFlags := func(path string, hdr ...string) []string {
		t.Helper()
		r := e.get(t, path, hdr...)
		if r.Status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
		return testkit.Decode[testkit.Echo](t, r.Body).Flags
	}
	forged := []string{"X-Umbra-Flags", "geo-report=on,admin=on", "x-umbra-flags", "new-ui=on"}
	for _, c := range []struct {
		name, path string
		hdr        []string
		want       string // "" for no header at all
	}{
		{"key, plan and country", "/v1/reports/1/geo?country=fr", []string{"X-User-ID", "alice", "X-Plan", "pro"}, "geo-report=on,new-ui=on,region-copy=eu%20west"},
		{"attributes missing", "/v1/reports/1/geo", []string{"X-User-ID", "bob"}, "geo-report=on,new-ui=off,region-copy=us"},
		{"forged header replaced", "/v1/reports/1/geo?country=de", append([]string{"X-User-ID", "alice", "X-Plan", "free"}, forged...), "geo-report=on,new-ui=off,region-copy=us"},
		{"the flagged route forwards its flag", "/app/x", []string{"X-User-ID", "carol", "X-Plan", "enterprise"}, "new-ui=on"},
		{"forged header on a route without forward_flags", "/elsewhere", append([]string{"X-User-ID", "alice"}, forged...), ""},
		{"forged header on a route whose flags have no variant", "/quiet", forged, ""},
		{"forged header on the fall-through route", "/app/x", append([]string{"X-User-ID", "carol", "X-Plan", "free"}, forged...), ""},
		// Naming the header in Connection (hop-by-hop: removed on the way
		// upstream) must not drop umbra's own header.
		{"Connection names the header", "/v1/reports/1/geo", []string{"X-User-ID", "alice", "Connection", "X-Umbra-Flags"}, "geo-report=on,new-ui=off,region-copy=us"},
		{"Connection lists the header", "/v1/reports/1/geo", append([]string{"X-User-ID", "alice", "Connection", "keep-alive, x-umbra-flags"}, forged...), "geo-report=on,new-ui=off,region-copy=us"},
	} {
		got := upstreamFlags(c.path, c.hdr...)
		switch {
		case c.want == "" && got != nil:
			t.Errorf("%s: backend got X-Umbra-Flags %q, want none", c.name, got)
		case c.want != "" && (len(got) != 1 || got[0] != c.want):
			t.Errorf("%s: backend got X-Umbra-Flags %q, want %q", c.name, got, c.want)
		}
	}
	// The live answer and its shadow copy carry umbra's header; so does
	// the canary's request.
	if got := upstreamFlags("/mirror", append([]string{"X-User-ID", "alice", "Connection", "X-Umbra-Flags"}, forged...)...); len(got) != 1 || got[0] != "geo-report=on" {
		t.Errorf("live request of a shadowed route: X-Umbra-Flags %q", got)
	}
	select {
	case c := <-ups["v3"].copies:
		if len(c.Flags) != 1 || c.Flags[0] != "geo-report=on" || c.Path != "/mirror" {
			t.Errorf("shadow copy: %+v, want X-Umbra-Flags geo-report=on", c)
		}
	case <-time.After(testkit.Wait.Timeout):
		t.Error("no shadow copy reached v3")
	}
	r := e.get(t, "/canaried", append([]string{"X-User-ID", "carol"}, forged...)...)
	if got := testkit.Decode[testkit.Echo](t, r.Body); got.Backend != "v3" || len(got.Flags) != 1 || got.Flags[0] != "geo-report=off" {
		t.Errorf("canary request: %+v, want v3 with X-Umbra-Flags geo-report=off", got)
	}

	// The forwarded variants are OFREP's for the same context.
	r, err := ofrepPost(e.C, e.URL+"/ofrep/v1/evaluate/flags", evalBody("targetingKey", "alice", "plan", "pro", "country", "fr"))
	if err != nil || r.Status != 200 {
		t.Fatalf("bulk: %v %d", err, r.Status)
	}
	variants := map[string]string{}
	for _, f := range testkit.Decode[bulkAnswer](t, r.Body).Flags {
		variants[f.Key] = f.Variant
	}
	if variants["geo-report"] != "on" || variants["new-ui"] != "on" || variants["region-copy"] != "eu west" || variants["retired"] != "" || variants["code-default"] != "" {
		t.Errorf("OFREP variants for alice/pro/fr: %v", variants)
	}
}
