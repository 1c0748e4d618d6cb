package flags

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/config"
)

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	return m
}

func do(h http.Handler, method, path, body string, headers ...string) answer {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return answer{w.Code, w.Header(), w.Body.String()}
}

func TestOFREPSingle(t *testing.T) {
	h := NewHandler(loaded(t), HandlerOptions{})
	for _, c := range []struct {
		name, path, body string
		status           int
		want             string // exact JSON body
	}{
		{"targeting", "/ofrep/v1/evaluate/flags/new-ui", `{"context": {"targetingKey": "u1", "plan": "pro"}}`, 200,
			`{"key":"new-ui","value":true,"reason":"TARGETING_MATCH","variant":"on","metadata":{}}`},
		{"false value kept", "/ofrep/v1/evaluate/flags/new-ui", `{"context": {"plan": "free"}}`, 200,
			`{"key":"new-ui","value":false,"reason":"TARGETING_MATCH","variant":"off","metadata":{}}`},
		{"static object", "/ofrep/v1/evaluate/flags/banner", `{}`, 200,
			`{"key":"banner","value":{"color":"#00f"},"reason":"STATIC","variant":"blue","metadata":{}}`},
		{"metadata", "/ofrep/v1/evaluate/flags/geo-report", `{"context": {}}`, 200,
			`{"key":"geo-report","value":false,"reason":"DEFAULT","variant":"off","metadata":{"owner":"shortlinks"}}`},
		{"disabled", "/ofrep/v1/evaluate/flags/retired", ``, 200,
			`{"key":"retired","reason":"DISABLED","metadata":{}}`},
		{"code default", "/ofrep/v1/evaluate/flags/code-default", `{"context": null}`, 200,
			`{"key":"code-default","reason":"DEFAULT","metadata":{}}`},
		{"not found", "/ofrep/v1/evaluate/flags/nope", `{"context": {}}`, 404,
			`{"key":"nope","errorCode":"FLAG_NOT_FOUND","errorDetails":"flag ` + "`nope`" + ` does not exist","metadata":{}}`},
		{"parse error", "/ofrep/v1/evaluate/flags/new-ui", `{"context": {`, 400, ""},
		{"two values", "/ofrep/v1/evaluate/flags/new-ui", `{} {}`, 400, ""},
		{"context not object", "/ofrep/v1/evaluate/flags/new-ui", `{"context": [1]}`, 400,
			`{"key":"new-ui","errorCode":"INVALID_CONTEXT","errorDetails":"context must be a JSON object","metadata":{}}`},
		{"targetingKey not string", "/ofrep/v1/evaluate/flags/new-ui", `{"context": {"targetingKey": 7}}`, 400,
			`{"key":"new-ui","errorCode":"INVALID_CONTEXT","errorDetails":"context.targetingKey must be a string","metadata":{}}`},
		// flagd's behaviour: no targeting key is no error
		{"no targeting key", "/ofrep/v1/evaluate/flags/geo-report", `{"context": {}}`, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := do(h, "POST", c.path, c.body)
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if c.want != "" && strings.TrimSpace(a.body) != c.want {
				t.Errorf("body\n %s\nwant\n %s", a.body, c.want)
			}
			if c.status == 400 && c.want == "" {
				if m := a.json(t); m["errorCode"] != "PARSE_ERROR" || m["key"] != "new-ui" || m["errorDetails"] == "" {
					t.Errorf("parse error body %v", m)
				}
			}
		})
	}
}

