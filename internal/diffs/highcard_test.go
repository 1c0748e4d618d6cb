package diffs

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/compare"
)

// highCardinality drives a recorder attached to a real store with answers
// whose every field is new (random object keys, the worst case for the
// per-field counters and samples): each simulated second it compares
// perSecond exchanges over endpoints endpoints and flushes once, as the
// flusher does. It returns the bytes put into bbolt per second, averaged
// over the second half (steady state), the live heap at the end (after a
// GC) and the largest heap seen after a flush.
func highCardinality(tb testing.TB, seconds, perSecond, endpoints int) (bytesPerSec float64, heapLive, heapPeak uint64) {
	tb.Helper()
	r := New(testCfg(), prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.Configure(map[string]*RouteSpec{"api": {Comparator: compare.MustNew(compare.Options{}), Thresholds: compare.DefaultThresholds, Target: "v2"}})
	defer r.Close()
	st := openStore(tb, tb.TempDir())
	defer st.Close()
	if err := r.Attach(st); err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var written int64
	var ms runtime.MemStats
	for sec := range seconds {
		before := st.Written()
		for i := range perSecond {
			live, cand := highCardBodies(rng)
			ex := exch("api", fmt.Sprintf("GET /v1/items/%d", i%endpoints), resp(live), resp(cand), resp(live))
			r.process(ex)
		}
		if err := r.flush(); err != nil {
			tb.Fatal(err)
		}
		if sec >= seconds/2 {
			written += st.Written() - before
		}
		runtime.ReadMemStats(&ms)
		heapPeak = max(heapPeak, ms.HeapAlloc)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return float64(written) / float64(seconds-seconds/2), ms.HeapAlloc, heapPeak
}

// highCardBodies is a live answer and a candidate answer of about 5 KB:
// 40 members under keys never seen before, every value different.
func highCardBodies(rng *rand.Rand) (live, cand string) {
	var l, c strings.Builder
	l.WriteString(`{"items":{`)
	c.WriteString(`{"items":{`)
	for i := range 40 {
		if i > 0 {
			l.WriteByte(',')
			c.WriteByte(',')
		}
		key := fmt.Sprintf("id_%016x", rng.Uint64())
		fmt.Fprintf(&l, `%q:%q`, key, strings.Repeat("a", 100))
		fmt.Fprintf(&c, `%q:%q`, key, strings.Repeat("b", 100))
	}
	l.WriteString(`}}`)
	c.WriteString(`}}`)
	return l.String(), c.String()
}

// BenchmarkHighCardinalityDiffs reports the store write rate and heap of
// high-cardinality differing answers at 1000 comparisons a second over 20
// endpoints (30 simulated seconds per run; figures are bytes, not time,
// so a loaded machine does not change them).
//
//	go test -run '^$' -bench HighCardinalityDiffs -benchtime 1x ./internal/diffs/
func BenchmarkHighCardinalityDiffs(b *testing.B) {
	for range b.N {
		perSec, live, peak := highCardinality(b, 30, 1000, 20)
		b.ReportMetric(perSec/(1<<20), "MiB_written/s")
		b.ReportMetric(float64(live)/(1<<20), "MiB_heap_live")
		b.ReportMetric(float64(peak)/(1<<20), "MiB_heap_peak")
	}
}

// TestHighCardinalityIsBounded: answers whose every field is new no
// longer make each flush rewrite every endpoint's whole record (samples
// included: tens of MB a second) nor grow the heap with them: a flush
// writes at most MaxFlushBytes, and the samples kept stay within their
// budgets.
func TestHighCardinalityIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("drives 900 comparisons")
	}
	perSec, live, _ := highCardinality(t, 6, 150, 20)
	t.Logf("%.2f MiB written a second, %.1f MiB live heap", perSec/(1<<20), float64(live)/(1<<20))
	if perSec > MaxFlushBytes {
		t.Errorf("%.1f MiB written a second, want at most %d MiB (one bounded flush a second)", perSec/(1<<20), MaxFlushBytes>>20)
	}
	if live > 48<<20 {
		t.Errorf("%.1f MiB of live heap, want at most 48 MiB (samples are budgeted to %d MiB)", float64(live)/(1<<20), MaxSampleBytes>>20)
	}
}
