package dashboardtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/umbragw/umbra/internal/gateway"
	"github.com/umbragw/umbra/internal/ui"
	"github.com/umbragw/umbra/test/testkit"
)

// shop is a test upstream: one version of a small checkout API.
//
//	GET  /checkout/{id}  an order; v2 sends "total" as a string for ids
//	                     ending in 3 or 7 (the regression the comparison
//	                     must find); every instance stamps created_at and
//	                     a random request_id (the noise)
//	POST /users          accepts {"email": ...} or {"emails": [...]}
type shop struct {
	*httptest.Server
	version string
}

func newShop(t *testing.T, version string) *shop {
	t.Helper()
	s := &shop{version: version}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout/{id}", s.order)
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, _ *http.Request) {
		testkit.WriteJSON(w, http.StatusCreated, map[string]any{"ok": true})
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *shop) order(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, _ := strconv.Atoi(id)
	total := any(n%50 + 10)
	if s.version == "v2" {
		time.Sleep(time.Millisecond) // a slightly slower candidate
		if n%10 == 3 || n%10 == 7 {
			total = fmt.Sprint(total) // the regression
		}
	}
	w.Header().Set("X-Served-By", "shop-"+s.version)
	testkit.WriteJSON(w, http.StatusOK, map[string]any{
		"id": id, "total": total, "currency": "EUR",
		"items":      []map[string]any{{"sku": "A-" + id, "qty": 1 + n%3}},
		"created_at": time.Now().UTC().Format(time.RFC3339Nano),
		"request_id": fmt.Sprintf("%016x", rand.Uint64()),
	})
}

const flagsJSON = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "new-checkout": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"in": [{"var": "targetingKey"}, ["alice", "carol"]]}, "on", "off"]}
    },
    "checkout-theme": {
      "state": "ENABLED",
      "variants": {"classic": "classic", "dark": "dark"},
      "defaultVariant": "classic"
    }
  }
}`

// env is a running umbra in front of real upstreams with shadow,
// comparison (with a secondary), a canary rollout, flags and adoption.
type env struct {
	gw     *testkit.Gateway
	client *http.Client
	v1, v2 *shop
}

type envOptions struct {
	token    string // admin token ("" for none)
	interval time.Duration
}

func startEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{v1: newShop(t, "v1"), v2: newShop(t, "v2")}
	v1b := newShop(t, "v1")
	testkit.WriteFile(t, filepath.Join(dir, "flags.json"), flagsJSON)
	top := testkit.Top{Level: "warn"}
	if o.token != "" {
		tf := filepath.Join(dir, "admin.token")
		testkit.WriteFile(t, tf, o.token+"\n")
		top.Admin = fmt.Sprintf("token_file: %q", tf)
	}
	cfg := fmt.Sprintf("flags: {file: %q}\n", filepath.Join(dir, "flags.json")) +
		`callers: {key: "header:X-Client-ID"}
backends:
  shop-v1: {endpoints: ["` + e.v1.URL + `"]}
  shop-v1-secondary: {endpoints: ["` + v1b.URL + `"]}
  shop-v2: {endpoints: ["` + e.v2.URL + `"]}
routes:
  - name: checkout
    match: {path_prefix: /checkout}
    backend: shop-v1
    key: "header:X-User-ID"
    shadow:
      - {backend: shop-v2, percent: 100}
    compare: {secondary: shop-v1-secondary}
    canary: {backend: shop-v2, weight: 0}
    rollout:
      start: auto
      interval: 200ms
      steps:
        - shadow: {min_requests: 40, max_diff_rate: 0.5}
        - canary: {weight: 10, min_requests: 100000, min_duration: 1h}
        - canary: {weight: 50, min_requests: 100000, min_duration: 1h}
        - promote: {}
  - name: users
    match: {path_prefix: /users}
    backend: shop-v1
    adoption:
      fields:
        - {name: email, path: "$.email"}
        - {name: emails, path: "$.emails"}
  - name: legacy-reports
    match: {path_prefix: /reports}
    backend: shop-v1
`
	interval := o.interval
	if interval == 0 {
		interval = 250 * time.Millisecond
	}
	e.gw = testkit.LaunchWith(t, gateway.Options{Version: "test", Dashboard: ui.Options{Interval: interval}}, top, cfg)
	e.gw.Token, e.gw.Poll = o.token, testkit.Slow
	e.client = testkit.NewClient(t, 16, 10*time.Second)
	return e
}

// send makes n requests: orders by several users and callers, and user
// creations with the old and the new field.
func (e *env) send(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := e.one(i); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) one(i int) error {
	callers := []string{"web", "ios", "android", "batch"}
	var r testkit.Response
	var err error
	if i%6 == 5 {
		body := `{"emails": ["u` + strconv.Itoa(i) + `@example.com"]}`
		if i%12 == 5 {
			body = `{"email": "u` + strconv.Itoa(i) + `@example.com"}`
		}
		r, err = testkit.Send(e.client, "POST", e.gw.URL+"/users", strings.NewReader(body),
			"X-Client-ID", callers[(i/6)%2], "Content-Type", "application/json")
	} else {
		r, err = testkit.Send(e.client, "GET", e.gw.URL+"/checkout/"+strconv.Itoa(1000+i%97), nil,
			"X-User-ID", "user-"+strconv.Itoa(i%37), "X-Client-ID", callers[i%len(callers)])
	}
	if err != nil {
		return err
	}
	if r.Status >= 300 {
		return fmt.Errorf("request %d: status %d: %s", i, r.Status, r.Body)
	}
	return nil
}

// traffic sends requests in the background at about rps until the test
// ends, so live updates have something to show.
func (e *env) traffic(t *testing.T, rps int) {
	testkit.StartLoop(t, 1, time.Second/time.Duration(rps), func(i int, _ <-chan struct{}) { _ = e.one(i) })
}

// api calls the admin API and decodes its JSON answer.
func (e *env) api(t *testing.T, method, path string, out any) int {
	t.Helper()
	code, body := e.gw.AdminDo(t, method, path, nil)
	if out != nil && code < 300 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
	}
	return code
}

// rolloutPhase is the checkout rollout's phase and step from the API.
func (e *env) rolloutPhase(t *testing.T) (phase string, step int) {
	var st struct {
		Phase string `json:"phase"`
		Step  int    `json:"step"`
	}
	e.api(t, "GET", "/api/v1/rollouts/checkout", &st)
	return st.Phase, st.Step
}

// waitCanaryStep sends traffic until the rollout passed its shadow step.
func (e *env) waitCanaryStep(t *testing.T) {
	t.Helper()
	i := 0
	testkit.Slow.Until(t, "the rollout in its first canary step", func() (bool, string) {
		for j := 0; j < 20; j++ {
			_ = e.one(i)
			i++
		}
		phase, step := e.rolloutPhase(t)
		return phase == "running" && step == 1, fmt.Sprintf("phase %s, step %d", phase, step+1)
	})
}

// chromium finds the browser; tests skip without it (CI installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (apt-get install chromium; .ci/run installs it)")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a
// tab context bounded by testkit.Slow.Timeout.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	tctx, cancelC := context.WithTimeout(ctx, 3*testkit.Slow.Timeout)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return tctx
}

// do runs browser actions and fails the test on error.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// text returns the text of the first element matching the CSS selector.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// untilText waits until the text of the element sel contains want.
func untilText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	testkit.Slow.Until(t, fmt.Sprintf("%s to show %q", sel, want), func() (bool, string) {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](
			fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(s, want), s
	})
}