func TestOFREPTargetingKeyMissing(t *testing.T) {
	h := NewHandler(loaded(t), HandlerOptions{RequireTargetingKey: true})
	a := do(h, "POST", "/ofrep/v1/evaluate/flags/geo-report", `{"context": {"plan": "pro"}}`)
	if m := a.json(t); a.status != 400 || m["errorCode"] != "TARGETING_KEY_MISSING" || m["key"] != "geo-report" {
		t.Errorf("%d %v", a.status, m)
	}
	// flags that do not read the targeting key still evaluate
	if a := do(h, "POST", "/ofrep/v1/evaluate/flags/new-ui", `{"context": {"plan": "pro"}}`); a.status != 200 {
		t.Errorf("new-ui: %d %s", a.status, a.body)
	}
	if a := do(h, "POST", "/ofrep/v1/evaluate/flags/geo-report", `{"context": {"targetingKey": "u1"}}`); a.status != 200 {
		t.Errorf("with key: %d %s", a.status, a.body)
	}
	// bulk: an error item in the list
	a = do(h, "POST", "/ofrep/v1/evaluate/flags", `{"context": {}}`)
	var bulk struct{ Flags []map[string]any }
	if err := json.Unmarshal([]byte(a.body), &bulk); err != nil || a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	for _, f := range bulk.Flags {
		if (f["key"] == "geo-report") != (f["errorCode"] == "TARGETING_KEY_MISSING") {
			t.Errorf("bulk item %v", f)
		}
	}
}

func TestOFREPBulkETag(t *testing.T) {
	e := loaded(t)
	h := NewHandler(e, HandlerOptions{PathPrefix: "/flags/ofrep"})
	body := `{"context": {"targetingKey": "u1", "plan": "pro"}}`
	a := do(h, "POST", "/flags/ofrep/v1/evaluate/flags", body)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var bulk struct {
		Flags []map[string]any `json:"flags"`
	}
	if err := json.Unmarshal([]byte(a.body), &bulk); err != nil || len(bulk.Flags) != 6 {
		t.Fatalf("bulk %s: %v", a.body, err)
	}
	if bulk.Flags[0]["key"] != "banner" || bulk.Flags[5]["key"] != "retired" || bulk.Flags[5]["reason"] != "DISABLED" {
		t.Errorf("bulk items %v", bulk.Flags)
	}
	etag := a.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q", etag)
	}
	// nothing changed: 304 without a body, for the exact, weak and listed forms
	for _, inm := range []string{etag, "W/" + etag, `"x", ` + etag, "*"} {
		a2 := do(h, "POST", "/flags/ofrep/v1/evaluate/flags", body, "If-None-Match", inm)
		if a2.status != 304 || a2.body != "" || a2.header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d %q etag %q", inm, a2.status, a2.body, a2.header.Get("ETag"))
		}
	}
	// the trailing-slash form is the bulk endpoint too (as in flagd)
	if a2 := do(h, "POST", "/flags/ofrep/v1/evaluate/flags/", body, "If-None-Match", etag); a2.status != 304 {
		t.Errorf("trailing slash: %d", a2.status)
	}
	// another context is another answer
	if a2 := do(h, "POST", "/flags/ofrep/v1/evaluate/flags", `{"context": {"plan": "free"}}`, "If-None-Match", etag); a2.status != 200 || a2.header.Get("ETag") == etag {
		t.Errorf("other context: %d etag %q", a2.status, a2.header.Get("ETag"))
	}
	// a flag file change: 200 and a new ETag
	data := strings.Replace(string(testdata(t)), `"defaultVariant": "blue"`, `"defaultVariant": "red"`, 1)
	if err := e.Load([]byte(data), "flags.json"); err != nil {
		t.Fatal(err)
	}
	a3 := do(h, "POST", "/flags/ofrep/v1/evaluate/flags", body, "If-None-Match", etag)
	if a3.status != 200 || a3.header.Get("ETag") == etag || !strings.Contains(a3.body, `"variant":"red"`) {
		t.Errorf("after change: %d etag %q body %s", a3.status, a3.header.Get("ETag"), a3.body)
	}
	// bulk errors
	if a := do(h, "POST", "/flags/ofrep/v1/evaluate/flags", `{"context": "x"}`); a.status != 400 || strings.TrimSpace(a.body) != `{"errorCode":"INVALID_CONTEXT","errorDetails":"context must be a JSON object"}` {
		t.Errorf("bulk invalid context: %d %s", a.status, a.body)
	}
	if a := do(h, "POST", "/flags/ofrep/v1/evaluate/flags", `nope`); a.status != 400 || a.json(t)["errorCode"] != "PARSE_ERROR" {
		t.Errorf("bulk parse error: %d %s", a.status, a.body)
	}
	if a := do(NewHandler(New(), HandlerOptions{}), "POST", "/ofrep/v1/evaluate/flags", ``); a.status != 200 || strings.TrimSpace(a.body) != `{"flags":[],"metadata":{}}` {
		t.Errorf("no flags: %d %s", a.status, a.body)
	}
}

