package router

import (
	"maps"
	"net/http"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/config"
)

// The reference matcher below reads the config routes directly, checks
// every route against the request the obvious way (regexps for templates,
// r.URL.Query for the query) and keeps the best one by the documented
// precedence. It shares no code with the router on purpose.

// refKey ranks a matching route; smaller is more specific.
type refKey struct {
	hostRank  int   // 0 exact host, 1 wildcard, 2 no host
	suffixLen int   // wildcard suffix length: longer first
	pathRank  int   // 0 exact, 1 template, 2 prefix, 3 no path
	kinds     []int // template segment kinds: 0 literal, 1 {name}, 2 {name...}
	prefixLen int   // longer first
}

func refLess(a, b refKey) bool {
	switch {
	case a.hostRank != b.hostRank:
		return a.hostRank < b.hostRank
	case a.suffixLen != b.suffixLen:
		return a.suffixLen > b.suffixLen
	case a.pathRank != b.pathRank:
		return a.pathRank < b.pathRank
	}
	if c := slices.Compare(a.kinds, b.kinds); c != 0 {
		return c < 0
	}
	return a.prefixLen > b.prefixLen
}

// refMatch returns the index of the route the router must pick, or -1.
func refMatch(routes []*config.Route, r *http.Request) int {
	best, bestKey := -1, refKey{}
	for i, cr := range routes {
		k, ok := refEval(&cr.Match, r)
		if ok && (best < 0 || refLess(k, bestKey)) { // strict: ties keep config order
			best, bestKey = i, k
		}
	}
	return best
}

func refName(t testing.TB, routes []*config.Route, r *http.Request) string {
	if i := refMatch(routes, r); i >= 0 {
		return routes[i].Name
	}
	return ""
}

func refEval(m *config.Match, r *http.Request) (refKey, bool) {
	var k refKey
	var ok bool
	if k.hostRank, k.suffixLen, ok = refHost(m.Host, r.Host); !ok {
		return k, false
	}
	if k.pathRank, k.kinds, k.prefixLen, ok = refPath(m, r.URL.Path); !ok {
		return k, false
	}
	method := r.Method
	if method == "" {
		method = "GET"
	}
	if len(m.Methods) > 0 && !slices.Contains(m.Methods, method) {
		return k, false
	}
	for _, h := range m.Headers {
		vals := r.Header.Values(h.Name)
		if textproto.CanonicalMIMEHeaderKey(h.Name) == "Host" {
			vals = nil
			if r.Host != "" {
				vals = []string{r.Host}
			}
		}
		if !refValues(vals, h.Value, compileRe(h.Regex), h.Present) {
			return k, false
		}
	}
	for _, c := range m.Query {
		if !refValues(r.URL.Query()[c.Name], c.Value, compileRe(c.Regex), c.Present) {
			return k, false
		}
	}
	return k, true
}

func refValues(vals []string, value string, re *regexp.Regexp, present *bool) bool {
	switch {
	case present != nil && !*present:
		return len(vals) == 0
	case re != nil:
		return slices.ContainsFunc(vals, re.MatchString)
	case value != "":
		return slices.Contains(vals, value)
	}
	return len(vals) > 0
}

func refHost(pattern, reqHost string) (rank, suffixLen int, ok bool) {
	if pattern == "" {
		return 2, 0, true
	}
	h := reqHost
	switch {
	case strings.HasPrefix(h, "[") && strings.Contains(h, "]"):
		h = h[1:strings.Index(h, "]")]
	case strings.Count(h, ":") == 1:
		h, _, _ = strings.Cut(h, ":")
	}
	h = refLower(strings.TrimSuffix(h, "."))
	if len(h) > 255 {
		return 0, 0, false
	}
	p := strings.Trim(refLower(strings.TrimSuffix(pattern, ".")), "[]")
	if suffix, wild := strings.CutPrefix(p, "*"); wild {
		return 1, len(suffix), strings.HasSuffix(h, suffix) && len(h) > len(suffix)
	}
	return 0, 0, h == p
}

func refLower(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'A' && c <= 'Z' {
			c += 32
		}
		b.WriteByte(c)
	}
	return b.String()
}

func refPath(m *config.Match, path string) (rank int, kinds []int, prefixLen int, ok bool) {
	switch {
	case m.PathPrefix != "":
		return 2, nil, len(m.PathPrefix), strings.HasPrefix(path, m.PathPrefix)
	case m.Path == "":
		return 3, nil, 0, true
	case !strings.Contains(m.Path, "{"):
		return 0, nil, 0, path == m.Path
	}
	re, kinds := refTemplate(m.Path)
	return 1, kinds, 0, re.MatchString(path)
}

type refTmpl struct {
	re    *regexp.Regexp
	kinds []int
}

var refTemplates = map[string]refTmpl{}

// refTemplate turns a template into an anchored regexp and its segment kinds.
func refTemplate(tmpl string) (*regexp.Regexp, []int) {
	if c, ok := refTemplates[tmpl]; ok {
		return c.re, c.kinds
	}
	var kinds []int
	var src strings.Builder
	src.WriteString("^")
	for _, seg := range strings.Split(tmpl[1:], "/") {
		src.WriteString("/")
		switch {
		case seg == "{*}" || strings.HasSuffix(seg, "...}"):
			kinds = append(kinds, 2)
			src.WriteString("(?s:.*)")
		case strings.HasPrefix(seg, "{"):
			kinds = append(kinds, 1)
			src.WriteString("[^/]+")
		default:
			kinds = append(kinds, 0)
			src.WriteString(regexp.QuoteMeta(seg))
		}
	}
	src.WriteString("$")
	c := refTmpl{regexp.MustCompile(src.String()), kinds}
	refTemplates[tmpl] = c
	return c.re, c.kinds
}

