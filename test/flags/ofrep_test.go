package flagstest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/umbragw/umbra/test/testkit"
)

const bulkFlags = `{"flags": {
  "banner": {"state": "ENABLED", "variants": {"red": {"color": "#f00"}, "blue": {"color": "#00f"}}, "defaultVariant": "blue"},
  "geo-report": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"fractional": [["on", 30], ["off", 70]]}},
  "tier": {"state": "ENABLED", "variants": {"gold": "gold", "standard": "standard"}, "defaultVariant": "standard",
    "targeting": {"if": [{"in": [{"var": "targetingKey"}, ["alice"]]}, "gold", null]}}
}}`

// The bulk evaluation carries an ETag; the same request with
// If-None-Match gets 304 until the flag file changes, when the file watch
// (no config reload) swaps the new flags in and the request gets 200 with
// the new answer and a new ETag.
func TestBulkETagAcrossFlagFileEdit(t *testing.T) {
	ups := upstreams(t)
	e := start(t, backendsYAML+`flags: {file: DIR/flags.json}
routes:
  - {name: rest, backend: v1}
`, bulkFlags, ups)
	bulkURL := e.URL + "/ofrep/v1/evaluate/flags"
	body := evalBody("targetingKey", "alice")
	bulk := func(hdr ...string) testkit.Response {
		t.Helper()
		r, err := ofrepPost(e.C, bulkURL, body, hdr...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	first := bulk()
	etag := first.Header.Get("ETag")
	if first.Status != 200 || etag == "" || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("bulk: %d ETag %q: %s", first.Status, etag, first.Body)
	}
	got := testkit.Decode[bulkAnswer](t, first.Body)
	want := map[string]string{"banner": "blue", "geo-report": "", "tier": "gold"}
	if len(got.Flags) != 3 {
		t.Fatalf("bulk answer: %s", first.Body)
	}
	for _, f := range got.Flags {
		if w, ok := want[f.Key]; !ok || (w != "" && f.Variant != w) || f.ErrorCode != "" {
			t.Errorf("bulk flag %+v", f)
		}
	}
	if again := bulk(); again.Header.Get("ETag") != etag || string(again.Body) != string(first.Body) {
		t.Errorf("the same request gave ETag %q (was %q)", again.Header.Get("ETag"), etag)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		if r := bulk("If-None-Match", inm); r.Status != http.StatusNotModified || len(r.Body) != 0 || r.Header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d ETag %q body %q, want 304 with the ETag", inm, r.Status, r.Header.Get("ETag"), r.Body)
		}
	}
	if r := bulk("If-None-Match", `"stale"`); r.Status != 200 || r.Header.Get("ETag") != etag {
		t.Errorf("If-None-Match with another tag: %d", r.Status)
	}
	// Another caller's answer differs, and so does its tag.
	if r, _ := ofrepPost(e.C, bulkURL, evalBody("targetingKey", "bob"), "If-None-Match", etag); r.Status != 200 || r.Header.Get("ETag") == etag {
		t.Errorf("another context with alice's tag: %d ETag %q", r.Status, r.Header.Get("ETag"))
	}

	before := e.flagsInfo(t)
	edited := strings.Replace(bulkFlags, `"defaultVariant": "blue"`, `"defaultVariant": "red"`, 1)
	testkit.WriteAtomic(t, e.Flags, edited)
	after := e.waitFlags(t, edited)
	if after.Version <= before.Version {
		t.Errorf("flag set version %d after the edit, was %d", after.Version, before.Version)
	}
	r := bulk("If-None-Match", etag)
	newTag := r.Header.Get("ETag")
	if r.Status != 200 || newTag == "" || newTag == etag {
		t.Fatalf("after the edit: %d ETag %q (old %q): %s", r.Status, newTag, etag, r.Body)
	}
	for _, f := range testkit.Decode[bulkAnswer](t, r.Body).Flags {
		if f.Key == "banner" && (f.Variant != "red" || f.Value.(map[string]any)["color"] != "#f00") {
			t.Errorf("banner after the edit: %+v", f)
		}
	}
	if r := bulk("If-None-Match", newTag); r.Status != http.StatusNotModified {
		t.Errorf("If-None-Match with the new tag: %d", r.Status)
	}
	// The log line follows the swap: wait for it.
	testkit.Wait.UntilTrue(t, "the reload's log line", func() bool { return len(e.Log.Lines("flags reloaded")) > 0 })
	if n := len(e.Log.Lines("flags reloaded")); n != 1 {
		t.Errorf("%d \"flags reloaded\" log lines, want 1", n)
	}
}