// Evaluation-time errors are answered as flagd's OFREP service answers
// them (flagd/pkg/service/flag-evaluation/ofrep): a rule jsonlogic cannot
// apply (an unknown operator, a $ref to no evaluator) is 400 PARSE_ERROR,
// a rule naming no variant or a null variant 400 GENERAL, each with
// flagd's details and the flag's metadata; the bulk answer lists them
// beside the flags that evaluate, with a metadata object as flagd has.
// The OpenFeature SDK then serves the code default.
func TestOFREPEvaluationErrorsAsFlagd(t *testing.T) {
	e := New()
	err := e.Load([]byte(`{"metadata": {"team": "web"}, "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
 "flags": {
  "typo": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"end_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}, "metadata": {"owner": "ui"}},
  "lost-ref": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"$ref": "staf"}, "on", "off"]}},
  "no-variant": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"$ref": "staff"}, "yes", "off"]}},
  "null-variant": {"state": "ENABLED", "variants": {"on": null}, "defaultVariant": "on"},
  "fine": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}
 }}`), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Info().Warnings) == 0 {
		t.Error("no warnings for the unknown operator and $ref")
	}
	h := NewHandler(e, HandlerOptions{})
	ctx := `{"context": {"email": "a@example.com"}}`
	for _, c := range []struct {
		key  string
		want string
	}{
		{"typo", `{"key":"typo","errorCode":"PARSE_ERROR","errorDetails":"error parsing the flag ` + "`typo`" + `","metadata":{"owner":"ui","team":"web"}}`},
		{"lost-ref", `{"key":"lost-ref","errorCode":"PARSE_ERROR","errorDetails":"error parsing the flag ` + "`lost-ref`" + `","metadata":{"team":"web"}}`},
		{"no-variant", `{"key":"no-variant","errorCode":"GENERAL","errorDetails":"error processing the flag for evaluation","metadata":{"team":"web"}}`},
		{"null-variant", `{"key":"null-variant","errorCode":"GENERAL","errorDetails":"error processing the flag for evaluation","metadata":{"team":"web"}}`},
	} {
		a := do(h, "POST", "/ofrep/v1/evaluate/flags/"+c.key, ctx)
		if a.status != http.StatusBadRequest || strings.TrimSpace(a.body) != c.want {
			t.Errorf("%s: %d %s\nwant 400 %s", c.key, a.status, a.body, c.want)
		}
	}
	a := do(h, "POST", "/ofrep/v1/evaluate/flags", ctx)
	var bulk struct {
		Flags []struct {
			Key, ErrorCode string
			Value          any
		}
		Metadata map[string]any
	}
	if err := json.Unmarshal([]byte(a.body), &bulk); err != nil || a.status != 200 {
		t.Fatalf("bulk: %d %s", a.status, a.body)
	}
	got := map[string]string{}
	for _, f := range bulk.Flags {
		got[f.Key] = f.ErrorCode
	}
	want := map[string]string{"typo": "PARSE_ERROR", "lost-ref": "PARSE_ERROR", "no-variant": "GENERAL", "null-variant": "GENERAL", "fine": ""}
	if !reflect.DeepEqual(got, want) || bulk.Metadata == nil {
		t.Errorf("bulk: %s", a.body)
	}
}

