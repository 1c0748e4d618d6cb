package router

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/config"
)

// parseRoute reads a compact route spec used by the tests:
//
//	name host=H path=P prefix=P methods=GET,POST h:Name=v h:Name~re h:Name h:!Name q:...
//
// "h:Name=v" is an exact value, "~" a regex, a bare name "must be present"
// and "!" "must be absent"; "q:" is the same for query parameters.
func parseRoute(t testing.TB, spec string) *config.Route {
	t.Helper()
	f := strings.Fields(spec)
	r := &config.Route{Name: f[0]}
	m := &r.Match
	for _, tok := range f[1:] {
		key, val, _ := strings.Cut(tok, "=")
		switch {
		case key == "host":
			m.Host = val
		case key == "path":
			m.Path = val
		case key == "prefix":
			m.PathPrefix = val
		case key == "methods":
			m.Methods = strings.Split(val, ",")
		case strings.HasPrefix(tok, "h:"):
			n, v, re, present := parseCond(tok[2:])
			m.Headers = append(m.Headers, config.ValueMatch{Name: n, Value: v, Regex: re, Present: present})
		case strings.HasPrefix(tok, "q:"):
			n, v, re, present := parseCond(tok[2:])
			m.Query = append(m.Query, config.ValueMatch{Name: n, Value: v, Regex: re, Present: present})
		default:
			t.Fatalf("bad route token %q", tok)
		}
	}
	return r
}

func parseCond(s string) (name, value, re string, present *bool) {
	if n, ok := strings.CutPrefix(s, "!"); ok {
		return n, "", "", new(false)
	}
	if n, v, ok := strings.Cut(s, "="); ok {
		return n, v, "", nil
	}
	if n, r, ok := strings.Cut(s, "~"); ok {
		return n, "", r, nil
	}
	return s, "", "", nil
}

// compileRe compiles a reference regex; nil for none or an invalid one.
func compileRe(re string) *regexp.Regexp {
	if re == "" {
		return nil
	}
	re2, err := regexp.Compile(re)
	if err != nil {
		return nil // left for Compile to report
	}
	return re2
}

func parseRoutes(t testing.TB, specs ...string) []*config.Route {
	t.Helper()
	rs := make([]*config.Route, len(specs))
	for i, s := range specs {
		rs[i] = parseRoute(t, s)
	}
	return rs
}

func mustCompile(t testing.TB, specs ...string) *Table {
	t.Helper()
	tab, err := Compile(parseRoutes(t, specs...))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// newReq builds a server-side request by hand rather than parsing a URL,
// so tests control Host, Path and RawQuery byte for byte. Headers are
// "Name: value" strings.
func newReq(method, host, path, rawQuery string, headers ...string) *http.Request {
	r := &http.Request{Method: method, Host: host, URL: &url.URL{Path: path, RawQuery: rawQuery}, Header: http.Header{}}
	for _, h := range headers {
		n, v, _ := strings.Cut(h, ":")
		r.Header.Add(n, strings.TrimPrefix(v, " "))
	}
	return r
}

func matchName(tab *Table, r *http.Request) string {
	if rt := tab.Match(r); rt != nil {
		return rt.Name
	}
	return ""
}
