package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// snakeRe is an admin API key: lower case words joined by '_'.
var snakeRe = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// dataMaps are the places in admin answers whose object keys are names
// from the config or the traffic (backends, headers, endpoints, fields,
// callers), not the API's own keys. A path is a response's endpoint
// followed by its keys, "[]" for array elements.
var dataMaps = map[string]bool{
	"config.backends":                             true,
	"config.routes[].flag_context":                true,
	"config.routes[].shadow[].headers.set":        true,
	"config.egress.services":                      true,
	"samples.samples[].request_headers":           true,
	"samples.samples[].live.headers":              true,
	"samples.samples[].candidate.headers":         true,
	"samples.samples[].secondary.headers":         true,
	"rollout.baseline.diffs":                      true,
	"rollout.baseline.diffs.*.fields":             true,
	"rollouts.rollouts[].baseline.diffs":          true,
	"rollouts.rollouts[].baseline.diffs.*.fields": true,
	"flags_evaluate.flags[]":                      true,
}

// Every key of every JSON answer of the admin API is snake_case, except
// where the key is data (a backend's name, a header, a field path) or a
// format umbra speaks but does not own (OFREP's evaluation results,
// Hoverfly's simulation files).
func TestAdminJSONKeysAreSnakeCase(t *testing.T) {
	dir := t.TempDir()
	v1 := jsonUpstream(t, "v1")
	v1b := jsonUpstream(t, "v1")
	v2 := jsonUpstream(t, "v2")
	third := jsonUpstream(t, "third")
	flagFile := filepath.Join(dir, "flags.json")
	writeFile(t, flagFile, `{"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false},
  "defaultVariant": "off", "targeting": {"fractional": [["on", 50], ["off", 50]]}}}}`)
	g := testkit.Start(t, "adminjson", filepath.Join(dir, "umbra.yaml"), fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: %q
log: {access: false}
backends:
  checkout-v1: {endpoints: [%q]}
  checkout-v1b: {endpoints: [%q]}
  checkout-v2: {endpoints: [%q]}
callers: {key: "header:X-Client"}
flags: {file: %q}
routes:
  - name: checkout
    match: {path_prefix: /checkout}
    backend: checkout-v1
    key: "header:X-User"
    flag_context: {User-Plan: "header:X-Plan"}
    shadow: [{backend: checkout-v2, percent: 100, unsafe: allow, headers: {set: {X-Env: shadow}}}]
    compare: {secondary: checkout-v1b}
    canary: {backend: checkout-v2, weight: 0}
    rollout:
      interval: 50ms
      steps:
        - shadow: {min_requests: 100000, max_diff_rate: 1}
        - canary: {weight: 10, min_requests: 10}
        - promote: {}
    adoption: {fields: [{name: email, path: $.email}]}
egress:
  listen: 127.0.0.1:0
  services:
    payments: {upstream: %q, endpoints: ["/v1/charges/{id}"]}
`, filepath.Join(dir, "data"), v1.URL, v1b.URL, v2.URL, flagFile, third.URL))
	c := testkit.NewClient(t, 4, 10*time.Second)
	for i := range 20 {
		r, err := testkit.Send(c, "POST", g.URL+fmt.Sprintf("/checkout/%d", i), strings.NewReader(`{"email":"a@example.com"}`),
			"X-User", fmt.Sprint("u", i), "X-Client", "web", "Content-Type", "application/json")
		if err != nil || r.Status != 200 {
			t.Fatalf("request %d: %v %d", i, err, r.Status)
		}
	}
	admin := func(method, path, body string) []byte {
		t.Helper()
		r, err := testkit.Send(c, method, g.AdminURL+path, strings.NewReader(body))
		if err != nil || r.Status != 200 {
			t.Fatalf("%s %s: %v %d %s", method, path, err, r.Status, r.Body)
		}
		return r.Body
	}
	var report struct {
		Routes []struct {
			Endpoints []struct {
				Endpoint    string `json:"endpoint"`
				Compared    int64  `json:"compared"`
				Regressions []struct {
					Field string `json:"field"`
				} `json:"regressions"`
			} `json:"endpoints"`
		} `json:"routes"`
	}
	testkit.Poll{Timeout: 10 * time.Second, Interval: 20 * time.Millisecond}.Until(t, "a regression with samples", func() (bool, string) {
		b := admin("GET", "/api/v1/diffs", "")
		report.Routes = nil
		_ = json.Unmarshal(b, &report)
		ok := len(report.Routes) > 0 && len(report.Routes[0].Endpoints) > 0 && len(report.Routes[0].Endpoints[0].Regressions) > 0
		return ok, string(b)
	})
	ep := report.Routes[0].Endpoints[0]
	q := "?endpoint=" + url.QueryEscape(ep.Endpoint)
	started := admin("POST", "/api/v1/rollouts/checkout/start", "") // its shadow step's baseline holds the counts so far
	// Each answer is checked from the root its name says (the part before '/').
	answers := map[string][]byte{
		"config":              admin("GET", "/api/v1/config", ""),
		"routes":              admin("GET", "/api/v1/routes", ""),
		"diffs":               admin("GET", "/api/v1/diffs", ""),
		"diffs/route":         admin("GET", "/api/v1/diffs/checkout", ""),
		"fields":              admin("GET", "/api/v1/diffs/checkout/fields"+q, ""),
		"samples":             admin("GET", "/api/v1/diffs/checkout/samples"+q+"&field="+url.QueryEscape(ep.Regressions[0].Field), ""),
		"noise":               admin("POST", "/api/v1/diffs/checkout/noise", `{"field": "$.seq"}`),
		"rollouts":            admin("GET", "/api/v1/rollouts", ""),
		"rollout":             admin("GET", "/api/v1/rollouts/checkout", ""),
		"rollout/start":       started,
		"rollout/pause":       admin("POST", "/api/v1/rollouts/checkout/pause", ""),
		"flags":               admin("GET", "/api/v1/flags", ""),
		"flags_evaluate":      admin("POST", "/api/v1/flags/evaluate", `{"context": {"targetingKey": "alice"}}`),
		"adoption":            admin("GET", "/api/v1/adoption", ""),
		"error/not_found":     mustStatus(t, c, "GET", g.AdminURL+"/api/v1/nope", 404),
		"error/not_allowed":   mustStatus(t, c, "DELETE", g.AdminURL+"/api/v1/routes", 405),
		"error/unknown_route": mustStatus(t, c, "GET", g.AdminURL+"/api/v1/rollouts/nope", 404),
		"reset":               admin("DELETE", "/api/v1/diffs/checkout", ""),
	}
	// Hoverfly's simulation format is Hoverfly's (camelCase): it only has
	// to be JSON.
	var sim map[string]any
	if err := json.Unmarshal(admin("GET", "/api/v1/egress/payments/simulation", ""), &sim); err != nil || sim["meta"] == nil {
		t.Errorf("egress simulation: %v %v", sim, err)
	}
	visited := map[string]bool{}
	names := make([]string, 0, len(answers))
	for n := range answers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		var v any
		if err := json.Unmarshal(answers[name], &v); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, answers[name])
		}
		root, _, _ := strings.Cut(name, "/")
		for _, bad := range nonSnakeKeys(v, root, visited) {
			t.Errorf("%s: key %s is not snake_case", name, bad)
		}
		if os.Getenv("UMBRA_DUMP_ADMIN") != "" {
			t.Logf("%s:\n%s", name, answers[name])
		}
	}
	for path := range dataMaps {
		if !visited[path] {
			t.Errorf("no answer had the data map %s: is the list still true?", path)
		}
	}
}

// nonSnakeKeys walks a decoded JSON value and returns the paths of the
// object keys that are not snake_case, skipping data maps.
func nonSnakeKeys(v any, path string, visited map[string]bool) []string {
	var bad []string
	switch v := v.(type) {
	case map[string]any:
		data := dataMaps[path]
		if data && len(v) > 0 {
			visited[path] = true
		}
		for k, child := range v {
			p := path + "." + k
			if data {
				p = path + ".*"
			} else if !snakeRe.MatchString(k) {
				bad = append(bad, p)
			}
			bad = append(bad, nonSnakeKeys(child, p, visited)...)
		}
	case []any:
		for _, child := range v {
			if dataMaps[path+"[]"] {
				visited[path+"[]"] = true
				continue
			}
			bad = append(bad, nonSnakeKeys(child, path+"[]", visited)...)
		}
	}
	sort.Strings(bad)
	return slicesCompact(bad)
}

func slicesCompact(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func mustStatus(t *testing.T, c *http.Client, method, u string, status int) []byte {
	t.Helper()
	r, err := testkit.Send(c, method, u, nil)
	if err != nil || r.Status != status {
		t.Fatalf("%s %s: %v %d, want %d", method, u, err, r.Status, status)
	}
	return r.Body
}

// jsonUpstream answers every request with a JSON body naming version and
// a value that differs on every answer (noise the secondary shows).
func jsonUpstream(t *testing.T, version string) *httptest.Server {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"version": %q, "seq": %d, "path": %q}`, version, n.Add(1), r.URL.Path)
		_, _ = w.Write(b.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
