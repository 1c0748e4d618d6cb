package router

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/config"
)

// splitReq parses "METHOD host path?query"; host "-" is empty.
func splitReq(line string) (method, host, path, query string) {
	f := strings.SplitN(line, " ", 3)
	path, query, _ = strings.Cut(f[2], "?")
	if f[1] == "-" {
		f[1] = ""
	}
	return f[0], f[1], path, query
}

// expect is one request and the route it must pick ("" = none).
type expect struct {
	req  string
	want string
	hdr  []string
}

func runCases(t *testing.T, routes []string, cases []expect) {
	t.Helper()
	tab := mustCompile(t, routes...)
	for _, c := range cases {
		m, h, p, q := splitReq(c.req)
		got := matchName(tab, newReq(m, h, p, q, c.hdr...))
		if got != c.want {
			t.Errorf("%s %v: got %q, want %q", c.req, c.hdr, got, c.want)
		}
		if ref := refName(t, parseRoutes(t, routes...), newReq(m, h, p, q, c.hdr...)); ref != c.want {
			t.Errorf("%s %v: reference got %q, want %q (test or reference is wrong)", c.req, c.hdr, ref, c.want)
		}
	}
}

func TestHost(t *testing.T) {
	runCases(t, []string{
		"exact host=shop.example.com",
		"wild host=*.example.com",
		"v6 host=[::1]",
		"trail host=dot.example.org.",
		"upper host=UP.Example.NET",
	}, []expect{
		{"GET shop.example.com /", "exact", nil},
		{"GET SHOP.Example.COM /", "exact", nil},
		{"GET shop.example.com:8443 /", "exact", nil},
		{"GET shop.example.com. /", "exact", nil},
		{"GET shop.example.com.:80 /", "exact", nil},
		{"GET a.example.com /", "wild", nil},
		{"GET a.b.example.com /", "wild", nil},
		{"GET A.B.EXAMPLE.COM:1 /", "wild", nil},
		{"GET example.com /", "", nil},
		{"GET xexample.com /", "", nil},
		{"GET .example.com /", "", nil},
		{"GET [::1]:80 /", "v6", nil},
		{"GET [::1] /", "v6", nil},
		{"GET ::1 /", "v6", nil},
		{"GET dot.example.org /", "trail", nil},
		{"GET up.example.net /", "upper", nil},
		{"GET - /", "", nil},
		{"GET other.org /", "", nil},
		{"GET " + strings.Repeat("a.", 128) + "example.com /", "", nil}, // too long for a DNS name
	})
}

func TestNoHostMatchesAnyHost(t *testing.T) {
	runCases(t, []string{"any path=/x"}, []expect{
		{"GET - /x", "any", nil},
		{"GET a.b.c:99 /x", "any", nil},
		{"GET " + strings.Repeat("a", 300) + " /x", "any", nil},
	})
}

func TestPath(t *testing.T) {
	runCases(t, []string{
		"exact path=/v1/shortlinks",
		"geo path=/v1/shortlinks/{id}/geo",
		"slash path=/dir/{name}/",
		"files path=/files/{p...}",
		"star path=/any/{*}",
		"checkout prefix=/checkout",
	}, []expect{
		{"GET h /v1/shortlinks", "exact", nil},
		{"GET h /v1/shortlinks/", "", nil},
		{"GET h /V1/shortlinks", "", nil},
		{"GET h /v1/shortlinks/abc/geo", "geo", nil},
		{"GET h /v1/shortlinks//geo", "", nil},
		{"GET h /v1/shortlinks/a/b/geo", "", nil},
		{"GET h /v1/shortlinks/abc/geo/", "", nil},
		{"GET h /dir/x/", "slash", nil},
		{"GET h /dir/x", "", nil},
		{"GET h /files/", "files", nil},
		{"GET h /files/a", "files", nil},
		{"GET h /files/a/b/", "files", nil},
		{"GET h /files", "", nil},
		{"GET h /any/", "star", nil},
		{"GET h /any/x/y", "star", nil},
		{"GET h /checkout", "checkout", nil},
		{"GET h /checkout/x", "checkout", nil},
		{"GET h /checkouts", "checkout", nil},
		{"GET h /check", "", nil},
		{"GET h *", "", nil},
		{"GET h ", "", nil},
	})
}

func TestNoPathMatchesEveryPath(t *testing.T) {
	runCases(t, []string{"all"}, []expect{
		{"GET h /", "all", nil},
		{"GET h ", "all", nil},
		{"OPTIONS h *", "all", nil},
	})
}

