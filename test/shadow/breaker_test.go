package shadowtest

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// TestCircuitBreaker: consecutive failures open the breaker, copies are
// then skipped on the live path (skipped_circuit_open) without reaching the
// target; after open_for one probe goes through: a failed probe opens it
// again, a successful one closes it and copies flow again.
func TestCircuitBreaker(t *testing.T) {
	base := testkit.Goroutines()
	var healthy atomic.Bool
	target := newUpstream(t, "flaky", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if !healthy.Load() {
			http.Error(w, "v2 is broken", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	live := newUpstream(t, "live", nil)
	g := startGW(t, fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  flaky: {endpoints: [%q]}
routes:
  - name: r
    backend: live
    shadow:
      - backend: flaky
        percent: 100
        breaker: {failures: 3, open_for: 500ms}
`, live.URL, target.URL))
	began := time.Now()
	c := testkit.NewClient(t, 2, testkit.Wait.Timeout)
	const route, tgt = "r", "flaky"
	get := func(i int) {
		t.Helper()
		if r := testkit.Do(t, c, "GET", g.URL+fmt.Sprint("/x?i=", i), nil); r.Status != 200 || string(r.Body) != "answer from live\n" {
			t.Fatalf("live answer %d %q", r.Status, r.Body)
		}
	}
	circuit := func(m metrics) float64 { return m.gauge("umbra_shadow_circuit_open", route, tgt) }

	// Three consecutive 5xx answers open the breaker. The breaker records
	// a result just after counting it: it opened after "before" (the third
	// request was sent) and before "after" (the gauge showed it).
	for i := 1; i <= 2; i++ {
		get(i)
		g.waitShadow(t, route, tgt, "status_5xx", eq(float64(i)), "one more 5xx")
	}
	before := time.Now()
	get(3)
	m := g.waitMetrics(t, "circuit gauge 1", func(m metrics) (bool, string) { return circuit(m) == 1, fmt.Sprint(circuit(m)) })
	after := time.Now()
	if o := m.outcomes(route, tgt); sent(o) != 3 || total(o) != 3 || o["status_5xx"] != 3 {
		t.Fatalf("outcomes %v, want 3 copies sent, 3 status_5xx", o)
	}

	// Open: copies are skipped on the live path and never reach the target.
	for i := 0; i < 5; i++ {
		get(100 + i)
	}
	m = g.scrape(t)
	if time.Since(before) < 450*time.Millisecond { // else the machine was too slow to tell
		if o := m.outcomes(route, tgt); o["skipped_circuit_open"] != 5 || sent(o) != 3 || m.gauge("umbra_shadow_queue_length", route, tgt) != 0 {
			t.Errorf("outcomes %v while open: want 5 skipped_circuit_open and nothing more sent or queued", o)
		}
		if n := target.Hits.Load(); n != 3 {
			t.Errorf("target got %d copies while its breaker was open, want 3", n)
		}
	} else {
		t.Logf("too slow (%v) for the strict open-state check", time.Since(before))
	}

	// Half-open with the target still failing: one probe, it fails, the
	// breaker opens again.
	time.Sleep(time.Until(after.Add(550 * time.Millisecond)))
	hitsBefore := target.Hits.Load()
	skipped := g.scrape(t).shadow(route, tgt, "skipped_circuit_open")
	before = time.Now()
	get(200)
	get(201) // while the probe runs or after it failed: skipped either way
	g.waitShadow(t, route, tgt, "status_5xx", eq(4), "the failed probe")
	m = g.waitShadow(t, route, tgt, "skipped_circuit_open", eq(skipped+1), "the copy after the probe skipped")
	if n := target.Hits.Load(); n != hitsBefore+1 {
		t.Errorf("half-open let %d copies through, want exactly the probe", n-hitsBefore)
	}
	if circuit(m) != 1 {
		t.Errorf("circuit gauge %v after a failed probe, want 1", circuit(m))
	}

	// The target recovers: a later probe succeeds and closes the breaker.
	healthy.Store(true)
	deadline := time.Now().Add(testkit.Wait.Timeout)
	for g.scrape(t).shadow(route, tgt, "ok") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no successful probe after the target recovered")
		}
		if time.Since(before) > 500*time.Millisecond {
			get(300)
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.waitMetrics(t, "circuit gauge 0", func(m metrics) (bool, string) { return circuit(m) == 0, fmt.Sprint(circuit(m)) })
	g.quiet(t, route, tgt)
	m = g.scrape(t)
	skipped, ok := m.shadow(route, tgt, "skipped_circuit_open"), m.shadow(route, tgt, "ok")
	for i := 0; i < 10; i++ {
		get(400 + i)
	}
	m = g.waitShadow(t, route, tgt, "ok", eq(ok+10), "copies flowing again")
	if got := m.shadow(route, tgt, "skipped_circuit_open"); got != skipped {
		t.Errorf("closed breaker still skipping: %v -> %v", skipped, got)
	}
	if o := m.outcomes(route, tgt); o["status_5xx"] != 4 {
		t.Errorf("outcomes %v, want 4 status_5xx", o)
	}
	// 5xx answers are answers: role=shadow counts them by code.
	if v, _ := m.Sum("umbra_requests_total", testkit.Labels("route", route, "role", "shadow", "code", "500")); v != 4 {
		t.Errorf(`umbra_requests_total{role="shadow",code="500"} = %v, want 4`, v)
	}
	warns := g.Log.Lines("level=WARN", "target=flaky")
	if len(warns) != 1 && time.Since(began) < 10*time.Second {
		t.Errorf("%d warnings for the target, want 1 (one per 10 s):\n%v", len(warns), warns)
	}

	// Close the client's idle connections first: a pooled connection
	// that never carried a request holds Shutdown for 5 s.
	c.CloseIdleConnections()
	if err := g.Stop(); err != nil {
		t.Error(err)
	}
	live.Close()
	target.Close()
	testkit.WaitGoroutines(t, base, "after shutdown")
}
