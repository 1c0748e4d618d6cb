package stats

import (
	"errors"
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

func TestShiftCIAgainstR(t *testing.T) {
	cases := []struct {
		rcall       string
		x, y        []float64
		conf        float64
		est, lo, hi float64
		exact       bool
		rel         float64
	}{
		{`wilcox.test(x, y, conf.int=TRUE)`, refX, refY, 0.95,
			0.30500000000000005, -0.15000000000000002, 0.75999999999999990, true, 1e-15},
		{`wilcox.test(x, y, conf.int=TRUE, conf.level=0.9)`, refX, refY, 0.9,
			0.30500000000000005, -0.07999999999999996, 0.71999999999999997, true, 1e-15},
		{`wilcox.test(xe, ye, conf.int=TRUE)`, exactX, exactY, 0.95, 8.5, -3.5, 20.5, true, 1e-15},
		// Normal approximation: R's limits are uniroot solutions (tol
		// 1e-4) landing next to the order statistic we return.
		{`wilcox.test(xl, yl, conf.int=TRUE)  # -5.5000608118470247 15.4999671555944207`, largeX, largeY, 0.95,
			4.5, -5.5000608118470247, 15.4999671555944207, false, 2e-5},
		{`wilcox.test(xh, yh, conf.int=TRUE)  # 1.0000199210203147 2.9999559972502707`, heavyX, heavyY, 0.95,
			2, 1.0000199210203147, 2.9999559972502707, false, 3e-5},
		{`wilcox.test(xb, yb, conf.int=TRUE)  # 5.4000396047196775 54.5000209364710173`, bigX, bigY, 0.95,
			30, 5.4000396047196775, 54.5000209364710173, false, 1e-5},
	}
	for _, c := range cases {
		s, err := ShiftCI(c.x, c.y, c.conf)
		if err != nil {
			t.Fatalf("%s: %v", c.rcall, err)
		}
		checkClose(t, c.rcall+" estimate", s.Estimate, c.est, 1e-15)
		checkClose(t, c.rcall+" lower", s.Lower, c.lo, c.rel)
		checkClose(t, c.rcall+" upper", s.Upper, c.hi, c.rel)
		if s.Exact != c.exact {
			t.Errorf("%s: Exact = %v", c.rcall, s.Exact)
		}
		if !(s.Lower <= s.Estimate && s.Estimate <= s.Upper) {
			t.Errorf("%s: estimate outside interval: %+v", c.rcall, s)
		}
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

	s, err := ShiftCI(canary, live, 0.95)
	if err != nil || !s.HasRatio {
		t.Fatalf("ShiftCI: %+v %v", s, err)
	}
	checkClose(t, "Ratio", s.Ratio, ratio, 1e-12)
	if !(s.RatioLower < s.Ratio && s.Ratio < s.RatioUpper) {
		t.Errorf("ratio interval %v..%v does not hold %v", s.RatioLower, s.RatioUpper, s.Ratio)
	}
	if s.RatioLower < 1.05 {
		t.Errorf("RatioLower = %v: a 20%% slowdown on 100 samples should clear 1.05", s.RatioLower)
	}

	if _, ok := ShiftRatio(canary, []float64{0, 0, 0}); ok {
		t.Error("ShiftRatio with a zero live median should not be ok")
	}
	s, err = ShiftCI(canary, []float64{-1, 0, 0}, 0.95)
	if err != nil || s.HasRatio || s.Ratio != 0 {
		t.Errorf("non-positive live median: %+v %v", s, err)
	}
}

func TestShiftCIErrors(t *testing.T) {
	for _, conf := range []float64{0, 1, -0.5, math.NaN()} {
		if _, err := ShiftCI(refX, refY, conf); err == nil {
			t.Errorf("conf %v: no error", conf)
		}
	}
	if _, err := ShiftCI(nil, refY, 0.95); !errors.Is(err, ErrEmptySample) {
		t.Errorf("empty: %v", err)
	}
	if _, err := ShiftCI(refX, []float64{math.Inf(1)}, 0.95); !errors.Is(err, ErrNotFinite) {
		t.Errorf("Inf: %v", err)
	}
	// A tiny sample at high confidence: the interval is the whole range.
	s, err := ShiftCI([]float64{1, 2}, []float64{3}, 0.99)
	if err != nil || s.Lower != -2 || s.Upper != -1 {
		t.Errorf("2 vs 1 at 99%%: %+v %v", s, err)
	}
}

// Coverage of the interval on simulated data with a known shift.
func TestShiftCICoverage(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const trials = 300
	for _, n := range []int{20, 120} {
		hit := 0
		for range trials {
			x := randomSample(r, n, 3, false)
			y := randomSample(r, n+5, 0, false)
			s, err := ShiftCI(x, y, 0.9)
			if err != nil {
				t.Fatal(err)
			}
			if s.Lower <= 3 && 3 <= s.Upper {
				hit++
			}
		}
		// 90% nominal; binomial sd over 300 trials is 1.7%.
		if cov := float64(hit) / trials; cov < 0.85 || cov > 0.96 {
			t.Errorf("n=%d: coverage %.3f, want about 0.90", n, cov)
		}
	}
}
