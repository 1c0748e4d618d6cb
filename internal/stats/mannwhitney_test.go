package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// Reference values from R 4.2.2; the R call that produced each is in the
// table. The samples are defined in helpers_test.go with their R form.
func TestMannWhitneyAgainstR(t *testing.T) {
	cases := []struct {
		rcall     string
		x, y      []float64
		alt       Alternative
		wantU     float64
		wantP     float64
		wantExact bool
		rel       float64
	}{
		// Small, no ties: exact distribution.
		{`wilcox.test(x, y)  # ?wilcox.test example`, refX, refY, TwoSided, 35, 0.2544122544122544, true, 1e-12},
		{`wilcox.test(x, y, alternative="greater")`, refX, refY, Greater, 35, 0.1272061272061272, true, 1e-12},
		{`wilcox.test(x, y, alternative="less")`, refX, refY, Less, 35, 0.89676989676989671, true, 1e-12},
		{`wilcox.test(xs, ys, alternative="greater")`, sepX, sepY, Greater, 72, 4.1135335252982309e-05, true, 1e-12},
		{`wilcox.test(xs, ys)`, sepX, sepY, TwoSided, 72, 8.2270670505964617e-05, true, 1e-12},
		// Largest exact size, 49 × 49.
		{`wilcox.test(xe, ye)`, exactX, exactY, TwoSided, 1395, 0.1688056873667238, true, 1e-10},
		{`wilcox.test(xe, ye, alternative="greater")`, exactX, exactY, Greater, 1395, 0.0844028436833619, true, 1e-10},
		// Small with ties: normal approximation, tie and continuity corrected.
		{`wilcox.test(xt, yt)`, tieX, tieY, TwoSided, 13, 0.52616847775614328, false, 1e-12},
		{`wilcox.test(xt, yt, alternative="greater")`, tieX, tieY, Greater, 13, 0.26308423887807164, false, 1e-12},
		{`wilcox.test(xt, yt, alternative="less")`, tieX, tieY, Less, 13, 0.81257142865832999, false, 1e-12},
		// Large, no ties: normal approximation.
		{`wilcox.test(xl, yl)`, largeX, largeY, TwoSided, 2306, 0.33719881257521678, false, 1e-12},
		{`wilcox.test(xl, yl, alternative="greater")`, largeX, largeY, Greater, 2306, 0.16859940628760839, false, 1e-12},
		{`wilcox.test(xl, yl, alternative="less")`, largeX, largeY, Less, 2306, 0.83257349631959765, false, 1e-12},
		// Large, heavy ties.
		{`wilcox.test(xh, yh)`, heavyX, heavyY, TwoSided, 36948.5, 1.0833594795454142e-05, false, 1e-10},
		{`wilcox.test(xh, yh, alternative="greater")`, heavyX, heavyY, Greater, 36948.5, 5.4167973977270712e-06, false, 1e-10},
		{`wilcox.test(xh, yh, alternative="less")`, heavyX, heavyY, Less, 36948.5, 0.99999459898730325, false, 1e-12},
		// 1,000 × 1,200.
		{`wilcox.test(xb, yb)`, bigX, bigY, TwoSided, 635419.5, 0.016967739343782887, false, 1e-10},
		{`wilcox.test(xb, yb, alternative="greater")`, bigX, bigY, Greater, 635419.5, 0.0084838696718914433, false, 1e-10},
		// A p-value far in the tail keeps its digits (erfc, not 1 − Φ).
		{`wilcox.test(xf, yf, alternative="greater")`, farX, farY, Greater, 0, 1.5286212299456583e-94, false, 1e-8},
	}
	for _, c := range cases {
		r, err := MannWhitney(c.x, c.y, c.alt)
		if err != nil {
			t.Fatalf("%s: %v", c.rcall, err)
		}
		if c.wantU != 0 && r.U != c.wantU {
			t.Errorf("%s: U = %v, want W = %v", c.rcall, r.U, c.wantU)
		}
		checkClose(t, c.rcall+" p-value", r.P, c.wantP, c.rel)
		if r.Exact != c.wantExact {
			t.Errorf("%s: Exact = %v, want %v", c.rcall, r.Exact, c.wantExact)
		}
	}
}

func TestMannWhitneyFields(t *testing.T) {
	r, err := MannWhitney(tieX, tieY, Greater)
	if err != nil {
		t.Fatal(err)
	}
	if r.NCanary != 5 || r.NLive != 4 || !r.Ties || r.Alternative != Greater {
		t.Errorf("fields: %+v", r)
	}
	checkClose(t, "ProbCanaryGreater", r.ProbCanaryGreater, 13.0/20, 1e-15)
	// Z² equals the chi-square of the corrected normal approximation; the
	// one-sided p is its upper tail.
	checkClose(t, "P from Z", normalSF(r.Z), r.P, 1e-15)
}

// The exact distribution must equal a count over every assignment of ranks.
func TestExactDistributionMatchesEnumeration(t *testing.T) {
	for m := 1; m <= 7; m++ {
		for n := 1; n <= 7; n++ {
			// counts of U over all C(m+n, m) subsets of ranks
			N := m + n
			want := make([]float64, m*n+1)
			total := 0.0
			for mask := 0; mask < 1<<N; mask++ {
				if popcount(mask) != m {
					continue
				}
				u, below := 0, 0 // rank i in the canary beats the live ranks below it
				for i := 0; i < N; i++ {
					if mask>>i&1 == 1 {
						u += below
					} else {
						below++
					}
				}
				want[u]++
				total++
			}
			d := newUDist(m, n)
			if d.total != total {
				t.Fatalf("C(%d,%d) = %v, want %v", N, m, d.total, total)
			}
			for u := 0; u <= m*n; u++ {
				lower, upper := 0.0, 0.0 // P(U ≤ u), P(U ≥ u)
				for v, c := range want {
					if v <= u {
						lower += c
					}
					if v >= u {
						upper += c
					}
				}
				checkClose(t, "cdf", d.cdf(u), lower/total, 1e-13)
				checkClose(t, "sf", d.sf(u), upper/total, 1e-13)
			}
		}
	}
	// R: pwilcox(10, 7, 9) = 0.011451048951048953
	checkClose(t, "pwilcox(10, 7, 9)", newUDist(7, 9).cdf(10), 0.011451048951048953, 1e-13)
}

