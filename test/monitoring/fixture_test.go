package monitoringtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// fixture is a gateway in front of in-process upstreams, with traffic
// that touches every metric family once started.
type fixture struct {
	*testkit.Gateway
	dir    string
	flags  string // the flag file
	client *http.Client
	config string // the config text the gateway runs

}

const flagsJSON = `{"flags": {"geo": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
  "targeting": {"if": [{"starts_with": [{"var": "targetingKey"}, "user-1"]}, "on", "off"]}}}}`

// The config: checkout shadows to a healthy but different v2 (compared
// with a secondary v1), a slow target with a queue of one, and a dead
// target whose breaker opens, and sends half its callers to v2 as a
// canary (v2 fails one request in five); orders rolls a canary that
// always fails out and back; search rolls a healthy canary that holds;
// users counts adoption fields; legacy's backend is dead; geo is dark
// behind a flag.
const configTemplate = `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: DIR/data
log: {level: error, access: false}
server: {shutdown_grace: 2s}
comparison: {workers: 1, queue_size: 64}
backends:
  v1: {endpoints: [V1]}
  v1b: {endpoints: [V1B]}
  v2: {endpoints: [V2], retry: {disable: true}}
  bad: {endpoints: [BAD], retry: {disable: true}}
  slow: {endpoints: [SLOW]}
  dead: {endpoints: [DEAD], retry: {disable: true}, health: {max_fails: 1000000}}
routes:
  - name: checkout
    match: {path_prefix: /checkout}
    backend: v1
    key: "header:X-User-ID"
    shadow:
      - {backend: v2, percent: 100}
      - {backend: slow, percent: 100, max_in_flight: 1, queue_size: 1}
      - {backend: dead, percent: 100, breaker: {failures: 3, open_for: 1h}}
    compare: {target: v2, secondary: v1b, ignore: ["$.ts"]}
    canary: {backend: v2, weight: 50}
  - name: orders
    match: {path_prefix: /orders}
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: bad}
    rollout:
      start: auto
      interval: 1s
      steps:
        - canary: {weight: 50, min_requests: 1000000, min_duration: 1h}
        - promote: {}
  - name: search
    match: {path_prefix: /search}
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v1b}
    rollout:
      start: auto
      interval: 1s
      steps:
        - canary: {weight: 20, min_requests: 1000000, min_duration: 1h}
        - promote: {}
  - name: users
    match: {path_prefix: /v1/users}
    backend: v1
    adoption:
      fields:
        - {name: email, path: "$.email"}
        - {name: emails, path: "$.emails"}
  - name: legacy
    match: {path_prefix: /legacy}
    backend: dead
  - name: geo
    match: {path: /v1/geo, flag: {key: geo, variant: "on"}}
    dark: true
    backend: v2
    key: "header:X-User-ID"
flags: {file: DIR/flags.json}
callers: {key: "header:X-Client-ID"}
egress:
  listen: 127.0.0.1:0
  services:
    payments: {upstream: V1}
`

// startFixture starts the upstreams and the gateway; traffic waits for
// startTraffic. Cleanup stops everything.
func startFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, flags: filepath.Join(dir, "flags.json"), client: testkit.NewClient(t, 16, 10*time.Second)}
	testkit.WriteFile(t, f.flags, flagsJSON)
	var v2n atomic.Int64
	v1 := upstream(t, func(w http.ResponseWriter, r *http.Request) { answer(w, r, 12) })
	v1b := upstream(t, func(w http.ResponseWriter, r *http.Request) { answer(w, r, 12) })
	v2 := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if v2n.Add(1)%5 == 0 {
			http.Error(w, "v2 fails", http.StatusInternalServerError)
			return
		}
		answer(w, r, "12") // the regression: a number became a string
	})
	bad := upstream(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad", http.StatusServiceUnavailable) })
	slow := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		answer(w, r, 12)
	})
	f.config = strings.NewReplacer("DIR", dir, "V1B", v1b.URL, "V1", v1.URL, "V2", v2.URL, "BAD", bad.URL,
		"SLOW", slow.URL, "DEAD", "http://"+testkit.DeadAddr(t)).Replace(configTemplate)
	f.Gateway = testkit.Start(t, "monitoring-test", filepath.Join(dir, "umbra.yaml"), f.config)
	return f
}

func upstream(t *testing.T, h http.HandlerFunc) *testkit.Upstream {
	return testkit.NewStreamUpstream(t, "", h)
}

// answer writes a JSON answer whose ts differs every time (noise the
// secondary shows) and whose total is as given.
func answer(w http.ResponseWriter, r *http.Request, total any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "total": total, "ts": rand.Int64()})
}

// startTraffic sends a round of requests every 40 ms until cleanup: about
// 300 requests per second across the routes, little enough for a loaded
// CI machine with the race detector.
func (f *fixture) startTraffic(t *testing.T) {
	testkit.StartLoop(t, 1, 40*time.Millisecond, func(i int, _ <-chan struct{}) { f.round(i) })
}

// round sends one request of each kind; errors (the dead backend's 502s
// included) are part of the traffic, so answers are not checked here.
func (f *fixture) round(i int) {
	user := fmt.Sprintf("user-%d", i%40)
	client := []string{"mobile", "web", "batch"}[i%3]
	get := func(path string, hdr ...string) { _, _ = testkit.Send(f.client, "GET", f.URL+path, nil, hdr...) }
	for _, p := range []string{"/checkout/cart", "/checkout/pay", "/orders/1", "/search?q=x"} {
		get(p, "X-User-ID", user, "X-Client-ID", client)
	}
	get("/legacy/report")
	get("/nowhere")
	get("/v1/geo", "X-User-ID", user)
	body := `{"email": "a@example.com"}`
	switch i % 3 {
	case 1:
		body = `{"emails": ["a@example.com"]}`
	case 2:
		body = `{"email": ` // not JSON: skipped and counted
	}
	_, _ = testkit.Send(f.client, "POST", f.URL+"/v1/users", strings.NewReader(body),
		"Content-Type", "application/json", "X-Client-ID", client)
	_, _ = testkit.Send(f.client, "POST", "http://"+f.EgressAddr()+"/payments/v1/charges", strings.NewReader(`{"amount": 1}`),
		"Content-Type", "application/json")
}

// breakFiles writes a config file and a flag file that are rejected, and
// reloads: the running ones stay, and the *_last_reload_successful gauges
// drop to 0.
func (f *fixture) breakFiles(t *testing.T) {
	t.Helper()
	testkit.WriteFile(t, f.Path, f.config+"no_such_key: 1\n")
	if err := f.Reload(); err == nil {
		t.Fatal("a config with an unknown key was applied")
	}
	testkit.WriteFile(t, f.flags, `{"flags": `)
}
