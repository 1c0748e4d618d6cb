package ui

import (
	"math"
	"sync"
	"time"
)

// History is a bounded ring of periodic snapshots: one timestamp per tick
// and, per series, one value per tick (NaN when the series had no value
// then). Memory is fixed: at most maxSeries series of size values each.
// Series that have had no value for a whole ring are dropped, so routes,
// endpoints and fields removed by a reload or a reset do not hold their
// slot.
type History struct {
	mu        sync.RWMutex
	size      int
	maxSeries int
	times     []time.Time // ring; times[(next-1+size)%size] is the latest
	next      int
	n         int // ticks held, at most size
	seq       int // ticks recorded since the start
	series    map[Key]*ring
	dropped   int // series refused because maxSeries was reached
}

// Key names one series: what it measures and of what.
type Key struct {
	Metric string // rps, error_rate, p50_ms, p99_ms, shadow, diff_rate, field_raw, field_noise, weight, field_use
	Route  string
	A, B   string // role, target, endpoint, field, outcome group: depends on Metric
}

type ring struct {
	vals []float64
	last int // the last tick (counted from the start) that set a value
}

// Point is one value of a series at one tick.
type Point struct {
	T time.Time
	V float64 // NaN: no value at that tick
}

// NewHistory keeps size ticks of at most maxSeries series.
func NewHistory(size, maxSeries int) *History {
	return &History{size: size, maxSeries: maxSeries, times: make([]time.Time, size), series: map[Key]*ring{}}
}

// Record adds one tick at t with the given values; every other series
// gets NaN, and series silent for a whole ring are forgotten. Values are
// computed before the lock is taken, so readers wait only for the copy.
func (h *History) Record(t time.Time, vals map[Key]float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	idx, seq := h.next, h.seq
	h.times[idx] = t
	for k, v := range vals {
		r := h.series[k]
		if r == nil {
			if len(h.series) >= h.maxSeries {
				h.dropped++
				continue
			}
			r = &ring{vals: make([]float64, h.size)}
			for i := range r.vals {
				r.vals[i] = math.NaN()
			}
			h.series[k] = r
		}
		r.vals[idx] = v
		r.last = seq
	}
	for k, r := range h.series {
		if r.last != seq {
			r.vals[idx] = math.NaN()
			if seq-r.last >= h.size {
				delete(h.series, k)
			}
		}
	}
	h.next = (h.next + 1) % h.size
	h.seq++
	if h.n < h.size {
		h.n++
	}
}

// Series returns k's points, oldest first (nil if unknown).
func (h *History) Series(k Key) []Point {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r := h.series[k]
	if r == nil {
		return nil
	}
	out := make([]Point, 0, h.n)
	start := (h.next - h.n + h.size) % h.size
	for i := 0; i < h.n; i++ {
		j := (start + i) % h.size
		out = append(out, Point{T: h.times[j], V: r.vals[j]})
	}
	return out
}

// Latest returns k's most recent value, NaN when it had none last tick.
func (h *History) Latest(k Key) float64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r := h.series[k]
	if r == nil || h.n == 0 {
		return math.NaN()
	}
	return r.vals[(h.next-1+h.size)%h.size]
}

// Len is the number of series held.
func (h *History) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.series)
}
