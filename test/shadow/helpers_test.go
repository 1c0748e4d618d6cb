package shadowtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"

	"github.com/umbragw/umbra/test/testkit"
)

// waitFor bounds every poll; generous for two shared cores under -race,
// never reached when things work.
const waitFor = 15 * time.Second

// header is the top of every test config: ephemeral loopback ports, access
// logs on (they run on the request and shadow paths, so the race detector
// sees them) and a short shutdown grace.
//
// A body starting with noAccessLog turns the access log off, for tests
// that send thousands of requests and look at no log line.
func header(dir, body string) string {
	access := !strings.HasPrefix(body, noAccessLog)
	return "listen: 127.0.0.1:0\n" +
		"admin: {listen: 127.0.0.1:0}\n" +
		"data_dir: " + strconv.Quote(filepath.Join(dir, "data")) + "\n" +
		"log: {level: info, access: " + strconv.FormatBool(access) + "}\n" +
		"server: {shutdown_grace: 5s}\n"
}

const noAccessLog = "# no access log\n"

// poll waits up to waitFor for a condition, checking every 10 ms.
var poll = testkit.Poll{Timeout: waitFor, Interval: 10 * time.Millisecond}

// gw is a started gateway.
type gw struct {
	*testkit.Gateway
	Dir    string
	client *http.Client // for /metrics
}

// parseConfig writes text (after the standard header) to umbra.yaml in dir
// and parses it with config.Parse, as the loader would.
func parseConfig(t *testing.T, dir, body string) (*config.Config, string, error) {
	t.Helper()
	path := filepath.Join(dir, "umbra.yaml")
	text := header(dir, body) + body
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, []byte(text))
	return cfg, text, err
}

// startGW parses body (after the standard header) and starts a gateway on
// it; cleanup shuts it down (once) and prints its log when the test failed.
func startGW(t *testing.T, body string) *gw {
	t.Helper()
	dir := t.TempDir()
	g := testkit.Start(t, "shadowtest", filepath.Join(dir, "umbra.yaml"), header(dir, body)+body)
	return &gw{Gateway: g, Dir: dir, client: testkit.NewClient(t, 4, waitFor)}
}

// shutdown stops the gateway (once) and closes the /metrics client's
// idle connections.
func (g *gw) shutdown() error {
	err := g.Stop()
	g.client.CloseIdleConnections()
	return err
}