func TestOFREPPathsAndMethods(t *testing.T) {
	h := NewHandler(loaded(t), HandlerOptions{})
	if a := do(h, "GET", "/ofrep/v1/evaluate/flags/new-ui", ""); a.status != 405 || a.header.Get("Allow") != "POST, OPTIONS" {
		t.Errorf("GET: %d %v", a.status, a.header)
	}
	for _, p := range []string{"/ofrep", "/ofrep/v1/evaluate", "/ofrep/v2/evaluate/flags", "/other"} {
		if a := do(h, "POST", p, "{}"); a.status != 404 || a.json(t)["errorDetails"] == nil {
			t.Errorf("%s: %d %s", p, a.status, a.body)
		}
	}
	if a := do(h, "POST", "/ofrep/v1/evaluate/flags/new-ui", `{"context": {"x": "`+strings.Repeat("a", MaxRequestBody)+`"}}`); a.status != 413 {
		t.Errorf("large body: %d", a.status)
	}
	if !h.Owns("/ofrep") || !h.Owns("/ofrep/v1/x") || h.Owns("/ofrepx") || h.Owns("/") || h.Prefix() != "/ofrep" {
		t.Error("Owns")
	}
}

func TestOFREPCORS(t *testing.T) {
	h := NewHandler(loaded(t), HandlerOptions{CORSOrigins: []string{"https://app.example.com"}})
	pre := func(origin, method string) answer {
		return do(h, "OPTIONS", "/ofrep/v1/evaluate/flags/new-ui", "", "Origin", origin, "Access-Control-Request-Method", method,
			"Access-Control-Request-Headers", "content-type, x-api-key")
	}
	a := pre("https://app.example.com", "POST")
	if a.status != 204 || a.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(a.header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(a.header.Get("Access-Control-Allow-Headers"), "X-API-Key") || a.header.Get("Vary") != "Origin" {
		t.Errorf("allowed preflight: %d %v", a.status, a.header)
	}
	a = pre("https://evil.example.com", "POST")
	if a.status != 403 || a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("denied preflight: %d %v", a.status, a.header)
	}
	if a := pre("https://app.example.com", "DELETE"); a.status != 403 {
		t.Errorf("preflight for DELETE: %d", a.status)
	}
	// a plain OPTIONS
	if a := do(h, "OPTIONS", "/ofrep/v1/evaluate/flags", ""); a.status != 204 || a.header.Get("Allow") != "POST, OPTIONS" {
		t.Errorf("plain OPTIONS: %d %v", a.status, a.header)
	}
	// actual requests: headers for the allowed origin only
	a = do(h, "POST", "/ofrep/v1/evaluate/flags", "{}", "Origin", "https://app.example.com")
	if a.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || a.header.Get("Access-Control-Expose-Headers") != "ETag" {
		t.Errorf("allowed origin: %v", a.header)
	}
	a = do(h, "POST", "/ofrep/v1/evaluate/flags", "{}", "Origin", "https://evil.example.com")
	if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin: %d %v", a.status, a.header)
	}
	any := NewHandler(loaded(t), HandlerOptions{CORSOrigins: []string{"*"}})
	if a := do(any, "OPTIONS", "/ofrep/v1/evaluate/flags", "", "Origin", "https://x.example", "Access-Control-Request-Method", "POST"); a.status != 204 || a.header.Get("Access-Control-Allow-Origin") != "https://x.example" {
		t.Errorf("any origin: %d %v", a.status, a.header)
	}
	none := NewHandler(loaded(t), HandlerOptions{})
	if a := do(none, "OPTIONS", "/ofrep/v1/evaluate/flags", "", "Origin", "https://x.example", "Access-Control-Request-Method", "POST"); a.status != 403 {
		t.Errorf("no origins configured: %d", a.status)
	}
}

