package shadowtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// isolationRequests is N of the issue: sequential live requests measured
// per route, with and without a shadow.
const isolationRequests = 200

// The latency bounds are deliberately generous: they do not time the
// gateway, they prove the live path never waits for a shadow (a 100 ms
// timeout or a 200 ms answer would blow through them).
const (
	slackMedian = 5 * time.Millisecond
	slackP99    = 20 * time.Millisecond
)

// isolationConfig has two routes on the same live backend: /base without
// a shadow (the baseline) and /s with a 100% shadow to the bad target.
func isolationConfig(live, shadow, extra string) string {
	return fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  shadow: {endpoints: [%q]}
routes:
  - name: base
    match: {path_prefix: /base}
    backend: live
  - name: shadowed
    match: {path_prefix: /s}
    backend: live
    shadow:
      - backend: shadow
        percent: 100
%s`, live, shadow, extra)
}

// measure sends isolationRequests GETs to /base and to /s, interleaved so
// both see the same machine, checks every answer against the live
// backend's, and returns the latencies.
func measure(t *testing.T, g *gw, c *http.Client, want []byte) (base, shadowed testkit.Latency) {
	t.Helper()
	var db, ds []time.Duration
	for i := 0; i < isolationRequests; i++ {
		for _, p := range []string{"/base/x", "/s/x"} {
			start := time.Now()
			r := testkit.Do(t, c, "GET", g.URL+p+fmt.Sprint("?i=", i), nil)
			d := time.Since(start)
			if r.Status != http.StatusOK || !bytes.Equal(r.Body, want) {
				t.Fatalf("GET %s #%d: status %d body %q; want 200 %q (the live answer)", p, i, r.Status, r.Body, want)
			}
			if p == "/s/x" {
				ds = append(ds, d)
			} else {
				db = append(db, d)
			}
		}
	}
	return testkit.Summarize(db), testkit.Summarize(ds)
}

// assertNotDegraded measures, and measures again (at most four times in
// all) when a bound is missed, so that one scheduling hiccup on a shared
// machine does not fail the test; a shadow that holds the live request
// misses the bounds every time.
func assertNotDegraded(t *testing.T, name string, g *gw, c *http.Client, want []byte) {
	t.Helper()
	var msgs []string
	for attempt := 1; attempt <= 4; attempt++ {
		b, s := measure(t, g, c, want)
		msg := fmt.Sprintf("%-9s attempt %d: no shadow %v | with shadow %v", name, attempt, b, s)
		t.Log(msg)
		msgs = append(msgs, msg)
		if s.P99 < b.P99+slackP99 && s.Median < b.Median+slackMedian {
			return
		}
	}
	t.Errorf("live latency degraded by the shadow (want p99 < base p99 + %v and median < base median + %v):\n%s",
		slackP99, slackMedian, strings.Join(msgs, "\n"))
}

// badTarget is one kind of shadow target.
type badTarget struct {
	name  string
	start func(t *testing.T) (url string, stop func())
	extra string // more YAML for the shadow entry
	check func(t *testing.T, g *gw, began time.Time)
}

// TestIsolation is the first "done when": for each kind of bad
// shadow target, live answers are the same as without a shadow and not
// slower, the right outcome counters move, and no goroutine outlives the
// gateway.
func TestIsolation(t *testing.T) {
	const breaker = "        timeout: 100ms\n        breaker: {failures: 3, open_for: 500ms}\n"
	cases := []badTarget{
		{
			name:  "healthy",
			start: func(t *testing.T) (string, func()) { u := newUpstream(t, "shadow", nil); return u.URL, u.Close },
			check: func(t *testing.T, g *gw, began time.Time) {
				m := g.settled(t, "shadowed", "shadow")
				o := m.outcomes("shadowed", "shadow")
				// Warm-up and retries may add measurement rounds: every round
				// sends isolationRequests copies.
				n := total(o)
				if n < isolationRequests || int(n)%isolationRequests != 0 || o["ok"] != n {
					t.Errorf("healthy shadow outcomes %v: want every request ok, a multiple of %d", o, isolationRequests)
				}
				for _, bad := range []string{"dropped_queue_full", "error_connect", "error_timeout", "error_reset", "error_other", "skipped_circuit_open", "not_sampled"} {
					if o[bad] != 0 {
						t.Errorf("healthy shadow counted %s = %v", bad, o[bad])
					}
				}
				// role=shadow request metrics and access log lines.
				if v, _ := m.Sum("umbra_requests_total", testkit.Labels("route", "shadowed", "backend", "shadow", "role", "shadow", "method", "GET", "code", "200")); v != n {
					t.Errorf(`umbra_requests_total{role="shadow",code="200"} = %v, want %v`, v, n)
				}
				if v, _ := m.Sum("umbra_request_duration_seconds_count", testkit.Labels("route", "shadowed", "role", "shadow")); v != n {
					t.Errorf(`umbra_request_duration_seconds_count{role="shadow"} = %v, want %v`, v, n)
				}
				if v, _ := m.Sum("umbra_requests_total", testkit.Labels("route", "shadowed", "backend", "live", "role", "live")); v != n {
					t.Errorf(`umbra_requests_total{route="shadowed",role="live"} = %v, want %v`, v, n)
				}
				if got := len(g.Log.Lines("msg=access", "role=shadow", "route=shadowed", "backend=shadow", "status=200")); got != int(n) {
					t.Errorf("%d shadow access-log lines, want %v", got, n)
				}
				if got := len(g.Log.Lines("msg=access", "role=live", "route=shadowed")); got != int(n) {
					t.Errorf("%d live access-log lines of the shadowed route, want %v", got, n)
				}
				if m.gauge("umbra_shadow_circuit_open", "shadowed", "shadow") != 0 {
					t.Error("circuit open for a healthy target")
				}
			},
		},
		{
			name: "slow",
			start: func(t *testing.T) (string, func()) {
				u := newUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-time.After(200 * time.Millisecond):
						_, _ = io.WriteString(w, "slow")
					case <-r.Context().Done():
					}
				})
				return u.URL, u.Close
			},
			extra: "        timeout: 2s\n",
			check: func(t *testing.T, g *gw, began time.Time) {
				// The target recovers (answers everything it was given).
				m := g.settled(t, "shadowed", "shadow")
				o := m.outcomes("shadowed", "shadow")
				t.Logf("outcomes: %v", o)
				if o["ok"] == 0 || o["ok"] != sent(o) || o["error_timeout"] != 0 {
					t.Errorf("slow shadow outcomes %v: want every sent copy ok", o)
				}
				if o["ok"]+o["dropped_queue_full"] != total(o) || total(o) < isolationRequests {
					t.Errorf("slow shadow outcomes %v: want ok + dropped_queue_full = all %d or more requests", o, isolationRequests)
				}
			},
		},
		{
			name:  "dead",
			start: func(t *testing.T) (string, func()) { return "http://" + testkit.DeadAddr(t), func() {} },
			extra: breaker,
			check: func(t *testing.T, g *gw, began time.Time) { checkFailing(t, g, began, "error_connect") },
		},
		{
			name: "hanging",
			start: func(t *testing.T) (string, func()) {
				// Accepts and then never reads nor writes: the connection stays
				// open until the gateway gives up (or the server closes).
				s := testkit.NewRawServer(t, func(net.Conn) {})
				return s.URL(), s.Close
			},
			extra: breaker,
			check: func(t *testing.T, g *gw, began time.Time) { checkFailing(t, g, began, "error_timeout") },
		},
		{
			name: "reset",
			start: func(t *testing.T) (string, func()) {
				s := testkit.NewRawServer(t, func(c net.Conn) {
					_ = c.SetReadDeadline(time.Now().Add(time.Second))
					_, _ = bufio.NewReader(c).ReadString('\n') // the request line
					_ = c.(*net.TCPConn).SetLinger(0)          // close with RST
					c.Close()
				})
				return s.URL(), s.Close
			},
			extra: breaker,
			check: func(t *testing.T, g *gw, began time.Time) { checkFailing(t, g, began, "error_reset", "error_other") },
		},
		{
			name: "garbage",
			start: func(t *testing.T) (string, func()) {
				s := testkit.NewRawServer(t, func(c net.Conn) {
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(time.Second))
					br := bufio.NewReader(c)
					for {
						line, err := br.ReadString('\n')
						if err != nil || line == "\r\n" {
							break
						}
					}
					_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 definitely not HTTP\r\n\r\n")
				})
				return s.URL(), s.Close
			},
			extra: breaker,
			check: func(t *testing.T, g *gw, began time.Time) { checkFailing(t, g, began, "error_other", "error_reset") },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := testkit.Goroutines()
			live := newUpstream(t, "live", nil)
			want := []byte("answer from live\n")
			target, stop := tc.start(t)
			began := time.Now()
			g := startGW(t, isolationConfig(live.URL, target, tc.extra))
			c := testkit.NewClient(t, 4, testkit.Wait.Timeout)
			// Warm the client's and the live backend's connections on the
			// baseline route only: the shadow's first copies are measured.
			for i := 0; i < 20; i++ {
				testkit.Do(t, c, "GET", g.URL+"/base/warm", nil)
			}
			assertNotDegraded(t, tc.name, g, c, want)
			tc.check(t, g, began)

			// Close the client's idle connections first: a pooled connection
			// that never carried a request holds Shutdown for 5 s.
			c.CloseIdleConnections()
			if err := g.Stop(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			live.Close()
			stop()
			testkit.WaitGoroutines(t, base, "after shutdown")
		})
	}

	t.Run("missing-backend", func(t *testing.T) {
		testMissingShadowBackend(t)
	})
}

// checkFailing checks a target that fails every copy with one of kinds:
// the error was counted, the breaker (failures: 3) opened and skipped the
// rest on the live path, the gauge shows it, and the warnings were
// rate-limited to one line for the whole run.
func checkFailing(t *testing.T, g *gw, began time.Time, kinds ...string) {
	t.Helper()
	m := g.quiet(t, "shadowed", "shadow")
	o := m.outcomes("shadowed", "shadow")
	t.Logf("outcomes: %v", o)
	errs := 0.0
	for _, k := range kinds {
		errs += o[k]
	}
	if errs < 3 || errs != sent(o) || o["ok"] != 0 {
		t.Errorf("outcomes %v: want every sent copy (at least 3) counted as %v", o, kinds)
	}
	if o[kinds[0]] == 0 {
		t.Errorf("outcomes %v: want %s", o, kinds[0])
	}
	if o["skipped_circuit_open"] < isolationRequests/2 {
		t.Errorf("outcomes %v: breaker (failures: 3) should skip most copies", o)
	}
	if v := m.gauge("umbra_shadow_circuit_open", "shadowed", "shadow"); v != 1 {
		t.Errorf("umbra_shadow_circuit_open = %v, want 1 (no copy ever succeeded)", v)
	}
	if v, _ := m.Sum("umbra_upstream_errors_total", testkit.Labels("route", "shadowed", "backend", "shadow", "role", "shadow")); v != errs {
		t.Errorf(`umbra_upstream_errors_total{role="shadow"} = %v, want %v`, v, errs)
	}
	if v, _ := m.Sum("umbra_upstream_errors_total", testkit.Labels("role", "live")); v != 0 {
		t.Errorf("live upstream errors: %v", v)
	}
	warns := g.Log.Lines("level=WARN", "target=shadow")
	if allowed := 1 + int(time.Since(began)/(10*time.Second)); len(warns) < 1 || len(warns) > allowed {
		t.Errorf("%d warning lines for the target in %v, want 1 per 10 s:\n%s", len(warns), time.Since(began), strings.Join(warns, "\n"))
	} else if !strings.Contains(warns[0], "shadow copy failed") {
		t.Errorf("first warning %q, want the copy failure", warns[0])
	}
	if got := len(g.Log.Lines("msg=access", "role=shadow")); float64(got) != sent(o) {
		t.Errorf("%d shadow access-log lines, want one per sent copy (%v)", got, sent(o))
	}
}
