package rollout

import (
	"math"
	"testing"
	"time"
)

func fill(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func count(xs []float64, v float64) int {
	n := 0
	for _, x := range xs {
		if x == v {
			n++
		}
	}
	return n
}

// Each replica weighs by the requests it saw, not by its sample's size.
func TestMergeSamplesProportional(t *testing.T) {
	got := mergeSamples([]sideSet{{1000, fill(100, 1)}, {100, fill(100, 2)}}, 110)
	if a, b := count(got, 1), count(got, 2); a != 100 || b != 10 {
		t.Errorf("merged %d of the busy replica and %d of the quiet one, want 100 and 10", a, b)
	}
	// Complete samples (n ≤ reservoir) are merged whole.
	got = mergeSamples([]sideSet{{3, fill(3, 1)}, {2, fill(2, 2)}, {0, nil}}, 2000)
	if len(got) != 5 || count(got, 2) != 2 {
		t.Errorf("complete samples merged to %v", got)
	}
	// Never more than the capacity, never more from a replica than it has.
	got = mergeSamples([]sideSet{{5000, fill(2000, 1)}, {5000, fill(2000, 2)}, {5000, fill(10, 3)}}, 2000)
	if len(got) > 2000 || count(got, 3) > 10 {
		t.Errorf("merged %d samples, %d from the replica holding 10", len(got), count(got, 3))
	}
	if count(got, 1) != count(got, 2) || count(got, 3) != 10 {
		t.Errorf("equal traffic, unequal shares: %d %d %d", count(got, 1), count(got, 2), count(got, 3))
	}
	if mergeSamples(nil, 10) != nil || mergeSamples([]sideSet{{0, nil}}, 10) != nil {
		t.Error("no traffic merged to samples")
	}
}

func TestMergeCounts(t *testing.T) {
	own := counts{liveN: 10, liveErr: 1, canaryN: 4, canaryErr: 0, liveRecentN: 10, liveRecentErr: 1, canaryRecentN: 4,
		liveMs: fill(10, 1), canaryMs: fill(4, 1)}
	peers := []WindowSummary{
		{Node: "b", Live: SideSummary{N: 20, Errors: 2, Ms: fill(20, 2), RecentN: 20, RecentErr: 2},
			Canary: SideSummary{N: 6, Errors: 3, Ms: fill(6, 2), RecentN: 6, RecentErr: 3}},
		{Node: "c", Canary: SideSummary{N: 10, Errors: 5, Ms: fill(10, 3), RecentN: 10, RecentErr: 5}, Burst: true},
	}
	m := merge(own, peers, 2000)
	if m.liveN != 30 || m.liveErr != 3 || m.canaryN != 20 || m.canaryErr != 8 || !m.burst {
		t.Errorf("counts %+v", m)
	}
	if math.Abs(m.liveRecentRate-0.1) > 1e-9 || math.Abs(m.canaryRecentRate-0.4) > 1e-9 {
		t.Errorf("recent rates live %v canary %v, want 0.1 and 0.4", m.liveRecentRate, m.canaryRecentRate)
	}
	if len(m.liveMs) != 30 || len(m.canaryMs) != 20 {
		t.Errorf("samples %d and %d", len(m.liveMs), len(m.canaryMs))
	}
	if got := merge(own, nil, 2000); got.liveN != 10 || len(got.liveMs) != 10 {
		t.Errorf("no peers changed the counts: %+v", got)
	}
}

func TestWindowSummaryValid(t *testing.T) {
	ok := WindowSummary{Node: "a", Live: SideSummary{N: 3, Errors: 1, Ms: []float64{1, 2}, RecentN: 3, RecentErr: 1}, At: time.Now()}
	if !ok.Valid(10) {
		t.Fatal("a sane summary was refused")
	}
	for name, mut := range map[string]func(*WindowSummary){
		"no node":          func(w *WindowSummary) { w.Node = "" },
		"negative":         func(w *WindowSummary) { w.Canary.N = -1 },
		"errors above n":   func(w *WindowSummary) { w.Live.Errors = 4 },
		"recent errors":    func(w *WindowSummary) { w.Live.RecentErr = 4 },
		"too many samples": func(w *WindowSummary) { w.Live.Ms = fill(11, 1); w.Live.N = 20 },
		"samples above n":  func(w *WindowSummary) { w.Live.Ms = fill(4, 1) },
		"NaN latency":      func(w *WindowSummary) { w.Live.Ms = []float64{math.NaN()} },
		"negative latency": func(w *WindowSummary) { w.Live.Ms = []float64{-1} },
	} {
		w := ok
		w.Live.Ms = append([]float64(nil), ok.Live.Ms...)
		mut(&w)
		if w.Valid(10) {
			t.Errorf("%s: accepted", name)
		}
	}
}