const errorFlags = `{"flags": {
  "geo-report": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"fractional": [["on", 30], ["off", 70]]}},
  "vip": {"state": "ENABLED", "variants": {"yes": true, "no": false}, "defaultVariant": "no",
    "targeting": {"if": [{"==": [{"var": "targetingKey"}, "alice"]}, "yes", "no"]}},
  "banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "blue"},
  "vip-ref": {"state": "ENABLED", "variants": {"yes": true, "no": false}, "defaultVariant": "no",
    "targeting": {"if": [{"$ref": "is-alice"}, "yes", "no"]}},
  "by-email": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"fractional": [{"var": "email"}, ["on", 50], ["off", 50]]}}
},
"$evaluators": {"is-alice": {"==": [{"var": "targetingKey"}, "alice"]}}
}`

// Every OFREP error through the running gateway: authentication (401,
// 403), FLAG_NOT_FOUND, PARSE_ERROR, INVALID_CONTEXT,
// TARGETING_KEY_MISSING, 405 and 413, CORS preflights allowed for the
// configured origin and refused for another, and the SDK's view of them.
func TestOFREPErrorsThroughGateway(t *testing.T) {
	ups := upstreams(t)
	e := start(t, backendsYAML+`flags:
  file: DIR/flags.json
  ofrep:
    cors_origins: ["https://app.example.com"]
    require_targeting_key: true
    auth: {api_keys_file: DIR/ofrep.keys}
routes:
  - {name: rest, backend: v1}
`, errorFlags, ups, "ofrep.keys", "# OFREP clients\nfrontend k-front-123\nk-bare-456\n")
	single := e.URL + "/ofrep/v1/evaluate/flags/"
	key := []string{"X-API-Key", "k-front-123"}

	type tc struct {
		name, url, method, body string
		hdr                     []string
		status                  int
		code                    string // errorCode, "" for none
	}
	withKey := func(h ...string) []string { return append(append([]string{}, key...), h...) }
	cases := []tc{
		{"no credential", single + "banner", "POST", `{}`, nil, 401, ""},
		{"unknown API key", single + "banner", "POST", `{}`, []string{"X-API-Key", "nope"}, 403, ""},
		{"unknown bearer", single + "banner", "POST", `{}`, []string{"Authorization", "Bearer nope"}, 403, ""},
		{"API key", single + "banner", "POST", `{}`, key, 200, ""},
		{"API key as bearer", single + "banner", "POST", `{}`, []string{"Authorization", "Bearer k-bare-456"}, 200, ""},
		{"unknown flag", single + "nope", "POST", `{"context": {"targetingKey": "u"}}`, withKey(), 404, "FLAG_NOT_FOUND"},
		{"malformed JSON", single + "banner", "POST", `{"context": {`, withKey(), 400, "PARSE_ERROR"},
		{"two JSON values", single + "banner", "POST", `{} {}`, withKey(), 400, "PARSE_ERROR"},
		{"malformed JSON, bulk", e.URL + "/ofrep/v1/evaluate/flags", "POST", `{"context"`, withKey(), 400, "PARSE_ERROR"},
		{"context is an array", single + "banner", "POST", `{"context": [1, 2]}`, withKey(), 400, "INVALID_CONTEXT"},
		{"context is a string", single + "banner", "POST", `{"context": "alice"}`, withKey(), 400, "INVALID_CONTEXT"},
		{"targetingKey not a string", single + "vip", "POST", `{"context": {"targetingKey": 42}}`, withKey(), 400, "INVALID_CONTEXT"},
		{"context not an object, bulk", e.URL + "/ofrep/v1/evaluate/flags", "POST", `{"context": 1}`, withKey(), 400, "INVALID_CONTEXT"},
		{"fractional without targeting key", single + "geo-report", "POST", `{"context": {"plan": "pro"}}`, withKey(), 400, "TARGETING_KEY_MISSING"},
		{"rule on targeting key without it", single + "vip", "POST", `{}`, withKey(), 400, "TARGETING_KEY_MISSING"},
		{"empty targeting key", single + "vip", "POST", `{"context": {"targetingKey": ""}}`, withKey(), 400, "TARGETING_KEY_MISSING"},
		{"targeting key read through $ref", single + "vip-ref", "POST", `{"context": {}}`, withKey(), 400, "TARGETING_KEY_MISSING"},
		{"fractional on its own bucketing value", single + "by-email", "POST", `{"context": {"email": "a@example.com"}}`, withKey(), 200, ""},
		{"static flag without targeting key", single + "banner", "POST", ``, withKey(), 200, ""},
		{"fractional with targeting key", single + "geo-report", "POST", `{"context": {"targetingKey": "u1"}}`, withKey(), 200, ""},
		{"GET", single + "banner", "GET", ``, withKey(), 405, ""},
		{"body over 1 MiB", single + "banner", "POST", `{"context": {"pad": "` + strings.Repeat("x", 1<<20) + `"}}`, withKey(), 413, ""},
		{"no such OFREP path", e.URL + "/ofrep/v2/whatever", "POST", `{}`, withKey(), 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testkit.Do(t, e.C, c.method, c.url, strings.NewReader(c.body), append([]string{"Content-Type", "application/json"}, c.hdr...)...)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if r.Header.Get("X-Backend") != "" {
				t.Errorf("an OFREP request reached backend %s", r.Header.Get("X-Backend"))
			}
			a := testkit.Decode[ofrepAnswer](t, r.Body)
			if a.ErrorCode != c.code {
				t.Errorf("errorCode %q, want %q: %s", a.ErrorCode, c.code, r.Body)
			}
			if c.code != "" && a.ErrorDetails == "" {
				t.Errorf("no errorDetails: %s", r.Body)
			}
			if c.code != "" && !strings.HasSuffix(c.url, "/flags") && a.Key != c.url[strings.LastIndex(c.url, "/")+1:] {
				t.Errorf("key %q in %s", a.Key, r.Body)
			}
			if c.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", r.Header)
			}
			if c.status == 405 && r.Header.Get("Allow") != "POST, OPTIONS" {
				t.Errorf("405 Allow %q", r.Header.Get("Allow"))
			}
		})
	}

	// Bulk with require_targeting_key and no key: per-flag errors for the
	// flags that read the key, answers for the others.
	r := testkit.Do(t, e.C, "POST", e.URL+"/ofrep/v1/evaluate/flags", strings.NewReader(`{"context": {}}`), withKey()...)
	if r.Status != 200 {
		t.Fatalf("bulk without targeting key: %d %s", r.Status, r.Body)
	}
	for _, f := range testkit.Decode[bulkAnswer](t, r.Body).Flags {
		wantErr := f.Key == "geo-report" || f.Key == "vip" || f.Key == "vip-ref"
		if (f.ErrorCode == "TARGETING_KEY_MISSING") != wantErr || (f.Key == "banner" && f.Variant != "blue") {
			t.Errorf("bulk without targeting key: %+v", f)
		}
	}

	t.Run("CORS", func(t *testing.T) {
		preflight := func(origin, method string) testkit.Response {
			return testkit.Do(t, e.C, "OPTIONS", single+"geo-report", nil,
				"Origin", origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", "content-type, x-api-key")
		}
		ok := preflight("https://app.example.com", "POST") // no credential: preflights need none
		if ok.Status != http.StatusNoContent || ok.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			!strings.Contains(ok.Header.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(ok.Header.Get("Access-Control-Allow-Headers"), "X-API-Key") ||
			!strings.Contains(ok.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
			t.Errorf("allowed origin's preflight: %d %v", ok.Status, ok.Header)
		}
		for _, p := range []testkit.Response{preflight("https://evil.example.com", "POST"), preflight("https://app.example.com.evil.org", "POST")} {
			if p.Status != http.StatusForbidden || p.Header.Get("Access-Control-Allow-Origin") != "" || p.Header.Get("Access-Control-Allow-Methods") != "" {
				t.Errorf("other origin's preflight: %d %v", p.Status, p.Header)
			}
		}
		if p := preflight("https://app.example.com", "DELETE"); p.Status != http.StatusForbidden {
			t.Errorf("preflight for DELETE: %d", p.Status)
		}
		// The evaluation itself: the allowed origin may read the answer
		// and its ETag; another origin's answer carries no CORS headers.
		r := testkit.Do(t, e.C, "POST", e.URL+"/ofrep/v1/evaluate/flags", strings.NewReader(`{"context": {"targetingKey": "u"}}`),
			withKey("Origin", "https://app.example.com")...)
		if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			!strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "ETag") || !strings.Contains(r.Header.Get("Vary"), "Origin") {
			t.Errorf("allowed origin's evaluation: %d %v", r.Status, r.Header)
		}
		r = testkit.Do(t, e.C, "POST", single+"banner", strings.NewReader(`{}`), withKey("Origin", "https://evil.example.com")...)
		if r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("other origin's evaluation carries CORS headers: %v", r.Header)
		}
	})

	t.Run("SDK", func(t *testing.T) {
		ctx := context.Background()
		anon := sdkClient(t, e)
		d, err := anon.BooleanValueDetails(ctx, "vip", false, openfeature.NewEvaluationContext("alice", nil))
		if err == nil || d.ErrorCode != openfeature.GeneralCode || d.Value {
			t.Errorf("SDK without a key: %+v %v", d, err)
		}
		keyed := sdkClient(t, e, ofrep.WithApiKeyAuth("k-front-123"))
		if d, err := keyed.BooleanValueDetails(ctx, "vip", false, openfeature.NewEvaluationContext("alice", nil)); err != nil || !d.Value || d.Variant != "yes" {
			t.Errorf("SDK with a key: %+v %v", d, err)
		}
		if d, err := keyed.BooleanValueDetails(ctx, "geo-report", true, openfeature.NewEvaluationContext("", nil)); err == nil ||
			d.ErrorCode != openfeature.TargetingKeyMissingCode || !d.Value {
			t.Errorf("SDK without targeting key: %+v %v", d, err)
		}
		if d, err := keyed.BooleanValueDetails(ctx, "missing", true, openfeature.NewEvaluationContext("u", nil)); err == nil || d.ErrorCode != openfeature.FlagNotFoundCode {
			t.Errorf("SDK, unknown flag: %+v %v", d, err)
		}
		bearer := sdkClient(t, e, ofrep.WithBearerToken("k-bare-456"))
		if d, err := bearer.StringValueDetails(ctx, "banner", "", openfeature.NewEvaluationContext("u", nil)); err != nil || d.Value != "blue" {
			t.Errorf("SDK with a bearer token: %+v %v", d, err)
		}
	})

	// Paths beside the prefix are routes, not OFREP.
	if r := e.get(t, "/ofrepx/v1/evaluate/flags"); servedBy(r) != "v1" {
		t.Errorf("/ofrepx went to %s, want the catch-all route", servedBy(r))
	}
	if hits := ups["v1"].Hits.Load(); hits != 1 {
		t.Errorf("v1 got %d requests, want 1 (only /ofrepx)", hits)
	}
}

