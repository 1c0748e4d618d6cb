package stats

import (
	"math"
	"slices"
)

// Quantile returns the q-quantile of xs by R's default definition (type 7,
// also NumPy's "linear"): with xs sorted and h = (n−1)·q, the value at index
// ⌊h⌋ moved linearly toward the next one by h − ⌊h⌋. Quantile(xs, 0.99) is
// the p99. xs is not modified (it is copied and sorted: O(n log n)).
//
// It returns NaN when xs is empty, contains NaN, or q is outside [0, 1].
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 || !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	for _, v := range xs {
		if math.IsNaN(v) {
			return math.NaN()
		}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return QuantileSorted(s, q)
}

// QuantileSorted is Quantile for a sample already sorted in ascending order
// (not checked), in O(1).
func QuantileSorted(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 || !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	h := float64(n-1) * q
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	a, b := sorted[lo], sorted[lo+1]
	f := h - float64(lo)
	if f == 0 || a == b {
		return a
	}
	// R's form (1−f)·a + f·b.
	return (1-f)*a + f*b
}

// QuantileRatio returns Quantile(canary, q) / Quantile(live, q), for
// example the p99 ratio with q = 0.99: 1.3 means the canary's p99 is 30%
// above live's. ok is false when either quantile is NaN or live's is not
// positive.
func QuantileRatio(canary, live []float64, q float64) (ratio float64, ok bool) {
	c, l := Quantile(canary, q), Quantile(live, q)
	if math.IsNaN(c) || !(l > 0) {
		return 0, false
	}
	return c / l, true
}
