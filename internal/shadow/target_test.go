package shadow

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/metrics"
)

// value reads one counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// count returns how many series a collector exports.
func count(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 1024)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

// queueLength is the one umbra_shadow_queue_length series a scrape of mm
// sees, and false when there is none.
func queueLength(t *testing.T, mm *Metrics) (float64, bool) {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	queueLengths{mm}.Collect(ch)
	close(ch)
	switch len(ch) {
	case 0:
		return 0, false
	case 1:
		return value(<-ch), true
	}
	t.Fatalf("%d queue length series, want one", len(ch))
	return 0, false
}

// newTestTarget starts a target on a fresh registry.
func newTestTarget(t *testing.T, mm *Metrics, m *metrics.Metrics, url string, inFlight, queue int) *Target {
	t.Helper()
	cfg := &config.Shadow{Backend: "v2", Percent: 100, Unsafe: "skip", MaxBody: 1 << 20,
		Timeout: config.Duration(10e9), MaxInFlight: inFlight, QueueSize: queue,
		Breaker: config.Breaker{Failures: 5, OpenFor: config.Duration(10e9)}}
	bc := &config.Backend{Name: "v2", Endpoints: []string{url}}
	tg, err := NewTarget("r", cfg, bc, mm, m.Path("r", "v2", metrics.RoleShadow), slog.New(slog.NewTextHandler(io.Discard, nil)), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func newJob(path string) *job {
	r, _ := http.NewRequest("GET", "http://x"+path, nil)
	r.Host = "x"
	return &job{req: r}
}

// counted reads a target's own counter (Close deletes the exported series
// of a target nobody replaced, so the registry no longer has them).
func counted(tg *Target, o outcome) float64 {
	return value(tg.m.outcome[o])
}

// TestTargetQueueAndClose: a full queue drops (dropped_queue_full), Close
// drops what is queued (dropped_shutdown), cancels the copy in flight, and
// a copy enqueued after Close (a handler of an older snapshot) is dropped
// too rather than left in the queue.
func TestTargetQueueAndClose(t *testing.T) {
	block := make(chan struct{})
	entered := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	m := metrics.New("t")
	mm := NewMetrics(m.Registry())
	tg := newTestTarget(t, mm, m, srv.URL, 1, 2)

	tg.enqueue(newJob("/1"))
	<-entered // the sender holds copy 1
	tg.enqueue(newJob("/2"))
	tg.enqueue(newJob("/3"))
	tg.enqueue(newJob("/4")) // queue (2) full
	if got := counted(tg, outcomeQueueFull); got != 1 {
		t.Fatalf("dropped_queue_full = %v, want 1", got)
	}
	if got, ok := queueLength(t, mm); got != 2 || !ok {
		t.Fatalf("queue length %v (exported %v), want 2", got, ok)
	}
	tg.Close()
	if got := counted(tg, outcomeShutdown); got != 2 {
		t.Errorf("dropped_shutdown = %v after Close, want the 2 queued", got)
	}
	if got, ok := queueLength(t, mm); ok || len(tg.queue) != 0 {
		t.Errorf("queue length %v (exported %v, len %d) after Close, want an empty queue and no series", got, ok, len(tg.queue))
	}
	if got := value(tg.m.inFlight); got != 0 {
		t.Errorf("in-flight gauge %v after Close, want 0", got)
	}
	// Late copy from a handler of the previous snapshot.
	tg.enqueue(newJob("/late"))
	if got := counted(tg, outcomeShutdown); got != 3 {
		t.Errorf("dropped_shutdown = %v after a late enqueue, want 3", got)
	}
	if len(tg.queue) != 0 {
		t.Errorf("late copy left in the queue (len %d)", len(tg.queue))
	}
}

// TestTargetCloseRaceWithEnqueue: handlers enqueueing while Close runs
// leave nothing behind: every copy ends sent, dropped at shutdown or
// dropped because the queue was full, and is counted once.
func TestTargetCloseRaceWithEnqueue(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	for round := 0; round < 20; round++ {
		m := metrics.New("t")
		mm := NewMetrics(m.Registry())
		tg := newTestTarget(t, mm, m, srv.URL, 2, 8)
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					tg.enqueue(newJob("/x"))
				}
			}()
		}
		tg.Close()
		wg.Wait()
		// Each copy is counted once, under its final outcome.
		total, seen := 0.0, map[outcome]float64{}
		for o := range numOutcomes {
			if v := counted(tg, o); v != 0 {
				total += v
				seen[o] = v
			}
		}
		if total != 100 {
			t.Fatalf("round %d: outcomes %v add up to %v, want the 100 copies", round, seen, total)
		}
		if len(tg.queue) != 0 {
			t.Fatalf("round %d: %d copies left in the queue", round, len(tg.queue))
		}
	}
}

// TestMetricsSharedAcrossReplacement: a reload binds the replacing target
// before closing the old one; closing the old one must not delete the
// series the new one counts on. The last user deletes them.
func TestMetricsSharedAcrossReplacement(t *testing.T) {
	reg := prometheus.NewRegistry()
	mm := NewMetrics(reg)
	oldQueue, replQueue := make(chan *job, 4), make(chan *job, 4)
	old := mm.bind("r", "v2", oldQueue)
	repl := mm.bind("r", "v2", replQueue)
	oldQueue <- &job{}
	replQueue <- &job{}
	replQueue <- &job{}
	if got, _ := queueLength(t, mm); got != 3 {
		t.Fatalf("queue length %v while both targets are bound, want 3 (both queues)", got)
	}
	old.outcome[outcomeOK].Inc()
	mm.forget("r", "v2", oldQueue) // the old target closes
	repl.outcome[outcomeOK].Inc()
	if got, _ := queueLength(t, mm); got != 2 {
		t.Fatalf("queue length %v after the old target closed, want the replacement's 2", got)
	}
	if n := count(mm.requests); n != int(numOutcomes) {
		t.Fatalf("%d outcome series after the old target closed, want %d", n, numOutcomes)
	}
	if got := value(mm.requests.WithLabelValues("r", "v2", outcomeOK.String())); got != 2 {
		t.Fatalf("ok = %v, want 2 (counting continues across the replacement)", got)
	}
	mm.forget("r", "v2", replQueue) // the route is removed
	for _, c := range []prometheus.Collector{mm.requests, mm.inFlight, queueLengths{mm}, mm.breaker} {
		if n := count(c); n != 0 {
			t.Fatalf("%d series left after the last target closed", n)
		}
	}
}