// fuzzRoutes overlap on purpose: every path kind at every host level, ties,
// and conditions that fail so matching must fall through.
var fuzzRoutes = []string{
	"n-all",
	"n-exact path=/a/b",
	"n-tmpl path=/a/{x}",
	"n-tmpl-b path=/{x}/b",
	"n-rest path=/a/{r...}",
	"n-star-post path=/{*} methods=POST",
	"n-pfx prefix=/a",
	"n-pfx-root prefix=/ h:X-A=1",
	"n-pfx-ab prefix=/ab q:k=v",
	"n-pfx-ab-dup prefix=/ab",
	"n-tmpl-dup path=/a/{y}",
	"n-slash path=/a/{x}/",
	"n-q-enc path=/q q:a+b=c+d",
	"n-host-hdr path=/hh h:Host~example",
	"n-deep path=/a/{x}/{y}/c methods=DELETE",
	"n-deep-lit path=/a/b/{y}/c h:X-B",
	"h-exact host=shop.example.com path=/a/b methods=GET",
	"h-tmpl host=shop.example.com path=/a/{x} h:X-B~^[a-c]+$",
	"h-pfx host=shop.example.com prefix=/a/ q:!debug",
	"h-none host=shop.example.com h:!X-A",
	"w1 host=*.example.com path=/a/b/c",
	"w1-pfx host=*.example.com prefix=/ab",
	"w2 host=*.b.example.com prefix=/a q:id~[0-9]",
	"w2-none host=*.b.example.com methods=PUT",
	"v6 host=[::1] path=/a/b",
	"upper host=UP.example.com. prefix=/",
}

func FuzzMatch(f *testing.F) {
	routes := parseRoutes(f, fuzzRoutes...)
	tab, err := Compile(routes)
	if err != nil {
		f.Fatal(err)
	}
	seeds := []struct {
		host, path, method, a, b, query string
		flags                           uint8
	}{
		{"shop.example.com", "/a/b", "GET", "", "", "", 0},
		{"Shop.Example.com:80", "/a/b", "POST", "1", "abc", "debug", 3},
		{"x.b.example.com", "/abc", "PUT", "", "", "id=4", 0},
		{"x.y.example.com.", "/a/b/c", "GET", "", "", "k=v", 0},
		{"[::1]:8080", "/a/b", "GET", "", "", "", 0},
		{"", "/q", "GET", "", "", "a+b=c%2Bd", 0},
		{"up.example.com", "/a/x/", "HEAD", "", "b", "a%20b=c+d;x", 2},
		{"example.com", "/hh", "", "", "", "%zz", 0},
		{"shop.example.com", "/a/q/r/c", "DELETE", "", "", "", 0},
		{"shop.example.com", "/a/b/q/c", "GET", "", "", "", 2},
	}
	for _, s := range seeds {
		f.Add(s.host, s.path, s.method, s.a, s.b, s.query, s.flags)
	}
	f.Fuzz(func(t *testing.T, host, path, method, a, b, query string, flags uint8) {
		r := newReq(method, host, path, query)
		if flags&1 != 0 {
			r.Header["X-A"] = []string{a}
		}
		if flags&2 != 0 {
			r.Header["X-B"] = []string{b}
		}
		got, want := matchName(tab, r), refName(t, routes, r)
		if got != want {
			t.Fatalf("host %q path %q method %q query %q headers %v: got %q, reference %q", host, path, method, query, r.Header, got, want)
		}
	})
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"", "/", "/a/{id}", "/a/{r...}", "/{*}", "/a{", "/{a}/{a}", "/{a}/", "x", "/{}/{...}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		verr := ValidateTemplate(s)
		tab, cerr := Compile([]*config.Route{{Name: "t", Match: config.Match{Path: s}}})
		if (verr == nil) != (cerr == nil) {
			t.Fatalf("%q: ValidateTemplate %v but Compile %v", s, verr, cerr)
		}
		Compile([]*config.Route{{Name: "p", Match: config.Match{PathPrefix: s, Host: s}}})
		if cerr != nil || !isTemplate(s) {
			return
		}
		path, want := instantiate(s)
		rt := tab.Match(newReq("GET", "h", path, ""))
		if rt == nil {
			t.Fatalf("template %q does not match %q", s, path)
		}
		if got := rt.Params(path); !maps.Equal(got, want) {
			t.Fatalf("template %q path %q: Params %v, want %v", s, path, got, want)
		}
	})
}

// instantiate fills a valid template with values and returns the path and
// the parameters Params must find in it.
func instantiate(tmpl string) (string, map[string]string) {
	want := map[string]string{}
	var path strings.Builder
	for i, seg := range strings.Split(tmpl[1:], "/") {
		path.WriteString("/")
		name := strings.Trim(seg, "{}")
		switch {
		case !strings.HasPrefix(seg, "{"):
			path.WriteString(seg)
		case seg == "{*}" || strings.HasSuffix(name, "..."):
			v := "r" + strconv.Itoa(i) + "/s"
			want[strings.TrimSuffix(name, "...")] = v
			path.WriteString(v)
		default:
			want[name] = "v" + strconv.Itoa(i)
			path.WriteString(want[name])
		}
	}
	return path.String(), want
}
