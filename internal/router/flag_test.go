package router

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/flags"
)

// headerFlags is a FlagMatcher for tests: a route's flag condition holds
// when the request's X-Flags header lists "key=variant".
type headerFlags struct{ calls *int }

func (h headerFlags) Match(r *http.Request, route *config.Route) bool {
	if h.calls != nil {
		*h.calls++
	}
	f := route.Match.Flag
	for _, v := range strings.Split(r.Header.Get("X-Flags"), ",") {
		if v == f.Key+"="+f.Variant {
			return true
		}
	}
	return false
}

// withFlag adds a flag condition (and dark) to a parsed route spec.
func withFlag(rt *config.Route, key, variant string, dark bool) *config.Route {
	rt.Match.Flag = &config.FlagMatch{Key: key, Variant: variant}
	rt.Dark = dark
	return rt
}

func TestFlagCondition(t *testing.T) {
	calls := 0
	routes := []*config.Route{
		withFlag(parseRoute(t, "geo-v2 path=/v1/links/{id}/geo"), "geo", "on", false),
		parseRoute(t, "links-v1 prefix=/v1/links/"),
		withFlag(parseRoute(t, "report path=/v1/report methods=GET"), "report", "on", true),
		parseRoute(t, "report-post path=/v1/report"),
		withFlag(parseRoute(t, "beta host=shop.example.com prefix=/app h:X-Beta"), "beta", "on", true),
		parseRoute(t, "any"),
	}
	tab, err := CompileWith(routes, Options{Flags: headerFlags{&calls}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, method, host, path, flags string
		headers                         []string
		want                            string
	}{
		{"flag on", "GET", "x", "/v1/links/7/geo", "geo=on", nil, "geo-v2"},
		{"flag off falls through", "GET", "x", "/v1/links/7/geo", "geo=off", nil, "links-v1"},
		{"no flag falls through", "GET", "x", "/v1/links/7/geo", "", nil, "links-v1"},
		{"dark on", "GET", "x", "/v1/report", "report=on", nil, "report"},
		{"dark off: 404, no fall-through", "GET", "x", "/v1/report", "", nil, ""},
		{"dark, other method: its conditions fail first, falls through", "POST", "x", "/v1/report", "", nil, "report-post"},
		{"dark on another host level", "GET", "shop.example.com", "/app/x", "beta=on", []string{"X-Beta: 1"}, "beta"},
		{"dark off on another host level blocks lower levels", "GET", "shop.example.com", "/app/x", "", []string{"X-Beta: 1"}, ""},
		{"dark's header fails: falls through", "GET", "shop.example.com", "/app/x", "", nil, "any"},
		{"elsewhere", "GET", "x", "/other", "", nil, "any"},
	} {
		r := newReq(c.method, c.host, c.path, "", append(c.headers, "X-Flags: "+c.flags)...)
		if got := matchName(tab, r); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	// the flag is evaluated only once the other conditions held
	calls = 0
	tab.Match(newReq("PUT", "x", "/v1/report", ""))
	tab.Match(newReq("GET", "shop.example.com", "/app/x", ""))
	if calls != 0 {
		t.Errorf("flag evaluated %d times for requests failing other conditions", calls)
	}
	if rt := tab.Routes()[2]; !rt.Dark || tab.Routes()[0].Dark {
		t.Error("Route.Dark")
	}
}

func TestFlagCompileErrors(t *testing.T) {
	flagged := []*config.Route{withFlag(parseRoute(t, "a path=/a"), "k", "on", false)}
	_, err := Compile(flagged)
	var ce *CompileError
	if !errors.As(err, &ce) || ce.Field != "flag" || !strings.Contains(err.Error(), "no flag evaluator") {
		t.Errorf("Compile with a flag condition: %v", err)
	}
	dark := parseRoute(t, "b path=/b")
	dark.Dark = true
	if _, err := CompileWith([]*config.Route{dark}, Options{Flags: headerFlags{}}); !errors.As(err, &ce) || ce.Field != "dark" {
		t.Errorf("dark without flag: %v", err)
	}
	if _, err := CompileWith([]*config.Route{withFlag(parseRoute(t, "c"), "k", "", false)}, Options{Flags: headerFlags{}}); !errors.As(err, &ce) || ce.Field != "flag" {
		t.Errorf("flag without variant: %v", err)
	}
	// Compile keeps working for tables without flags
	if _, err := Compile(parseRoutes(t, "a path=/a", "b")); err != nil {
		t.Error(err)
	}
}

// Routes without flag conditions stay allocation-free in a table that has
// flagged routes.
func TestFlagTableAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	routes := append(routes10k(), withFlag(parseRoute(t, "flagged host=svc42.example.com path=/api/v1/resource17"), "k", "on", false))
	tab, err := CompileWith(routes, Options{Flags: headerFlags{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range benchCases() {
		if c.regex {
			continue
		}
		if got := matchName(tab, c.req); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		if n := testing.AllocsPerRun(100, func() { tab.Match(c.req) }); n != 0 {
			t.Errorf("%s: %v allocations per Match", c.name, n)
		}
	}
}

// flagBench is a flag file whose geo-report flag splits callers 30/70 by
// targeting key, as a dark launch would.
const flagBench = `{"flags": {"geo-report": {"state": "ENABLED", "variants": {"on": true, "off": false},
  "defaultVariant": "off", "targeting": {"fractional": [["on", 30], ["off", 70]]}}}}`

func flagBenchTable(b testing.TB) (*Table, *flags.Evaluator) {
	e := flags.New()
	if err := e.Load([]byte(flagBench), "bench.json"); err != nil {
		b.Fatal(err)
	}
	geo := parseRoute(b, "geo path=/v1/links/{id}/geo")
	geo.KeySource = config.KeySource{Kind: "header", Name: "X-User-ID"}
	withFlag(geo, "geo-report", "on", true)
	routes := []*config.Route{geo, parseRoute(b, "plain path=/v1/links/{id}/stats"), parseRoute(b, "rest")}
	tab, err := CompileWith(routes, Options{Flags: flags.Matcher{E: e}})
	if err != nil {
		b.Fatal(err)
	}
	return tab, e
}

// BenchmarkFlagMatch compares matching a plain template route with a
// flag-gated one. "flag/cached" is a caller seen before (the common
// case: a session's requests); "flag/new-caller" evaluates with flagd.
func BenchmarkFlagMatch(b *testing.B) {
	tab, _ := flagBenchTable(b)
	plain := newReq("GET", "x", "/v1/links/42/stats", "", "X-User-ID: user-7")
	flagged := newReq("GET", "x", "/v1/links/42/geo", "", "X-User-ID: user-7")
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tab.Match(plain)
		}
	})
	b.Run("flag/cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tab.Match(flagged)
		}
	})
	b.Run("flag/new-caller", func(b *testing.B) {
		// more distinct callers than the cache holds, cycled: every
		// evaluation misses and runs flagd's evaluator
		b.ReportAllocs()
		keys := make([]string, 1<<18)
		for i := range keys {
			keys[i] = fmt.Sprintf("caller-%d-%d", b.N, i)
		}
		r := newReq("GET", "x", "/v1/links/42/geo", "", "X-User-ID: x")
		i := 0
		for b.Loop() {
			r.Header["X-User-Id"][0] = keys[i%len(keys)]
			tab.Match(r)
			i++
		}
	})
}

func TestFlagMatchWithEvaluator(t *testing.T) {
	tab, e := flagBenchTable(t)
	on, off := 0, 0
	for i := range 1000 {
		user := fmt.Sprintf("user-%d", i)
		r := newReq("GET", "x", "/v1/links/42/geo", "", "X-User-ID: "+user)
		got := matchName(tab, r)
		want := ""
		if e.Variant("geo-report", map[string]any{flags.TargetingKey: user}) == "on" {
			want = "geo"
			on++
		} else {
			off++
		}
		if got != want {
			t.Fatalf("%s: matched %q, want %q", user, got, want)
		}
	}
	if on == 0 || off == 0 {
		t.Errorf("on %d off %d", on, off)
	}
	// without a key the fractional split serves the default: dark
	if got := matchName(tab, newReq("GET", "x", "/v1/links/42/geo", "")); got != "" {
		t.Errorf("no caller key: %q", got)
	}
	if !raceEnabled {
		r := newReq("GET", "x", "/v1/links/42/geo", "", "X-User-ID: user-1")
		tab.Match(r)
		if n := testing.AllocsPerRun(100, func() { tab.Match(r) }); n != 0 {
			t.Errorf("cached flag match: %v allocations", n)
		}
	}
}