func TestOFREPAuth(t *testing.T) {
	h := NewHandler(loaded(t), HandlerOptions{APIKeys: []string{"k-web"}, BearerTokens: []string{"tok"}, CORSOrigins: []string{"https://app.example.com"}})
	path := "/ofrep/v1/evaluate/flags/new-ui"
	for _, c := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"none", nil, 401},
		{"api key", []string{"X-API-Key", "k-web"}, 200},
		{"api key as bearer", []string{"Authorization", "Bearer k-web"}, 200},
		{"bearer token", []string{"Authorization", "bearer tok"}, 200},
		{"bearer token as api key", []string{"X-API-Key", "tok"}, 403},
		{"wrong key", []string{"X-API-Key", "k-wex"}, 403},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 403},
		{"basic", []string{"Authorization", "Basic dTpw"}, 403},
	} {
		a := do(h, "POST", path, `{}`, c.headers...)
		if a.status != c.status {
			t.Errorf("%s: %d, want %d", c.name, a.status, c.status)
		}
		if c.status == 401 && a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
		if c.status != 200 && a.json(t)["errorDetails"] == "" {
			t.Errorf("%s: no errorDetails", c.name)
		}
	}
	// preflights carry no credentials and need none
	if a := do(h, "OPTIONS", path, "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST"); a.status != 204 {
		t.Errorf("preflight with auth on: %d", a.status)
	}
}

func TestHandlerFromConfig(t *testing.T) {
	dir := t.TempDir()
	keys, tok := filepath.Join(dir, "keys"), filepath.Join(dir, "tok")
	os.WriteFile(keys, []byte("web k1\n"), 0o600)
	os.WriteFile(tok, []byte("t1\n"), 0o600)
	e := loaded(t)
	if h, err := HandlerFromConfig(e, nil); h != nil || err != nil {
		t.Error("nil flags")
	}
	off := false
	if h, err := HandlerFromConfig(e, &config.Flags{OFREP: config.OFREP{Enabled: &off}}); h != nil || err != nil {
		t.Error("disabled OFREP")
	}
	h, err := HandlerFromConfig(e, &config.Flags{OFREP: config.OFREP{PathPrefix: "/ff", Auth: config.OFREPAuth{APIKeysFile: keys, BearerTokenFile: tok}}})
	if err != nil {
		t.Fatal(err)
	}
	if a := do(h, "POST", "/ff/v1/evaluate/flags", "{}", "X-API-Key", "k1"); a.status != 200 {
		t.Errorf("api key from file: %d", a.status)
	}
	if a := do(h, "POST", "/ff/v1/evaluate/flags", "{}", "Authorization", "Bearer t1"); a.status != 200 {
		t.Errorf("token from file: %d", a.status)
	}
	if _, err := HandlerFromConfig(e, &config.Flags{OFREP: config.OFREP{Auth: config.OFREPAuth{APIKeysFile: filepath.Join(dir, "nope")}}}); err == nil {
		t.Error("missing key file accepted")
	}
}

// The handler works behind a real server (HTTP/1.1 framing, 304).
func TestOFREPOverHTTP(t *testing.T) {
	srv := httptest.NewServer(NewHandler(loaded(t), HandlerOptions{}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/ofrep/v1/evaluate/flags", "application/json", strings.NewReader(`{"context":{"targetingKey":"a"}}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/ofrep/v1/evaluate/flags", strings.NewReader(`{"context":{"targetingKey":"a"}}`))
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != 304 || len(b) != 0 {
		t.Errorf("304 over HTTP: %d %q", resp2.StatusCode, b)
	}
}

func TestAdminHandler(t *testing.T) {
	a := do(loaded(t).AdminHandler(), "GET", "/api/v1/flags", "")
	m := a.json(t)
	if a.status != 200 || m["version"] != 1.0 || m["flags"] != 6.0 || len(m["list"].([]any)) != 6 {
		t.Errorf("%d %s", a.status, a.body)
	}
	if a := do(New().AdminHandler(), "GET", "/api/v1/flags", ""); a.status != 200 || !strings.Contains(a.body, `"list": []`) {
		t.Errorf("no flags: %s", a.body)
	}
	if a := do(New().AdminHandler(), "POST", "/api/v1/flags", ""); a.status != 405 {
		t.Errorf("POST: %d", a.status)
	}
}
