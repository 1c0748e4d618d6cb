package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func allDiffs(x, y []float64) []float64 {
	d := make([]float64, 0, len(x)*len(y))
	for _, a := range x {
		for _, b := range y {
			d = append(d, a-b)
		}
	}
	slices.Sort(d)
	return d
}

func TestHodgesLehmannAgainstR(t *testing.T) {
	cases := []struct {
		rcall string
		x, y  []float64
		want  float64
	}{
		// Exact method: R's estimate is median(outer(x, y, "-")).
		{`wilcox.test(x, y, conf.int=TRUE)$estimate`, refX, refY, 0.30500000000000005},
		{`wilcox.test(xe, ye, conf.int=TRUE)$estimate`, exactX, exactY, 8.5},
		{`wilcox.test(xl, yl, conf.int=TRUE, exact=TRUE)$estimate`, largeX, largeY, 4.5},
		// With ties R's estimate is a root search (2 here); the
		// definition itself, in R:
		{`median(outer(xh, yh, "-"))`, heavyX, heavyY, 2},
		// wilcox.test(xb, yb, conf.int=TRUE)$estimate = 29.999990801199782
		// (uniroot, tol 1e-4); the exact median:
		{`median(outer(xb, yb, "-"))`, bigX, bigY, 30},
	}
	for _, c := range cases {
		checkClose(t, c.rcall, HodgesLehmann(c.x, c.y), c.want, 1e-15)
	}
}

// kth must agree with sorting all differences, including with heavy ties,
// negative values and very unequal sizes.
func TestDiffSelectionMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 150; trial++ {
		m, n := 1+r.IntN(90), 1+r.IntN(90)
		if trial%10 == 0 {
			m = 1 + r.IntN(3)
		}
		levels := []float64{0, 3, 50}[trial%3] // 0 = continuous values
		gen := func(k int) []float64 {
			out := make([]float64, k)
			for i := range out {
				v := r.NormFloat64() * 10
				if levels > 0 {
					v = math.Round(r.Float64() * levels)
				}
				out[i] = v
			}
			return out
		}
		x, y := gen(m), gen(n)
		all := allDiffs(x, y)
		xs, ys := slices.Clone(x), slices.Clone(y)
		slices.Sort(xs)
		slices.Sort(ys)
		dm := newDiffMatrix(xs, ys)
		for _, k := range []int{1, len(all), 1 + r.IntN(len(all)), (len(all) + 1) / 2} {
			if got := dm.kth(int64(k)); got != all[k-1] {
				t.Fatalf("m=%d n=%d k=%d: kth = %v, want %v", m, n, k, got, all[k-1])
			}
		}
		var want float64
		if N := len(all); N%2 == 1 {
			want = all[N/2]
		} else {
			want = (all[N/2-1] + all[N/2]) / 2
		}
		if got := HodgesLehmann(x, y); got != want {
			t.Fatalf("m=%d n=%d: HodgesLehmann = %v, want %v", m, n, got, want)
		}
	}
}

func TestHodgesLehmannProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x := randomSample(r, 300, 0, false)
	y := randomSample(r, 400, 0, false)
	base := HodgesLehmann(x, y)
	// Shifting the canary by c shifts the estimate by c.
	xs := make([]float64, len(x))
	for i, v := range x {
		xs[i] = v + 7
	}
	checkClose(t, "shift equivariance", HodgesLehmann(xs, y), base+7, 1e-12)
	// Swapping samples negates it.
	checkClose(t, "antisymmetry", HodgesLehmann(y, x), -base, 1e-12)
	// Undefined input.
	for _, bad := range [][]float64{nil, {1, math.NaN()}, {math.Inf(1)}} {
		if v := HodgesLehmann(bad, y); !math.IsNaN(v) {
			t.Errorf("HodgesLehmann(%v, y) = %v, want NaN", bad, v)
		}
	}
}

func TestShiftRatio(t *testing.T) {
	// Live latencies 100..199 ms; canary the same but 20% slower.
	live := seq(100, func(i int) float64 { return float64(99 + i) })
	canary := make([]float64, len(live))
	for i, v := range live {
		canary[i] = v * 1.2
	}
	ratio, ok := ShiftRatio(canary, live)
	if !ok {
		t.Fatal("ShiftRatio not ok")
	}
	// HL = median of 0.2·live_i + (live_i − live_j) = 0.2·149.5 = 29.9;
	// live median 149.5, so (149.5 + 29.9)/149.5 = 1.2.
	checkClose(t, "ShiftRatio", ratio, 1.2, 1e-3)

	if _, ok := ShiftRatio(canary, []float64{0, 0, 0}); ok {
		t.Error("ShiftRatio with a zero live median should not be ok")
	}
}
