package shadowtest

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// reloadConfig: route "main" shadows to "v2" (with a header match using a
// regex, so keeping the target depends on comparing compiled config);
// "other" is an unrelated route whose prefix the reloads change.
func reloadConfig(live, v2, otherPrefix, timeout string) string {
	return fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: main
    match: {path_prefix: /main}
    backend: live
    shadow:
      - backend: v2
        percent: 100
        timeout: %s
        max_in_flight: 4
        breaker: {failures: 2, open_for: 1h}
        match:
          headers: [{name: X-Shadow-Me, regex: "^y"}]
  - name: other
    match: {path_prefix: %s}
    backend: live
`, live, v2, timeout, otherPrefix)
}

// TestReloadKeepsUnchangedTarget: a reload that changes only an unrelated
// route keeps the running shadow target (its open breaker survives); a
// reload that changes the target replaces it with a fresh one whose
// metrics are visible; twenty replacing reloads leak no goroutine.
func TestReloadKeepsUnchangedTarget(t *testing.T) {
	base := testkit.Goroutines()
	var healthy atomic.Bool
	v2 := newUpstream(t, "v2", func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, "v2")
	})
	live := newUpstream(t, "live", nil)
	g := startGW(t, reloadConfig(live.URL, v2.URL, "/other", "5s"))
	c := testkit.NewClient(t, 2, testkit.Wait.Timeout)
	get := func() {
		t.Helper()
		if r := testkit.Do(t, c, "GET", g.URL+"/main/x", nil, "X-Shadow-Me", "yes"); r.Status != 200 {
			t.Fatalf("live status %d", r.Status)
		}
	}
	// Two failures open the breaker for an hour.
	get()
	g.waitShadow(t, "main", "v2", "status_5xx", eq(1), "")
	get()
	g.waitShadow(t, "main", "v2", "status_5xx", eq(2), "")
	g.waitMetrics(t, "breaker open", func(m metrics) (bool, string) {
		v := m.gauge("umbra_shadow_circuit_open", "main", "v2")
		return v == 1, fmt.Sprint(v)
	})
	healthy.Store(true)

	// Reload changing only the other route: same target, still open.
	g.Reconfigure(t, reloadConfig(live.URL, v2.URL, "/other2", "5s"))
	if r := testkit.Do(t, c, "GET", g.URL+"/other2/x", nil); r.Status != 200 {
		t.Fatalf("the reload did not apply: /other2 answered %d", r.Status)
	}
	get()
	m := g.waitShadow(t, "main", "v2", "skipped_circuit_open", eq(1), "breaker still open after the reload")
	if n := v2.Hits.Load(); n != 2 {
		t.Errorf("v2 got %d copies; its open breaker was lost in the reload", n)
	}
	if v := m.gauge("umbra_shadow_circuit_open", "main", "v2"); v != 1 {
		t.Errorf("circuit gauge %v after the reload, want 1", v)
	}
	if o := m.outcomes("main", "v2"); o["status_5xx"] != 2 {
		t.Errorf("counters did not survive the reload: %v", o)
	}

	// A reload changing the target replaces it: a fresh breaker, closed.
	g.Reconfigure(t, reloadConfig(live.URL, v2.URL, "/other2", "4s"))
	// Wait for the old target to be gone before looking at metrics.
	time.Sleep(100 * time.Millisecond)
	get()
	waitHits(t, v2, 3)
	m = g.waitShadow(t, "main", "v2", "ok", atLeast(1), "the new target's copy counted")
	if v := m.gauge("umbra_shadow_circuit_open", "main", "v2"); v != 0 {
		t.Errorf("circuit gauge %v for the new target, want 0", v)
	}

	// Twenty replacing reloads with traffic in between leak nothing.
	steady := testkit.Goroutines()
	for i := 0; i < 20; i++ {
		g.Reconfigure(t, reloadConfig(live.URL, v2.URL, "/other2", fmt.Sprintf("%ds", 10+i)))
		get()
		waitHits(t, v2, int64(4+i))
	}
	c.CloseIdleConnections()
	testkit.WaitGoroutines(t, steady, "after 20 replacing reloads")
	g.settled(t, "main", "v2")

	if err := g.Stop(); err != nil {
		t.Error(err)
	}
	live.Close()
	v2.Close()
	testkit.WaitGoroutines(t, base, "after shutdown")
}

func waitHits(t *testing.T, u *testkit.Upstream, n int64) {
	t.Helper()
	deadline := time.Now().Add(testkit.Wait.Timeout)
	for u.Hits.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s got %d requests, want %d", u.Name, u.Hits.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReloadDropsQueuedCopies: replacing a target whose copies are still
// queued drops them (dropped_shutdown), cancels the one in flight, and
// the queue gauge does not keep counting the dropped copies.
func TestReloadDropsQueuedCopies(t *testing.T) {
	base := testkit.Goroutines()
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	v2 := newUpstream(t, "v2", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	live := newUpstream(t, "live", nil)
	cfg := func(timeout string) string {
		return fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: main
    backend: live
    shadow:
      - {backend: v2, percent: 100, max_in_flight: 1, queue_size: 3, timeout: %s}
`, live.URL, v2.URL, timeout)
	}
	g := startGW(t, cfg("30s"))
	c := testkit.NewClient(t, 2, testkit.Wait.Timeout)
	for i := 0; i < 4; i++ {
		testkit.Do(t, c, "GET", g.URL+"/x", nil)
	}
	g.waitMetrics(t, "1 in flight, 3 queued", func(m metrics) (bool, string) {
		q, f := m.gauge("umbra_shadow_queue_length", "main", "v2"), m.gauge("umbra_shadow_in_flight", "main", "v2")
		return q == 3 && f == 1, fmt.Sprintf("queue %v in flight %v", q, f)
	})
	g.Reconfigure(t, cfg("29s"))
	g.waitShadow(t, "main", "v2", "dropped_shutdown", eq(3), "the queued copies of the replaced target")
	m := g.waitMetrics(t, "gauges back to 0", func(m metrics) (bool, string) {
		q, f := m.gauge("umbra_shadow_queue_length", "main", "v2"), m.gauge("umbra_shadow_in_flight", "main", "v2")
		return q == 0 && f == 0, fmt.Sprintf("queue %v in flight %v outcomes %v", q, f, m.outcomes("main", "v2"))
	})
	// The copy in flight is cancelled: it ends as error_canceled (sent,
	// then the target's context was cancelled), never as ok, and it does
	// not count against the target's health.
	if o := m.outcomes("main", "v2"); total(o) != 4 || o["error_canceled"] != 1 || o["dropped_shutdown"] != 3 {
		t.Errorf("outcomes %v: want the copy in flight cancelled", o)
	} else {
		t.Logf("outcomes after replacing a busy target: %v", o)
	}
	unblock()
	// The new target works and counts on the same series.
	testkit.Do(t, c, "GET", g.URL+"/x", nil)
	g.waitShadow(t, "main", "v2", "ok", eq(1), "the new target's copy")

	// Close the client's idle connections first: a pooled connection
	// that never carried a request holds Shutdown for 5 s.
	c.CloseIdleConnections()
	if err := g.Stop(); err != nil {
		t.Error(err)
	}
	live.Close()
	v2.Close()
	testkit.WaitGoroutines(t, base, "after shutdown")
}