func popcount(x int) int {
	c := 0
	for ; x != 0; x &= x - 1 {
		c++
	}
	return c
}

func randomSample(r *rand.Rand, n int, shift float64, ties bool) []float64 {
	out := make([]float64, n)
	for i := range out {
		v := r.ExpFloat64()*10 + shift
		if ties {
			v = math.Round(v)
		}
		out[i] = v
	}
	return out
}

func TestMannWhitneyProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 300; trial++ {
		ties := trial%2 == 0
		m, n := 1+r.IntN(80), 1+r.IntN(80)
		x := randomSample(r, m, r.Float64()*5, ties)
		y := randomSample(r, n, r.Float64()*5, ties)
		g, err1 := MannWhitney(x, y, Greater)
		l, err2 := MannWhitney(x, y, Less)
		two, err3 := MannWhitney(x, y, TwoSided)
		rl, err4 := MannWhitney(y, x, Less)
		rtwo, err5 := MannWhitney(y, x, TwoSided)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			t.Fatal(err)
		}
		for _, res := range []MannWhitneyResult{g, l, two, rl, rtwo} {
			if !(res.P >= 0 && res.P <= 1) {
				t.Fatalf("p-value %v outside [0, 1]", res.P)
			}
		}
		// U(x, y) + U(y, x) = mn.
		if g.U+rl.U != float64(m*n) {
			t.Fatalf("U(x,y)+U(y,x) = %v, want %d", g.U+rl.U, m*n)
		}
		// Swapping the samples swaps greater and less and keeps two-sided.
		checkClose(t, "greater(x,y) vs less(y,x)", g.P, rl.P, 1e-12)
		checkClose(t, "two-sided symmetry", two.P, rtwo.P, 1e-12)
		// The two-sided p-value is twice the smaller one-sided one (capped);
		// the normal approximation's continuity correction makes the
		// one-sided sum differ from 1, so compare through the smaller tail.
		if two.Exact {
			checkClose(t, "two-sided = 2·min tail", two.P, math.Min(1, 2*math.Min(g.P, l.P)), 1e-12)
		}
	}
}

// Moving the canary sample up can only lower the "canary greater" p-value.
func TestMannWhitneyShiftMonotone(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{8, 40, 300} {
		for _, ties := range []bool{false, true} {
			x := randomSample(r, size, 0, ties)
			y := randomSample(r, size+3, 0, ties)
			prev := 2.0
			for s := -20.0; s <= 20; s += 1 {
				xs := make([]float64, len(x))
				for i, v := range x {
					xs[i] = v + s
				}
				res, err := MannWhitney(xs, y, Greater)
				if err != nil {
					t.Fatal(err)
				}
				if res.P > prev+1e-12 {
					t.Fatalf("n=%d ties=%v shift %v: p rose from %v to %v", size, ties, s, prev, res.P)
				}
				prev = res.P
			}
			if prev > 0.01 {
				t.Errorf("n=%d: p after a large shift = %v, want tiny", size, prev)
			}
		}
	}
}

func TestMannWhitneyEdgeCases(t *testing.T) {
	if _, err := MannWhitney(nil, []float64{1}, Greater); !errors.Is(err, ErrEmptySample) {
		t.Errorf("empty canary: err = %v", err)
	}
	if _, err := MannWhitney([]float64{1}, nil, Greater); !errors.Is(err, ErrEmptySample) {
		t.Errorf("empty live: err = %v", err)
	}
	if _, err := MannWhitney([]float64{1, math.NaN()}, []float64{1}, Greater); !errors.Is(err, ErrNaN) {
		t.Errorf("NaN: err = %v", err)
	}
	if _, err := MannWhitney([]float64{1}, []float64{1}, Alternative(7)); !errors.Is(err, ErrBadAlternative) {
		t.Errorf("bad alternative: err = %v", err)
	}
	// All observations equal (R answers NaN here): no evidence, p = 1.
	res, err := MannWhitney([]float64{5, 5, 5}, []float64{5, 5}, Greater)
	if err != nil || res.P != 1 || res.Z != 0 || res.U != 3 {
		t.Errorf("all tied: %+v, %v", res, err)
	}
	// One observation each, no ties: exact, U is 0 or 1.
	res, _ = MannWhitney([]float64{2}, []float64{1}, Greater)
	if !res.Exact || res.U != 1 || res.P != 0.5 {
		t.Errorf("1 vs 1: %+v", res)
	}
	// Infinities rank at the ends.
	res, _ = MannWhitney([]float64{math.Inf(1), 3}, []float64{1, 2, math.Inf(-1)}, Greater)
	if res.U != 6 {
		t.Errorf("with ±Inf: U = %v, want 6", res.U)
	}
	// Inputs are not modified.
	x := []float64{3, 1, 2}
	_, _ = MannWhitney(x, []float64{0}, TwoSided)
	if x[0] != 3 || x[1] != 1 || x[2] != 2 {
		t.Errorf("input modified: %v", x)
	}
}
