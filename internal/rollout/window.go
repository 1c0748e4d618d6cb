package rollout

import (
	"sync"
	"time"

	"github.com/umbragw/umbra/internal/stats"
)

// window holds one step's observations of both versions: counts, errors,
// bounded latency samples, and the recent outcomes the burst check reads.
// Memory is fixed by the analysis settings, whatever the traffic.
type window struct {
	mu      sync.Mutex
	live    side
	canary  side
	started time.Time
	burst   bool // the canary's recent errors formed a burst
	sealed  bool // the step is being left: no burst is reported any more
}

type side struct {
	n, errors int64
	latency   *stats.Reservoir
	recent    []bool // ring of the last outcomes, true = error
	next      int
	recentErr int
}

func newWindow(samples, burstWindow int) *window {
	return &window{
		started: time.Now(),
		live:    side{latency: stats.NewReservoir(samples), recent: make([]bool, 0, burstWindow)},
		canary:  side{latency: stats.NewReservoir(samples), recent: make([]bool, 0, burstWindow)},
	}
}

func (s *side) add(failed bool, d time.Duration) {
	s.n++
	if failed {
		s.errors++
	}
	s.latency.Add(float64(d.Microseconds()) / 1000)
	if len(s.recent) < cap(s.recent) {
		s.recent = append(s.recent, failed)
	} else {
		if s.recent[s.next] {
			s.recentErr--
		}
		s.recent[s.next] = failed
		s.next = (s.next + 1) % len(s.recent)
	}
	if failed {
		s.recentErr++
	}
}

func (s *side) recentRate() float64 {
	if len(s.recent) == 0 {
		return 0
	}
	return float64(s.recentErr) / float64(len(s.recent))
}

// observe records one request and reports whether the canary's recent
// errors now form a burst.
func (w *window) observe(canary, failed bool, d time.Duration, b burstRule) (burst bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !canary {
		w.live.add(failed, d)
		return false
	}
	w.canary.add(failed, d)
	if failed && !w.burst && !w.sealed && w.canary.recentErr >= b.minErrors &&
		w.canary.recentRate()-w.live.recentRate() > b.minIncrease {
		w.burst = true
		return true
	}
	return false
}

type burstRule struct {
	minErrors   int
	minIncrease float64
}

// seal ends the window's step: from now on observe reports no burst (the
// next step's window judges what follows). It returns whether a burst was
// reported before, which the controller must act on instead of moving on.
func (w *window) seal() (burst bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sealed = true
	return w.burst
}

// counts is a consistent copy of a window's numbers for the analysis.
type counts struct {
	liveN, liveErr, canaryN, canaryErr int64
	liveMs, canaryMs                   []float64
	elapsed                            time.Duration
	canaryRecentRate, liveRecentRate   float64
	burst                              bool
	// the recent outcomes behind the rates, which a fleet adds up
	liveRecentN, liveRecentErr, canaryRecentN, canaryRecentErr int
}

func (w *window) snapshot() counts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return counts{
		liveN: w.live.n, liveErr: w.live.errors, canaryN: w.canary.n, canaryErr: w.canary.errors,
		liveMs: w.live.latency.Snapshot(), canaryMs: w.canary.latency.Snapshot(),
		elapsed:          time.Since(w.started),
		canaryRecentRate: w.canary.recentRate(), liveRecentRate: w.live.recentRate(),
		burst:       w.burst,
		liveRecentN: len(w.live.recent), liveRecentErr: w.live.recentErr,
		canaryRecentN: len(w.canary.recent), canaryRecentErr: w.canary.recentErr,
	}
}

// markBurst records a burst another replica saw in the same step, so this
// replica keeps the canary at 0 and does not leave the step but by a
// rollback.
func (w *window) markBurst() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.sealed {
		w.burst = true
	}
}

func (w *window) sawBurst() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.burst
}