func TestMethods(t *testing.T) {
	runCases(t, []string{"w path=/x methods=POST,PUT"}, []expect{
		{"POST h /x", "w", nil},
		{"PUT h /x", "w", nil},
		{"GET h /x", "", nil},
		{"post h /x", "", nil},
	})
	runCases(t, []string{"g path=/x methods=GET"}, []expect{
		{" h /x", "g", nil}, // an empty method is GET
	})
}

func TestHeaders(t *testing.T) {
	routes := []string{
		"value path=/v h:X-Env=canary",
		"regex path=/r h:x-user~^u[0-9]+$",
		"unanchored path=/u h:X-User~[0-9]",
		"present path=/p h:X-Debug",
		"absent path=/a h:!X-Debug",
		"both path=/b h:X-A=1 h:X-B=2",
		"host path=/h h:Host~^api\\.",
	}
	runCases(t, routes, []expect{
		{"GET h /v", "value", []string{"X-Env: canary"}},
		{"GET h /v", "value", []string{"x-env: canary"}},
		{"GET h /v", "", []string{"X-Env: Canary"}},
		{"GET h /v", "", []string{"X-Env: canary, prod"}},
		{"GET h /v", "value", []string{"X-Env: prod", "X-Env: canary"}},
		{"GET h /v", "", nil},
		{"GET h /r", "regex", []string{"X-User: u42"}},
		{"GET h /r", "", []string{"X-User: u42x"}},
		{"GET h /u", "unanchored", []string{"X-User: abc7def"}},
		{"GET h /p", "present", []string{"X-Debug: "}},
		{"GET h /p", "", nil},
		{"GET h /a", "absent", nil},
		{"GET h /a", "", []string{"X-Debug: 1"}},
		{"GET h /b", "both", []string{"X-A: 1", "X-B: 2"}},
		{"GET h /b", "", []string{"X-A: 1"}},
		{"GET api.example.com /h", "host", nil},
		{"GET web.example.com /h", "", nil},
	})
}

func TestQuery(t *testing.T) {
	routes := []string{
		"value path=/v q:mode=dark",
		"plus path=/s q:q=a+b",
		"space path=/sp q:q~^a\\x20b$",
		"regex path=/r q:id~^[0-9]+$",
		"present path=/p q:debug",
		"absent path=/a q:!debug",
		"encname path=/e q:a+b=1",
	}
	runCases(t, routes, []expect{
		{"GET h /v?mode=dark", "value", nil},
		{"GET h /v?x=1&mode=dark&y", "value", nil},
		{"GET h /v?mode=light&mode=dark", "value", nil},
		{"GET h /v?mode=%64ark", "value", nil},
		{"GET h /v?mode=darker", "", nil},
		{"GET h /v?mode=dark;x=1", "", nil}, // ';' makes the pair invalid
		{"GET h /v?mode=dark%zz", "", nil},  // bad escape drops the pair
		{"GET h /v?Mode=dark", "", nil},     // names are case-sensitive
		{"GET h /s?q=a%2Bb", "plus", nil},   // config values are decoded text
		{"GET h /s?q=a+b", "", nil},         // '+' is a space
		{"GET h /sp?q=a+b", "space", nil},
		{"GET h /sp?q=a%20b", "space", nil},
		{"GET h /r?id=123", "regex", nil},
		{"GET h /r?id=%31%32", "regex", nil}, // decoded before the regex
		{"GET h /r?id=12a", "", nil},
		{"GET h /p?debug", "present", nil},
		{"GET h /p?debug=", "present", nil},
		{"GET h /p?debugx=1", "", nil},
		{"GET h /a?x=1", "absent", nil},
		{"GET h /a", "absent", nil},
		{"GET h /a?debug=0", "", nil},
		{"GET h /a?debug=%zz", "absent", nil},                             // an undecodable pair does not exist
		{"GET h /e?a%2Bb=1", "encname", nil},                              // names are decoded too
		{"GET h /e?a+b=1", "", nil},                                       // "a b"
		{"GET h /v?" + strings.Repeat("&", 10000) + "mode=dark", "", nil}, // over net/url's limit
	})
}

