package shadowtest

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// TestQueueBound: a target that blocks every copy, with max_in_flight 2
// and queue_size 4, under a burst of 100 concurrent live requests. Live
// answers all come back at once; the target holds 2 copies, the queue 4,
// the rest are dropped and counted; the queue gauge never passes 4; once
// the target is released everything drains and no goroutine is left.
func TestQueueBound(t *testing.T) {
	base := testkit.Goroutines()
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	target := newUpstream(t, "blocked", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	live := newUpstream(t, "live", nil)
	g := startGW(t, fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  blocked: {endpoints: [%q]}
routes:
  - name: burst
    backend: live
    shadow:
      - backend: blocked
        percent: 100
        max_in_flight: 2
        queue_size: 4
        timeout: 60s
`, live.URL, target.URL))
	const route, tgt, n = "burst", "blocked", 100

	// Watch the gauges while the burst runs.
	var maxQueue, maxInFlight float64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if tm, err := g.TryScrape(); err == nil {
				m := metrics{tm}
				maxQueue = max(maxQueue, m.gauge("umbra_shadow_queue_length", route, tgt))
				maxInFlight = max(maxInFlight, m.gauge("umbra_shadow_in_flight", route, tgt))
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	c := testkit.NewClient(t, n, testkit.Wait.Timeout)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := testkit.Send(c, "GET", g.URL+fmt.Sprint("/b?i=", i), nil)
			switch {
			case err != nil:
				errs <- err.Error()
			case r.Status != 200 || string(r.Body) != "answer from live\n":
				errs <- fmt.Sprintf("status %d body %q", r.Status, r.Body)
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	burst := time.Since(began)
	close(errs)
	for e := range errs {
		t.Errorf("live request: %s", e)
	}
	t.Logf("burst of %d live requests with a blocked shadow: %v", n, burst)
	if burst > 5*time.Second {
		t.Errorf("the burst took %v: live requests waited for the shadow", burst)
	}

	m := g.waitMetrics(t, "2 in flight and 4 queued", func(m metrics) (bool, string) {
		q, f := m.gauge("umbra_shadow_queue_length", route, tgt), m.gauge("umbra_shadow_in_flight", route, tgt)
		return q == 4 && f == 2, fmt.Sprintf("queue %v in flight %v", q, f)
	})
	close(stop)
	<-watched
	o := m.outcomes(route, tgt)
	t.Logf("outcomes while blocked: %v; max queue %v, max in flight %v", o, maxQueue, maxInFlight)
	if o["dropped_queue_full"] < 90 {
		t.Errorf("dropped_queue_full = %v, want >= 90", o["dropped_queue_full"])
	}
	if o["dropped_queue_full"] != n-6 || total(o) != n-6 {
		t.Errorf("outcomes %v: want dropped_queue_full 94 and nothing else yet (2 in flight, 4 waiting)", o)
	}
	if maxQueue > 4 {
		t.Errorf("umbra_shadow_queue_length reached %v, want at most queue_size 4", maxQueue)
	}
	if maxInFlight > 2 {
		t.Errorf("umbra_shadow_in_flight reached %v, want at most max_in_flight 2", maxInFlight)
	}
	if got := target.Hits.Load(); got != 2 {
		t.Errorf("blocked target holds %d copies, want max_in_flight 2", got)
	}
	warns := g.Log.Lines("level=WARN", "target=blocked")
	if len(warns) != 1 || !strings.Contains(warns[0], "queue full") {
		t.Errorf("warnings %q, want one queue-full line", warns)
	}

	// Release: the 2 in flight and the 4 queued are answered.
	unblock()
	m = g.settled(t, route, tgt)
	if o := m.outcomes(route, tgt); o["ok"] != 6 || total(o) != n {
		t.Errorf("after release: %v, want 6 ok and 94 dropped_queue_full", o)
	}
	if got := target.Hits.Load(); got != 6 {
		t.Errorf("target got %d copies, want 6", got)
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
