package router

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/match"
)

// Route is one compiled route.
type Route struct {
	Index    int // position in the config's routes list (the caller keeps runtime state per index)
	Name     string
	Endpoint string // stable endpoint name for metrics: the path template ("/v1/shortlinks/{id}/geo"), the exact path, the prefix followed by "*" ("/checkout*"), or "*" when no path condition

	// Dark is true for a dark route (routes[].dark): when its flag
	// condition alone fails, Match answers no route at all instead of
	// falling through to a less specific one.
	Dark bool

	methods []string
	headers []match.Cond
	query   []match.Cond
	flag    *flagCond // routes[].match.flag; nil without one
	tmpl    []tseg    // the parsed template; nil unless path is one
	// plain is true when the route has no method, header, query or flag
	// condition, so a path hit is a match without further checks.
	plain bool
}

// FlagMatcher evaluates routes' flag conditions (routes[].match.flag).
// Match reports whether the flag named by route.Match.Flag evaluates to
// its variant for r; it is called only for routes that have one, after
// their other conditions hold. flags.Matcher implements it.
type FlagMatcher interface {
	Match(r *http.Request, route *config.Route) bool
}

// Options are the optional inputs of CompileWith.
type Options struct {
	// Flags evaluates flag conditions. Required when a route has one.
	Flags FlagMatcher
}

// flagCond is a compiled flag condition.
type flagCond struct {
	m     FlagMatcher
	route *config.Route
}

// blocked is what the level walk returns when a dark route's flag turned
// the request away: it ends the search, and Match answers nil.
var blocked = &Route{Index: -1, Name: "(dark)"}

// Table is a compiled, immutable set of routes.
type Table struct {
	routes []*Route
	exact  map[string]*level // by lower-case host
	wild   map[string]*level // by suffix: "*.example.com" is ".example.com"
	any    *level            // routes without a host

	// wildMin and wildMax bound the suffix lengths in wild, so that most
	// of a request host's suffixes are skipped without hashing them.
	wildMin, wildMax int
}

// level holds the routes of one host condition, indexed by path kind. Each
// list is in config order, which is the tie-break.
type level struct {
	exact map[string][]*Route
	tmpl  *tnode
	pfx   *pnode
	all   []*Route // no path condition

	prefixes map[string][]*Route // collected by add, built into pfx by finish
}

// CompileError says which route failed to compile, so the caller can point
// at its position in the config file.
type CompileError struct {
	Index int    // position in the routes list
	Name  string // route name
	Field string // "host", "path", "path_prefix", "headers", "query", "flag", "dark" or ""
	Err   error
}

func (e *CompileError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("route %d (%s): %v", e.Index+1, e.Name, e.Err)
	}
	return fmt.Sprintf("route %d (%s): %s: %v", e.Index+1, e.Name, e.Field, e.Err)
}

func (e *CompileError) Unwrap() error { return e.Err }

// Compile builds a Table from the config's routes. It fails on anything
// config validation should have rejected first (bad template, bad host,
// path and path_prefix together, contradictory header or query condition)
// and on flag conditions, which need CompileWith and a FlagMatcher.
func Compile(routes []*config.Route) (*Table, error) {
	return CompileWith(routes, Options{})
}

// CompileWith is Compile with options: a FlagMatcher for routes with a
// flag condition.
func CompileWith(routes []*config.Route, opts Options) (*Table, error) {
	t := &Table{exact: map[string]*level{}, wild: map[string]*level{}}
	for i, cr := range routes {
		if cr == nil {
			return nil, &CompileError{Index: i, Err: fmt.Errorf("empty route")}
		}
		rt, err := compileRoute(i, cr, opts)
		if err != nil {
			return nil, err
		}
		lv, err := t.levelFor(cr.Match.Host)
		if err != nil {
			return nil, &CompileError{Index: i, Name: cr.Name, Field: "host", Err: err}
		}
		lv.add(rt, &cr.Match)
		t.routes = append(t.routes, rt)
	}
	for _, lv := range t.levels() {
		lv.finish()
	}
	return t, nil
}

