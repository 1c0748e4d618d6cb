package router

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/umbragw/umbra/internal/config"
)

// routes10k builds a realistic table of 10,000 routes: 100 services on
// exact hosts (exact paths, templates, prefixes, some write-only or
// header-gated routes), 50 wildcard tenant domains and 500 routes on any
// host.
func routes10k() []*config.Route {
	var rs []*config.Route
	add := func(m config.Match) {
		rs = append(rs, &config.Route{Name: fmt.Sprintf("r%d", len(rs)), Match: m})
	}
	canary := []config.ValueMatch{{Name: "X-Canary", Regex: "^(1|true)$"}}
	for h := range 100 {
		host := fmt.Sprintf("svc%02d.example.com", h)
		for i := range 30 {
			add(config.Match{Host: host, Path: fmt.Sprintf("/api/v1/resource%d", i)})
		}
		for i := range 20 {
			add(config.Match{Host: host, Path: fmt.Sprintf("/api/v1/resource%d/{id}/items/{item}", i)})
		}
		for i := range 20 {
			add(config.Match{Host: host, PathPrefix: fmt.Sprintf("/static/%d/", i)})
		}
		for i := range 10 {
			add(config.Match{Host: host, Path: fmt.Sprintf("/api/v2/orders/%d", i), Methods: []string{"POST", "PUT"}})
		}
		for i := range 10 {
			add(config.Match{Host: host, PathPrefix: fmt.Sprintf("/api/v2/beta%d", i), Headers: canary})
		}
	}
	for w := range 50 {
		host := fmt.Sprintf("*.t%02d.example.net", w)
		for i := range 10 {
			add(config.Match{Host: host, Path: fmt.Sprintf("/tenant/{tid}/app%d/{rest...}", i)})
		}
	}
	for i := range 250 {
		add(config.Match{Path: fmt.Sprintf("/shared/%d/{id}", i)})
		add(config.Match{PathPrefix: fmt.Sprintf("/assets/%d", i)})
	}
	return rs
}

type benchCase struct {
	name  string
	req   *http.Request
	want  string // route name, "" for no match
	regex bool   // goes through a regexp condition
}

func benchCases() []benchCase {
	return []benchCase{
		{"exact", newReq("GET", "svc42.example.com", "/api/v1/resource17", ""), "r3797", false},
		{"template", newReq("GET", "svc42.example.com", "/api/v1/resource7/123/items/9", ""), "r3817", false},
		{"prefix", newReq("GET", "SVC42.example.com:8080", "/static/13/img/logo.png", ""), "r3843", false},
		{"method", newReq("POST", "svc42.example.com", "/api/v2/orders/3", ""), "r3853", false},
		{"header", newReq("GET", "svc42.example.com", "/api/v2/beta4/x", "", "X-Canary: true"), "r3864", true},
		{"wildcard", newReq("GET", "a.b.t07.example.net", "/tenant/acme/app3/x/y", ""), "r9073", false},
		{"nohost", newReq("GET", "svc42.example.com", "/assets/199/app.js", ""), "r9899", false},
		{"fallthrough", newReq("GET", "svc42.example.com", "/api/v2/orders/3", ""), "", false},
		{"miss", newReq("GET", "unknown.example.org", "/nothing/here", ""), "", false},
	}
}

func BenchmarkMatch10k(b *testing.B) {
	tab, err := Compile(routes10k())
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tab.Match(c.req)
			}
		})
	}
}

// TestMatch10k checks the benchmark's expectations, and that Match makes
// no allocation on any of its paths.
func TestMatch10k(t *testing.T) {
	routes := routes10k()
	tab, err := Compile(routes)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 10000 {
		t.Fatalf("%d routes", len(routes))
	}
	for _, c := range benchCases() {
		if got := matchName(tab, c.req); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		if ref := refName(t, routes, c.req); ref != c.want {
			t.Errorf("%s: reference got %q, want %q", c.name, ref, c.want)
		}
		if c.regex && raceEnabled {
			continue
		}
		if n := testing.AllocsPerRun(100, func() { tab.Match(c.req) }); n != 0 {
			t.Errorf("%s: %v allocations per Match", c.name, n)
		}
	}
}

func TestMatchAllocsConditions(t *testing.T) {
	if raceEnabled {
		t.Skip("regexp allocates under -race (sync.Pool drops items)")
	}
	tab := mustCompile(t, fuzzRoutes...)
	reqs := []*http.Request{
		newReq("GET", "Shop.Example.com:80", "/a/zz", "debug", "X-B: abc"),
		newReq("GET", "x.b.example.com", "/abc", "id=4&k=v"),
		newReq("GET", "x.b.example.com", "/q", "a+b=c%2Bd"),
		newReq("GET", "example.com", "/hh", ""),
		newReq("DELETE", "nope", "/a/x/y/c", "", "X-A: 1"),
	}
	for _, r := range reqs {
		if n := testing.AllocsPerRun(100, func() { tab.Match(r) }); n != 0 {
			t.Errorf("%s %s%s?%s: %v allocations per Match", r.Method, r.Host, r.URL.Path, r.URL.RawQuery, n)
		}
	}
}
