package flags

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/bucket"
	"github.com/umbragw/umbra/internal/config"
)

func req(headers map[string]string, rawQuery string) *http.Request {
	r := &http.Request{Method: "GET", Host: "example.com", URL: &url.URL{Path: "/", RawQuery: rawQuery}, Header: http.Header{}, RemoteAddr: "192.0.2.7:5555"}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func flagRoute(attrs map[string]string) *config.Route {
	rt := &config.Route{Name: "geo", Key: "header:X-User-ID", KeySource: config.KeySource{Kind: "header", Name: "X-User-ID"}, FlagContext: attrs}
	rt.FlagAttrs = parseAttrs(attrs)
	rt.Match.Flag = &config.FlagMatch{Key: "new-ui", Variant: "on"}
	return rt
}

func TestContext(t *testing.T) {
	rt := flagRoute(map[string]string{"plan": "header:X-Plan", "country": "query:country", "ip": "client_ip", "zone": "cookie:zone"})
	got := Context(req(map[string]string{"X-User-ID": "u1", "X-Plan": "pro"}, "country=de&x=1"), rt)
	want := map[string]any{TargetingKey: "u1", "plan": "pro", "country": "de", "ip": "192.0.2.7"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("context %v, want %v", got, want)
	}
	// missing sources are left out, targetingKey too
	got = Context(req(nil, ""), rt)
	if !reflect.DeepEqual(got, map[string]any{"ip": "192.0.2.7"}) {
		t.Errorf("context %v", got)
	}
	// an unvalidated route (FlagAttrs not filled) gives the same context
	raw := *rt
	raw.FlagAttrs = nil
	r := req(map[string]string{"X-User-ID": "u1", "X-Plan": "pro"}, "country=de")
	if a, b := Context(r, rt), Context(r, &raw); !reflect.DeepEqual(a, b) {
		t.Errorf("validated %v, raw %v", a, b)
	}
}

// requestAttrs (the allocation-free path) must build the same context as
// Context, sorted.
func TestRequestAttrsMatchContext(t *testing.T) {
	for _, attrs := range []map[string]string{
		nil,
		{"plan": "header:X-Plan"},
		{"a": "header:X-Plan", "zz": "query:country"},
		{"targetingKeyX": "header:X-Plan", "targetingKea": "query:country"},
	} {
		rt := flagRoute(attrs)
		for _, r := range []*http.Request{
			req(map[string]string{"X-User-ID": "u1", "X-Plan": "pro"}, "country=de"),
			req(map[string]string{"X-Plan": "pro"}, ""),
			req(nil, "country=fr"),
		} {
			kvs := requestAttrs(r, rt, nil)
			m := map[string]any{}
			for i, a := range kvs {
				if i > 0 && kvs[i-1].name >= a.name {
					t.Errorf("attrs not sorted: %v", kvs)
				}
				m[a.name] = a.value
			}
			if want := Context(r, rt); !reflect.DeepEqual(m, want) {
				t.Errorf("attrs %v, context %v", m, want)
			}
		}
	}
}

func TestMatcher(t *testing.T) {
	e := loaded(t)
	rt := flagRoute(map[string]string{"plan": "header:X-Plan"})
	m := Matcher{E: e}
	if !m.Match(req(map[string]string{"X-Plan": "pro"}, ""), rt) {
		t.Error("pro caller not matched")
	}
	if m.Match(req(map[string]string{"X-Plan": "free"}, ""), rt) {
		t.Error("free caller matched")
	}
	plain := &config.Route{Name: "plain"}
	if !m.Match(req(nil, ""), plain) {
		t.Error("route without a flag condition")
	}
	rt.Match.Flag = &config.FlagMatch{Key: "retired", Variant: "off"}
	if m.Match(req(nil, ""), rt) {
		t.Error("disabled flag matched")
	}
	rt.Match.Flag = &config.FlagMatch{Key: "nope", Variant: "on"}
	if m.Match(req(nil, ""), rt) || (Matcher{}).Match(req(nil, ""), rt) {
		t.Error("unknown flag or no evaluator matched")
	}
}

func TestForwardHeader(t *testing.T) {
	e := loaded(t)
	ctx := map[string]any{"plan": "pro", "version": "3.0.0"}
	if got := ForwardHeader(e, []string{"new-ui", "retired", "checkout-version", "nope", "code-default", "banner"}, ctx); got != "new-ui=on,checkout-version=new,banner=blue" {
		t.Errorf("header %q", got)
	}
	if got := ForwardHeader(e, nil, ctx); got != "" {
		t.Errorf("no keys: %q", got)
	}
	if got := ForwardHeader(nil, []string{"a"}, ctx); got != "" {
		t.Errorf("no evaluator: %q", got)
	}
	rt := flagRoute(map[string]string{"plan": "header:X-Plan"})
	rt.ForwardFlags = []string{"new-ui", "geo-report"}
	r := req(map[string]string{"X-Plan": "pro", "X-User-ID": "u7"}, "")
	want := "new-ui=on,geo-report=" + e.Variant("geo-report", map[string]any{TargetingKey: "u7"})
	if got := ForwardHeaderFor(e, r, rt); got != want {
		t.Errorf("ForwardHeaderFor %q, want %q", got, want)
	}
	var b strings.Builder
	escape(&b, "a b,c=d/é~")
	if b.String() != "a%20b%2Cc%3Dd%2F%C3%A9~" {
		t.Errorf("escape %q", b.String())
	}
}

func TestRefsOfRoutes(t *testing.T) {
	rt := flagRoute(nil)
	rt.ForwardFlags = []string{"a", "b"}
	got := Refs([]*config.Route{nil, rt, {Name: "plain"}})
	want := []Ref{{Key: "new-ui", Variant: "on", Route: "geo", Index: 1, Field: "match.flag"}, {Key: "a", Route: "geo", Index: 1, Field: "forward_flags"}, {Key: "b", Route: "geo", Index: 1, Field: "forward_flags"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("refs %+v", got)
	}
}

func TestSourceValueIsBucketKey(t *testing.T) {
	r := req(map[string]string{"X-User-Id": "u1", "Content-Type": "x", "X-Empty": ""}, "q=1")
	r.Header["nonCanonical"] = []string{"raw"}
	for _, name := range []string{"X-User-ID", "x-user-id", "X-USER-ID", "content-type", "X-Empty", "X-Missing", "nonCanonical", "bad name", "a_b", "X-1-x"} {
		src := config.KeySource{Kind: "header", Name: name}
		v1, ok1 := sourceValue(r, src)
		v2, ok2 := bucket.Key(r, src)
		if v1 != v2 || ok1 != ok2 {
			t.Errorf("%q: %q %v, bucket.Key %q %v", name, v1, ok1, v2, ok2)
		}
	}
	if c, ok := canonicalHeader(nil, "x-user-id"); !ok || string(c) != http.CanonicalHeaderKey("x-user-id") {
		t.Errorf("canonical %q", c)
	}
}