func compileRoute(i int, cr *config.Route, opts Options) (*Route, error) {
	m := &cr.Match
	fail := func(field string, err error) (*Route, error) {
		return nil, &CompileError{Index: i, Name: cr.Name, Field: field, Err: err}
	}
	rt := &Route{Index: i, Name: cr.Name, Endpoint: endpoint(m), methods: slices.Clone(m.Methods)}
	switch {
	case m.Path != "" && m.PathPrefix != "":
		return fail("path", fmt.Errorf("use either path or path_prefix, not both"))
	case m.PathPrefix != "" && m.PathPrefix[0] != '/':
		return fail("path_prefix", fmt.Errorf("%q must start with '/'", m.PathPrefix))
	case isTemplate(m.Path):
		segs, err := parseTemplate(m.Path)
		if err != nil {
			return fail("path", err)
		}
		rt.tmpl = segs
	case m.Path != "" && m.Path[0] != '/':
		return fail("path", fmt.Errorf("%q must start with '/'", m.Path))
	}
	var err error
	if rt.headers, err = match.Headers(m.Headers); err != nil {
		return fail("headers", err)
	}
	if rt.query, err = match.Query(m.Query); err != nil {
		return fail("query", err)
	}
	switch f := m.Flag; {
	case f != nil && opts.Flags == nil:
		return fail("flag", fmt.Errorf("flag %q: no flag evaluator (compile with CompileWith and Options.Flags)", f.Key))
	case f != nil && (f.Key == "" || f.Variant == ""):
		return fail("flag", fmt.Errorf("a flag condition needs key and variant"))
	case f != nil:
		rt.flag = &flagCond{m: opts.Flags, route: cr}
	case cr.Dark:
		return fail("dark", fmt.Errorf("a dark route needs match.flag"))
	}
	rt.Dark = cr.Dark
	rt.plain = len(rt.methods) == 0 && len(rt.headers) == 0 && len(rt.query) == 0 && rt.flag == nil
	return rt, nil
}

func endpoint(m *config.Match) string {
	switch {
	case m.Path != "":
		return m.Path
	case m.PathPrefix != "":
		return m.PathPrefix + "*"
	}
	return "*"
}

func (t *Table) levels() []*level {
	lvs := slices.Collect(maps.Values(t.exact))
	lvs = slices.AppendSeq(lvs, maps.Values(t.wild))
	if t.any != nil {
		lvs = append(lvs, t.any)
	}
	return lvs
}

// levelFor returns the level for a route's host condition, creating it.
func (t *Table) levelFor(host string) (*level, error) {
	key, wild, err := hostKey(host)
	if err != nil {
		return nil, err
	}
	m := t.exact
	switch {
	case key == "":
		if t.any == nil {
			t.any = &level{}
		}
		return t.any, nil
	case wild:
		m = t.wild
		if len(t.wild) == 0 || len(key) < t.wildMin {
			t.wildMin = len(key)
		}
		t.wildMax = max(t.wildMax, len(key))
	}
	if m[key] == nil {
		m[key] = &level{}
	}
	return m[key], nil
}

// add files rt under its path kind.
func (lv *level) add(rt *Route, m *config.Match) {
	switch {
	case rt.tmpl != nil:
		if lv.tmpl == nil {
			lv.tmpl = &tnode{}
		}
		lv.tmpl.insert(rt)
	case m.Path != "":
		if lv.exact == nil {
			lv.exact = map[string][]*Route{}
		}
		lv.exact[m.Path] = append(lv.exact[m.Path], rt)
	case m.PathPrefix != "":
		if lv.prefixes == nil {
			lv.prefixes = map[string][]*Route{}
		}
		lv.prefixes[m.PathPrefix] = append(lv.prefixes[m.PathPrefix], rt)
	default:
		lv.all = append(lv.all, rt)
	}
}

// finish builds the lookup structures that need all of the level's routes.
func (lv *level) finish() {
	if lv.prefixes != nil {
		lv.pfx = buildPrefixTrie(lv.prefixes)
		lv.prefixes = nil
	}
	if lv.tmpl != nil {
		lv.tmpl.finish()
	}
}

// Routes returns the compiled routes in config order.
func (t *Table) Routes() []*Route { return slices.Clone(t.routes) }