// OFREP under a custom prefix: a standard provider is given what comes
// before "/ofrep"; "/ofrep" itself is then an ordinary path that routes.
// With ofrep.enabled: false the flags still route but nothing answers
// OFREP.
func TestOFREPPrefixAndDisabled(t *testing.T) {
	ups := upstreams(t)
	e := start(t, backendsYAML+`flags: {file: DIR/flags.json, ofrep: {path_prefix: /edge/ofrep}}
routes:
  - {name: rest, backend: v1}
`, bulkFlags, ups)
	client := sdkClient(t, e, ofrep.WithBaseURI(e.URL+"/edge"))
	if d, err := client.StringValueDetails(context.Background(), "tier", "", openfeature.NewEvaluationContext("alice", nil)); err != nil || d.Value != "gold" {
		t.Errorf("SDK under /edge/ofrep: %+v %v", d, err)
	}
	if r, _ := ofrepPost(e.C, e.URL+"/ofrep/v1/evaluate/flags/tier", `{}`); servedBy(r) != "v1" {
		t.Errorf("/ofrep with the endpoint at /edge/ofrep: %s, want the catch-all route", servedBy(r))
	}
	if r, _ := ofrepPost(e.C, e.URL+"/edge/ofrep", `{}`); r.Status != 404 || r.Header.Get("X-Backend") != "" {
		t.Errorf("the bare prefix: %d %s, want OFREP's 404", r.Status, r.Header.Get("X-Backend"))
	}

	off := start(t, backendsYAML+`flags: {file: DIR/flags.json, ofrep: {enabled: false}}
routes:
  - name: gold
    match: {path: /gold, flag: {key: tier, variant: gold}}
    backend: v2
    key: "header:X-User-ID"
  - {name: rest, backend: v1}
`, bulkFlags, ups)
	if r, _ := ofrepPost(off.C, off.URL+"/ofrep/v1/evaluate/flags/tier", `{}`); servedBy(r) != "v1" {
		t.Errorf("OFREP disabled: /ofrep went to %s, want the catch-all route", servedBy(r))
	}
	if got := servedBy(off.get(t, "/gold", "X-User-ID", "alice")); got != "v2" {
		t.Errorf("OFREP disabled: alice's /gold went to %s, want v2 (flags still route)", got)
	}
}