// TestPrecedence checks the documented order: host level, then path kind,
// then config order.
func TestPrecedence(t *testing.T) {
	routes := []string{
		"nohost-exact path=/a/b",
		"deep-wild host=*.b.example.com prefix=/",
		"wild host=*.example.com path=/a/b",
		"exact-host-prefix host=a.b.example.com prefix=/a",
		"exact-host-none host=a.b.example.com",
	}
	runCases(t, routes, []expect{
		{"GET a.b.example.com /a/b", "exact-host-prefix", nil},
		{"GET a.b.example.com /x", "exact-host-none", nil},
		{"GET x.b.example.com /a/b", "deep-wild", nil},
		{"GET x.c.example.com /a/b", "wild", nil},
		{"GET x.c.example.com /a/c", "", nil},
		{"GET other /a/b", "nohost-exact", nil},
	})
}

func TestPathPrecedence(t *testing.T) {
	routes := []string{
		"none",
		"short-prefix prefix=/v1",
		"long-prefix prefix=/v1/users",
		"rest path=/v1/{r...}",
		"param-param path=/v1/{a}/{b}",
		"param-lit path=/v1/{a}/me",
		"lit-param path=/v1/users/{id}",
		"lit-param-2 path=/v1/users/{uid}",
		"exact path=/v1/users/me",
	}
	runCases(t, routes, []expect{
		{"GET h /v1/users/me", "exact", nil},
		{"GET h /v1/users/42", "lit-param", nil}, // tie with lit-param-2: config order
		{"GET h /v1/teams/me", "param-lit", nil},
		{"GET h /v1/teams/x", "param-param", nil},
		{"GET h /v1/teams/x/y", "rest", nil},
		{"GET h /v1/users", "rest", nil},
		{"GET h /v1/usersx", "rest", nil},
		{"GET h /v1", "short-prefix", nil},
		{"GET h /v1x", "short-prefix", nil},
		{"GET h /v2", "none", nil},
	})
}

func TestPrefixLongestFirst(t *testing.T) {
	runCases(t, []string{
		"root prefix=/",
		"a prefix=/a",
		"a-dup prefix=/a",
		"ab prefix=/ab",
		"abc prefix=/abc/",
		"ax prefix=/ax",
	}, []expect{
		{"GET h /abc/d", "abc", nil},
		{"GET h /abc", "ab", nil},
		{"GET h /ab", "ab", nil},
		{"GET h /a", "a", nil},
		{"GET h /ay", "a", nil},
		{"GET h /axe", "ax", nil},
		{"GET h /b", "root", nil},
		{"GET h ", "", nil},
	})
}

// TestFallThrough checks that a failed method, header or query condition
// hands the request to the next route, across path kinds and host levels.
func TestFallThrough(t *testing.T) {
	routes := []string{
		"fallback",
		"wild-get host=*.example.com methods=GET",
		"host-prefix-canary host=shop.example.com prefix=/checkout h:X-Canary=1",
		"host-tmpl-post host=shop.example.com path=/checkout/{step} methods=POST",
		"host-exact-dark host=shop.example.com path=/checkout/pay q:dark",
		"host-exact-dark-2 host=shop.example.com path=/checkout/pay q:dark2",
	}
	runCases(t, routes, []expect{
		{"GET shop.example.com /checkout/pay?dark", "host-exact-dark", nil},
		{"GET shop.example.com /checkout/pay?dark2", "host-exact-dark-2", nil},
		{"POST shop.example.com /checkout/pay", "host-tmpl-post", nil},
		{"GET shop.example.com /checkout/pay", "host-prefix-canary", []string{"X-Canary: 1"}},
		{"GET shop.example.com /checkout/pay", "wild-get", nil},
		{"PUT shop.example.com /checkout/pay", "fallback", nil},
		{"PUT other /checkout/pay", "fallback", nil},
	})
}

func TestTemplateFallThroughBacktracks(t *testing.T) {
	runCases(t, []string{
		"lit-post path=/a/b/c methods=POST",
		"lit-tmpl-post path=/a/b/{x} methods=POST",
		"param-lit path=/a/{y}/c",
		"rest-put path=/a/{r...} methods=PUT",
		"root-rest path=/{r...}",
	}, []expect{
		{"POST h /a/b/c", "lit-post", nil},
		{"POST h /a/b/d", "lit-tmpl-post", nil},
		{"GET h /a/b/c", "param-lit", nil},
		{"GET h /a/b/d", "root-rest", nil},
		{"PUT h /a/b/d", "rest-put", nil},
		{"GET h /", "root-rest", nil},
	})
}

