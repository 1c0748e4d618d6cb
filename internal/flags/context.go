package flags

import (
	"net/http"
	"sort"
	"strings"

	"github.com/umbragw/umbra/internal/bucket"
	"github.com/umbragw/umbra/internal/config"
)

// Context builds the evaluation context of a request on a route:
// "targetingKey" is the caller's key read as routes[].key says (absent
// when the route has no key or the request does not carry it), and each
// routes[].flag_context attribute holds the request value its source
// names (absent when the request lacks it). Values are strings.
//
// The router's flag condition, X-Umbra-Flags and anything else that
// evaluates flags for a request use this one function, so they agree
// with each other and with an OFREP client that sends the same
// targetingKey and attributes.
func Context(r *http.Request, route *config.Route) map[string]any {
	attrs := route.FlagAttrs
	if attrs == nil && len(route.FlagContext) > 0 {
		attrs = parseAttrs(route.FlagContext) // a config that skipped validation
	}
	ctx := make(map[string]any, 1+len(attrs))
	if k, ok := bucket.Key(r, route.KeySource); ok {
		ctx[TargetingKey] = k
	}
	for _, a := range attrs {
		if v, ok := bucket.Key(r, a.Source); ok {
			ctx[a.Name] = v
		}
	}
	return ctx
}

func parseAttrs(m map[string]string) []config.ContextAttr {
	var attrs []config.ContextAttr
	for name, src := range m {
		if ks, ok := config.ParseKey(src); ok && name != TargetingKey {
			attrs = append(attrs, config.ContextAttr{Name: name, Source: ks})
		}
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].Name < attrs[j].Name })
	return attrs
}

// Matcher is the router's flag condition: a route with match.flag
// matches when the flag evaluates to the configured variant for the
// request's Context. It implements router.FlagMatcher.
type Matcher struct{ E *Evaluator }

// Match reports whether route's flag condition holds for r. A route
// without a flag condition always holds; an unknown flag, a failed or
// disabled evaluation never does.
func (m Matcher) Match(r *http.Request, route *config.Route) bool {
	f := route.Match.Flag
	if f == nil {
		return true
	}
	if m.E == nil || f.Variant == "" {
		return false
	}
	return routeVariant(m.E.cur.Load(), f.Key, r, route) == f.Variant
}

// routeVariant evaluates key in flag set s with the request's Context,
// building the context map only when the result is not cached.
func routeVariant(s *snapshot, key string, r *http.Request, route *config.Route) string {
	if route.FlagAttrs == nil && len(route.FlagContext) > 0 || len(route.FlagAttrs) >= maxCachedAttrs {
		return s.variant(key, Context(r, route))
	}
	var buf [maxCachedAttrs]kv
	return s.variantAttrs(key, requestAttrs(r, route, buf[:0]))
}

// requestAttrs is Context as attributes sorted by name (FlagAttrs is
// sorted by validation; targetingKey is merged in at its place).
func requestAttrs(r *http.Request, route *config.Route, attrs []kv) []kv {
	tk, hasTK := sourceValue(r, route.KeySource)
	for _, a := range route.FlagAttrs {
		if hasTK && a.Name > TargetingKey {
			attrs, hasTK = append(attrs, kv{TargetingKey, tk}), false
		}
		if v, ok := sourceValue(r, a.Source); ok {
			attrs = append(attrs, kv{a.Name, v})
		}
	}
	if hasTK {
		attrs = append(attrs, kv{TargetingKey, tk})
	}
	return attrs
}

// sourceValue is bucket.Key without its allocation for header names not
// written in canonical form ("X-User-ID"): the canonical name is built
// on the stack.
func sourceValue(r *http.Request, src config.KeySource) (string, bool) {
	if src.Kind != "header" || len(src.Name) > 64 {
		return bucket.Key(r, src)
	}
	var buf [64]byte
	name, ok := canonicalHeader(buf[:0], src.Name)
	if !ok {
		return bucket.Key(r, src)
	}
	if v := r.Header[string(name)]; len(v) > 0 && v[0] != "" {
		return v[0], true
	}
	return "", false
}

// canonicalHeader appends textproto's canonical form of a header name
// made of token characters; ok is false for other names, which
// textproto leaves as they are.
func canonicalHeader(dst []byte, name string) ([]byte, bool) {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
			if upper {
				c -= 'a' - 'A'
			}
		case 'A' <= c && c <= 'Z':
			if !upper {
				c += 'a' - 'A'
			}
		case tokenChar[c]:
		default:
			return nil, false
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst, len(name) > 0
}

// tokenChar marks the digits and punctuation allowed in header names.
var tokenChar = func() (t [256]bool) {
	for _, c := range "0123456789!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// HeaderName is the upstream request header carrying forwarded flags.
const HeaderName = "X-Umbra-Flags"

// ForwardHeader evaluates keys for ctx and renders them for the
// X-Umbra-Flags header: "geo-report=on,new-ui=off", in the order given.
// A flag without a variant (unknown, failed, disabled, deferring to the
// code default) is left out; "" means nothing to send. Characters
// outside [A-Za-z0-9._~-] in keys and variants are %-escaped, so ',' and
// '=' always separate.
func ForwardHeader(e *Evaluator, keys []string, ctx map[string]any) string {
	if e == nil || len(keys) == 0 {
		return ""
	}
	set := e.cur.Load() // one flag set for the whole header
	var b strings.Builder
	for _, k := range keys {
		appendForward(&b, k, set.variant(k, ctx))
	}
	return b.String()
}

// ForwardHeaderFor is ForwardHeader for a request on a route, with the
// request's Context; on cached evaluations it builds no context map.
func ForwardHeaderFor(e *Evaluator, r *http.Request, route *config.Route) string {
	if e == nil || len(route.ForwardFlags) == 0 {
		return ""
	}
	// One flag set for the whole header: a flag file swapped half way
	// must not give a request variants from two versions.
	set := e.cur.Load()
	var b strings.Builder
	for _, k := range route.ForwardFlags {
		appendForward(&b, k, routeVariant(set, k, r, route))
	}
	return b.String()
}

func appendForward(b *strings.Builder, key, variant string) {
	if variant == "" {
		return
	}
	if b.Len() > 0 {
		b.WriteByte(',')
	}
	escape(b, key)
	b.WriteByte('=')
	escape(b, variant)
}

func escape(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
}

// Refs lists the flags the routes rely on: match.flag (key and variant)
// and forward_flags (key only). Pass them to Evaluator.Check when
// compiling a config and to Evaluator.Require when committing it.
func Refs(routes []*config.Route) []Ref {
	var refs []Ref
	for i, r := range routes {
		if r == nil {
			continue
		}
		if f := r.Match.Flag; f != nil {
			refs = append(refs, Ref{Key: f.Key, Variant: f.Variant, Route: r.Name, Index: i, Field: "match.flag"})
		}
		for _, k := range r.ForwardFlags {
			refs = append(refs, Ref{Key: k, Route: r.Name, Index: i, Field: "forward_flags"})
		}
	}
	return refs
}