// rewrite replaces the config file (after the standard header), for Reload.
func (g *gw) rewrite(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(g.Path, []byte(header(g.Dir, body)+body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// apply parses body and applies it to the running gateway.
func (g *gw) apply(t *testing.T, body string) {
	t.Helper()
	g.rewrite(t, body)
	if err := g.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// ---- upstreams ----

// seen is one request as an upstream received it.
type seen struct {
	Method string
	Host   string
	Path   string
	Query  string
	URI    string // the request target as sent
	Header http.Header
	Size   int
	SHA    string
	Remote string
}

// upstream is an in-process HTTP server that records what it receives.
type upstream struct {
	*httptest.Server
	name string
	hits atomic.Int64
	mu   sync.Mutex
	reqs []seen
}

// newUpstream starts an upstream. A nil handler answers 200 with the body
// "live:<name>". Every request is recorded (with the sha256 of its body)
// before the handler runs; the body is read first unless h is set.
func newUpstream(t *testing.T, name string, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h != nil {
			u.record(r, nil)
			h(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		u.record(r, body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "answer from "+name+"\n")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) record(r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	s := seen{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, URI: r.RequestURI, Header: r.Header.Clone(),
		Size: len(body), SHA: hex.EncodeToString(sum[:]), Remote: r.RemoteAddr}
	u.mu.Lock()
	u.reqs = append(u.reqs, s)
	u.mu.Unlock()
	u.hits.Add(1)
}

// seen returns a copy of the recorded requests.
func (u *upstream) seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs)
}

// byHeader returns the recorded requests whose header name equals value.
func (u *upstream) byHeader(name, value string) []seen {
	var out []seen
	for _, s := range u.seen() {
		if s.Header.Get(name) == value {
			out = append(out, s)
		}
	}
	return out
}

func (u *upstream) reset() {
	u.mu.Lock()
	u.reqs = nil
	u.mu.Unlock()
	u.hits.Store(0)
}

// ---- metrics ----

// metrics is one scrape, with shadow-specific readers.
type metrics struct{ testkit.Metrics }

// shadow returns umbra_shadow_requests_total{route,target,outcome}.
func (m metrics) shadow(route, target, outcome string) float64 {
	v, _ := m.Sum("umbra_shadow_requests_total", testkit.Labels("route", route, "target", target, "outcome", outcome))
	return v
}

// outcomes returns every non-zero outcome of a target, for messages.
func (m metrics) outcomes(route, target string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m.Named("umbra_shadow_requests_total") {
		if s.Labels["route"] == route && s.Labels["target"] == target && s.Value != 0 {
			out[s.Labels["outcome"]] = s.Value
		}
	}
	return out
}

// gauge returns a shadow gauge of one target.
func (m metrics) gauge(name, route, target string) float64 {
	v, _ := m.Sum(name, testkit.Labels("route", route, "target", target))
	return v
}

// scrape fetches and parses the admin /metrics.
func (g *gw) scrape(t *testing.T) metrics {
	t.Helper()
	return metrics{testkit.Scrape(t, g.client, g.AdminURL)}
}

// tryScrape is scrape without failing the test.
func (g *gw) tryScrape() (metrics, error) {
	m, err := testkit.TryScrape(g.client, g.AdminURL)
	return metrics{m}, err
}

// waitMetrics polls /metrics until cond holds and returns that scrape.
func (g *gw) waitMetrics(t *testing.T, what string, cond func(m metrics) (bool, string)) metrics {
	t.Helper()
	var m metrics
	poll.Until(t, what, func() (bool, string) {
		var err error
		if m, err = g.tryScrape(); err != nil {
			return false, err.Error()
		}
		return cond(m)
	})
	return m
}

// waitShadow polls until umbra_shadow_requests_total{route,target,outcome}
// satisfies ok (for example "== 3" via eq(3)).
func (g *gw) waitShadow(t *testing.T, route, target, outcome string, ok func(float64) bool, desc string) metrics {
	t.Helper()
	return g.waitMetrics(t, fmt.Sprintf("%s/%s %s %s", route, target, outcome, desc), func(m metrics) (bool, string) {
		return ok(m.shadow(route, target, outcome)), fmt.Sprint(m.outcomes(route, target))
	})
}

func eq(n float64) func(float64) bool      { return func(v float64) bool { return v == n } }
func atLeast(n float64) func(float64) bool { return func(v float64) bool { return v >= n } }

// settled waits until every request of the route got its final outcome
// at target: no copy queued or in flight, and the outcomes, which
// partition the requests, add up to the route's live requests.
func (g *gw) settled(t *testing.T, route, target string) metrics {
	t.Helper()
	return g.waitMetrics(t, route+"/"+target+" settled", func(m metrics) (bool, string) {
		o := m.outcomes(route, target)
		q := m.gauge("umbra_shadow_queue_length", route, target)
		f := m.gauge("umbra_shadow_in_flight", route, target)
		n := m.liveRequests(route)
		return q == 0 && f == 0 && total(o) == n,
			fmt.Sprintf("queue %v in flight %v outcomes %v (sum %v), live requests %v", q, f, o, total(o), n)
	})
}

// liveRequests is umbra_requests_total of the route's live role: every
// request the route's shadow targets count.
func (m metrics) liveRequests(route string) float64 {
	v, _ := m.Sum("umbra_requests_total", testkit.Labels("route", route, "role", "live"))
	return v
}

// quiet waits until a target has no copy queued or in flight and its
// counters stopped moving, for tests that do not count their requests.
func (g *gw) quiet(t *testing.T, route, target string) metrics {
	t.Helper()
	var prev string
	return g.waitMetrics(t, route+"/"+target+" quiet", func(m metrics) (bool, string) {
		o := m.outcomes(route, target)
		q := m.gauge("umbra_shadow_queue_length", route, target)
		f := m.gauge("umbra_shadow_in_flight", route, target)
		cur := fmt.Sprintf("queue %v in flight %v outcomes %v", q, f, o)
		ok := q == 0 && f == 0 && cur == prev
		prev = cur
		if !ok {
			time.Sleep(40 * time.Millisecond)
		}
		return ok, cur
	})
}

// total is the sum of a target's outcomes: each request of the route is
// counted once, under its final outcome.
func total(o map[string]float64) float64 {
	n := 0.0
	for _, v := range o {
		n += v
	}
	return n
}

// sent is the number of copies that went out: each ends with an answer
// (ok, status_5xx) or an error. A copy in flight when a reload replaces
// its target ends as error_canceled: it was sent, and its answer is no
// longer wanted.
func sent(o map[string]float64) float64 {
	return o["ok"] + o["status_5xx"] + o["error_connect"] + o["error_timeout"] + o["error_reset"] + o["error_other"] + o["error_canceled"]
}

// ---- goroutines ----

// goroutines returns runtime.NumGoroutine once it has been stable for a
// moment (goroutines of finished tests may still be exiting).
func goroutines() int {
	n := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		time.Sleep(5 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

// waitGoroutines polls until the goroutine count is back to at most base,
// and dumps the goroutines when it is not.
func waitGoroutines(t *testing.T, base int, when string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%s: %d goroutines, want at most the baseline %d\n%s", when, n, base, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- latency ----

// percentile returns the p-th percentile (0 < p <= 1) of sorted durations,
// by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

type latency struct{ median, p99, max time.Duration }

func summarize(d []time.Duration) latency {
	s := slices.Clone(d)
	slices.Sort(s)
	return latency{median: percentile(s, 0.5), p99: percentile(s, 0.99), max: s[len(s)-1]}
}

func (l latency) String() string {
	return fmt.Sprintf("median %v p99 %v max %v", l.median.Round(time.Microsecond), l.p99.Round(time.Microsecond), l.max.Round(time.Microsecond))
}

// key is the i-th caller key of the sampling tests.
func key(i int) string { return "user-" + strconv.Itoa(i) }