func TestEndpointAndIndex(t *testing.T) {
	tab := mustCompile(t,
		"t path=/v1/shortlinks/{id}/geo",
		"e path=/healthz",
		"p prefix=/checkout",
		"n host=x.example.com",
	)
	want := []string{"/v1/shortlinks/{id}/geo", "/healthz", "/checkout*", "*"}
	rs := tab.Routes()
	if len(rs) != len(want) {
		t.Fatalf("got %d routes", len(rs))
	}
	for i, rt := range rs {
		if rt.Index != i || rt.Endpoint != want[i] {
			t.Errorf("route %d: index %d endpoint %q, want %d %q", i, rt.Index, rt.Endpoint, i, want[i])
		}
	}
	rs[0] = nil // Routes returns a copy: the table stays intact
	if tab.Routes()[0] == nil {
		t.Error("Routes exposes the table's slice")
	}
}

func TestParams(t *testing.T) {
	tab := mustCompile(t,
		"geo path=/v1/shortlinks/{id}/geo",
		"files path=/files/{dir}/{p...}",
		"star path=/s/{*}",
		"exact path=/x",
	)
	rs := tab.Routes()
	cases := []struct {
		rt   *Route
		path string
		want map[string]string
	}{
		{rs[0], "/v1/shortlinks/abc/geo", map[string]string{"id": "abc"}},
		{rs[0], "/v1/shortlinks/abc/geox", nil},
		{rs[0], "/v1/shortlinks//geo", nil},
		{rs[1], "/files/d/", map[string]string{"dir": "d", "p": ""}},
		{rs[1], "/files/d/a/b", map[string]string{"dir": "d", "p": "a/b"}},
		{rs[1], "/files/d", nil},
		{rs[2], "/s/q", map[string]string{"*": "q"}},
		{rs[3], "/x", nil},
	}
	for _, c := range cases {
		got := c.rt.Params(c.path)
		if !maps.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("%s Params(%q) = %v, want %v", c.rt.Name, c.path, got, c.want)
		}
	}
}

func TestValidateTemplate(t *testing.T) {
	ok := []string{"", "/", "/a/b", "/a//b", "/{id}", "/a/{id}/b/{x_2}", "/a/{rest...}", "/{*}", "/a/{id}/"}
	bad := []string{
		"a", "{id}", "/a{id}", "/{id}x", "/{}", "/{...}", "/{1a}", "/{a-b}", "/{a}/{a}",
		"/{r...}/x", "/{*}/x", "/{a", "/a}", "/{{a}}", "/{a.b}", "/{a}}",
	}
	for _, p := range ok {
		if err := ValidateTemplate(p); err != nil {
			t.Errorf("ValidateTemplate(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range bad {
		if err := ValidateTemplate(p); err == nil {
			t.Errorf("ValidateTemplate(%q) = nil, want an error", p)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	bad := map[string]string{
		"r path=/a{b}":        "path",
		"r path=/a prefix=/a": "path",
		"r prefix=a":          "path_prefix",
		"r path=a":            "path",
		"r host=*":            "host",
		"r host=a.*.com":      "host",
		"r host=*example.com": "host",
		"r host=" + long(254): "host",
		"r h:X-A~(":           "headers",
		"r q:a~[":             "query",
		"r h:!X-A h:X-B":      "", // valid; checked below
		"r host=a/b":          "host",
		"r q:=x":              "query",
	}
	for spec, field := range bad {
		_, err := Compile(parseRoutes(t, "ok path=/", spec))
		if field == "" {
			if err != nil {
				t.Errorf("%s: %v", spec, err)
			}
			continue
		}
		var ce *CompileError
		if !errors.As(err, &ce) || ce.Field != field || ce.Index != 1 {
			t.Errorf("%s: got %v, want a CompileError on route 2 field %s", spec, err, field)
		}
	}
	r := parseRoute(t, "r h:X-A=1")
	r.Match.Headers[0].Present = new(false)
	if _, err := Compile(append(parseRoutes(t, "ok"), r)); err == nil {
		t.Error("present: false with a value compiled")
	}
}

func long(n int) string { return strings.Repeat("a", n) }

// TestRegexCompiledWhenMissing covers configs built without validation:
// Compile compiles the regex itself (validation only checks it).
func TestRegexCompiledWhenMissing(t *testing.T) {
	r := parseRoute(t, "r h:X-A~^a+$")
	tab, err := Compile([]*config.Route{r})
	if err != nil {
		t.Fatal(err)
	}
	if got := matchName(tab, newReq("GET", "h", "/", "", "X-A: aaa")); got != "r" {
		t.Errorf("got %q", got)
	}
	if got := matchName(tab, newReq("GET", "h", "/", "", "X-A: b")); got != "" {
		t.Errorf("got %q", got)
	}
}
