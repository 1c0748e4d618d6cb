package testkit

import (
	"fmt"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Recv waits up to Wait.Timeout for a value on ch, failing the test after.
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Wait.Timeout):
		t.Fatalf("timed out after %v waiting for %s", Wait.Timeout, what)
		panic("unreachable")
	}
}

// Goroutines returns runtime.NumGoroutine once it has been stable for a
// moment (goroutines of finished tests may still be exiting).
func Goroutines() int {
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

// WaitGoroutines polls until the goroutine count is back to at most base
// and dumps the goroutines when it is not within Wait.Timeout.
func WaitGoroutines(t testing.TB, base int, when string) {
	t.Helper()
	deadline := time.Now().Add(Wait.Timeout)
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
		time.Sleep(10 * time.Millisecond)
	}
}

// Parallel calls fn(i) for i in [0, n) on workers goroutines and waits.
func Parallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// Loop calls fn(i) with i = 0, 1, ... on workers goroutines (each call
// after the previous one of its goroutine; every gap apart when gap > 0)
// until Stop, which cleanup calls at the latest.
type Loop struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// StartLoop starts the loop; fn sees a stop channel to end a wait early.
func StartLoop(t testing.TB, workers int, gap time.Duration, fn func(i int, stop <-chan struct{})) *Loop {
	l := &Loop{stop: make(chan struct{})}
	var seq atomic.Int64
	for range workers {
		l.wg.Go(func() {
			var tick <-chan time.Time
			if gap > 0 {
				tk := time.NewTicker(gap)
				defer tk.Stop()
				tick = tk.C
			}
			for {
				if tick != nil {
					select {
					case <-l.stop:
						return
					case <-tick:
					}
				} else {
					select {
					case <-l.stop:
						return
					default:
					}
				}
				fn(int(seq.Add(1)-1), l.stop)
			}
		})
	}
	t.Cleanup(l.Stop)
	return l
}

// Stop ends the loop and waits for its goroutines.
func (l *Loop) Stop() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// Latency summarizes durations: median, 99th percentile and maximum.
type Latency struct{ Median, P99, Max time.Duration }

// Summarize computes the Latency of d (which it does not modify).
func Summarize(d []time.Duration) Latency {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return Latency{}
	}
	return Latency{Median: percentile(s, 0.5), P99: percentile(s, 0.99), Max: s[len(s)-1]}
}

// percentile returns the p-th percentile (0 < p <= 1) of sorted durations,
// by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (l Latency) String() string {
	return fmt.Sprintf("median %v p99 %v max %v", l.Median.Round(time.Microsecond), l.P99.Round(time.Microsecond), l.Max.Round(time.Microsecond))
}