// Match returns the most specific route whose every condition holds, or nil.
// A dark route whose other conditions hold but whose flag turns the
// request away ends the search with nil. Match does not allocate, except
// in a FlagMatcher's evaluation of a route with a flag condition.
func (t *Table) Match(r *http.Request) *Route {
	if rt := t.match(r); rt != blocked {
		return rt
	}
	return nil
}

func (t *Table) match(r *http.Request) *Route {
	path := ""
	if r.URL != nil {
		path = r.URL.Path
	}
	// The lower-cased host lives on the stack; map lookups keyed by
	// string(buf[...]) do not copy it to the heap.
	var buf [maxHostLen]byte
	if h := lowerHost(&buf, r.Host); h != nil {
		if lv := t.exact[string(h)]; lv != nil {
			if rt := lv.match(path, r); rt != nil {
				return rt
			}
		}
		if rt := t.matchWild(h, path, r); rt != nil {
			return rt
		}
	}
	if t.any == nil {
		return nil
	}
	return t.any.match(path, r)
}

// matchWild tries the wildcard levels whose suffix ends h, longest first:
// each dot after the first byte starts a candidate suffix.
func (t *Table) matchWild(h []byte, path string, r *http.Request) *Route {
	if len(t.wild) == 0 {
		return nil
	}
	// Suffixes start after at least one byte and get shorter as i grows.
	for i := max(1, len(h)-t.wildMax); i <= len(h)-t.wildMin; i++ {
		if h[i] != '.' {
			continue
		}
		if lv := t.wild[string(h[i:])]; lv != nil {
			if rt := lv.match(path, r); rt != nil {
				return rt
			}
		}
	}
	return nil
}

// match tries the level's routes in path precedence order.
func (lv *level) match(path string, r *http.Request) *Route {
	if rs, ok := lv.exact[path]; ok {
		if rt := firstOK(rs, r); rt != nil {
			return rt
		}
	}
	if lv.tmpl != nil {
		if rt := lv.tmpl.match(path, r); rt != nil {
			return rt
		}
	}
	if lv.pfx != nil {
		if rt := lv.pfx.match(path, r); rt != nil {
			return rt
		}
	}
	return firstOK(lv.all, r)
}

// firstOK returns the first route of rs whose method, header, query and
// flag conditions hold; blocked when a dark route's flag alone fails.
func firstOK(rs []*Route, r *http.Request) *Route {
	for _, rt := range rs {
		if rt.plain {
			return rt
		}
		if !rt.conditionsHold(r) {
			continue
		}
		if rt.flag == nil || rt.flag.m.Match(r, rt.flag.route) {
			return rt
		}
		if rt.Dark {
			return blocked
		}
	}
	return nil
}

func (rt *Route) conditionsHold(r *http.Request) bool {
	if len(rt.methods) > 0 && !methodOK(rt.methods, r.Method) {
		return false
	}
	return match.HeadersHold(rt.headers, r) && match.QueryHolds(rt.query, r)
}

func methodOK(methods []string, m string) bool {
	if m == "" {
		m = http.MethodGet // net/http's client reading of an empty method
	}
	return slices.Contains(methods, m)
}

// Params returns the template parameters of path for a template route:
// name to value, "*" for "{*}". It returns nil when the route has no
// template or path does not fit it.
func (rt *Route) Params(path string) map[string]string {
	if rt.tmpl == nil {
		return nil
	}
	params := map[string]string{}
	for _, s := range rt.tmpl {
		if path == "" || path[0] != '/' {
			return nil
		}
		path = path[1:]
		if s.kind == segRest {
			params[s.text] = path
			return params
		}
		seg, tail := cutSegment(path)
		if s.kind == segLit && seg != s.text || s.kind == segParam && seg == "" {
			return nil
		}
		if s.kind == segParam {
			params[s.text] = seg
		}
		path = tail
	}
	if path != "" {
		return nil
	}
	return params
}

// cutSegment splits s (the path after a slash) into its first segment and
// the remainder, which is empty or starts with '/'.
func cutSegment(s string) (seg, tail string) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}
