package shadowtest

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"

	"github.com/umbragw/umbra/test/testkit"
)

// top is the top of a test config, access logs on (they run on the
// request and shadow paths, so the race detector sees them). A body
// starting with noAccessLog turns the access log off, for tests that send
// thousands of requests and look at no log line.
func top(body string) testkit.Top {
	return testkit.Top{Access: !strings.HasPrefix(body, noAccessLog)}
}

const noAccessLog = "# no access log\n"

// gw is a started gateway with the shadow suite's waits.
type gw struct{ *testkit.Gateway }

// parseConfig writes top+body to umbra.yaml in dir and parses it with
// config.Parse, as the loader would.
func parseConfig(t *testing.T, dir, body string) (*config.Config, string, error) {
	t.Helper()
	path := filepath.Join(dir, "umbra.yaml")
	t2 := top(body)
	t2.DataDir = filepath.Join(dir, "data") // as Launch would
	text := t2.YAML() + body
	testkit.WriteFile(t, path, text)
	cfg, err := config.Parse(path, []byte(text))
	return cfg, text, err
}

// startGW starts a gateway on body after the standard top; cleanup shuts
// it down (once) and prints its log when the test failed.
func startGW(t *testing.T, body string) *gw {
	t.Helper()
	return &gw{testkit.Launch(t, "shadowtest", top(body), body)}
}

// newUpstream starts an upstream recording what it receives. A nil
// handler reads the body and answers 200 "answer from <name>"; a handler
// of the test gets the body unread.
func newUpstream(t *testing.T, name string, h http.HandlerFunc) *testkit.Upstream {
	t.Helper()
	if h != nil {
		return testkit.NewStreamUpstream(t, name, h)
	}
	return testkit.NewUpstream(t, name, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "answer from "+name+"\n")
	})
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
	return metrics{g.Scrape(t)}
}

// waitMetrics polls /metrics until cond holds and returns that scrape.
func (g *gw) waitMetrics(t *testing.T, what string, cond func(m metrics) (bool, string)) metrics {
	t.Helper()
	return metrics{g.WaitMetrics(t, what, func(m testkit.Metrics) (bool, string) { return cond(metrics{m}) })}
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

// key is the i-th caller key of the sampling tests.
func key(i int) string { return "user-" + strconv.Itoa(i) }