// TestReloadDuringLiveRequest: a live request still running on the old
// snapshot when a reload replaces its shadow target finishes after the old
// target closed. Its copy must not be sent, and must not stay counted in
// the queue forever: the queue gauge returns to 0 and every queued copy
// gets a final outcome (sent or dropped_shutdown).
func TestReloadDuringLiveRequest(t *testing.T) {
	entered := make(chan struct{}, 1)
	finish := make(chan struct{})
	live := newUpstream(t, "live", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-finish
		}
		_, _ = io.WriteString(w, "live")
	})
	v2 := newUpstream(t, "v2", nil)
	cfg := func(timeout string) string {
		return fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: main
    backend: live
    shadow:
      - {backend: v2, percent: 100, timeout: %s}
`, live.URL, v2.URL, timeout)
	}
	g := startGW(t, cfg("5s"))
	c := testkit.NewClient(t, 2, testkit.Wait.Timeout)
	done := make(chan testkit.Response, 1)
	go func() {
		r, _ := testkit.Send(c, "GET", g.URL+"/slow", nil)
		done <- r
	}()
	select {
	case <-entered:
	case <-time.After(testkit.Wait.Timeout):
		t.Fatal("live request did not arrive")
	}
	// A request running for more than 10 ms has a goroutine watching for
	// the client hanging up (h1server.Server.WatchAfter): it belongs to the
	// baseline.
	time.Sleep(50 * time.Millisecond)
	steady := testkit.Goroutines()
	g.Reconfigure(t, cfg("4s"))                            // replaces the target; the old one closes
	testkit.WaitGoroutines(t, steady, "old target closed") // its senders are gone
	close(finish)
	if r := <-done; r.Status != 200 {
		t.Fatalf("live request across the reload: %d", r.Status)
	}
	// The copy is dispatched after the live answer was written.
	// Its outcome is dropped_shutdown: nothing takes it off the closed
	// target's queue but the target itself.
	g.waitShadow(t, "main", "v2", "dropped_shutdown", eq(1), "the late copy")
	time.Sleep(100 * time.Millisecond)
	m := g.scrape(t)
	o := m.outcomes("main", "v2")
	t.Logf("outcomes: %v, queue %v", o, m.gauge("umbra_shadow_queue_length", "main", "v2"))
	if q := m.gauge("umbra_shadow_queue_length", "main", "v2"); q != 0 {
		t.Errorf("BUG: umbra_shadow_queue_length stuck at %v: a copy enqueued on the closed target is never dequeued", q)
	}
	if total(o) != m.liveRequests("main") {
		t.Errorf("BUG: outcomes %v: a copy got no final outcome", o)
	}
	if n := v2.Hits.Load(); n != 0 {
		t.Errorf("the closed target sent %d copies", n)
	}
	// The new target serves the next request.
	testkit.Do(t, c, "GET", g.URL+"/next", nil)
	g.waitShadow(t, "main", "v2", "ok", eq(1), "the new target's copy")
}
