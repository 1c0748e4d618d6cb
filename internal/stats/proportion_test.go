package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestCompareProportionsAgainstR(t *testing.T) {
	cases := []struct {
		rcall          string
		ce, ct, le, lt int64
		wantP          float64
		wantTest       ProportionTest
		wantX2         float64 // prop.test's X-squared = Z², for z-tests
		rel            float64
	}{
		// z-test: prop.test(..., correct=FALSE) reports X-squared = Z² and
		// the one-sided p-value directly.
		{`prop.test(c(30,10), c(1000,1000), alternative="greater", correct=FALSE)`,
			30, 1000, 10, 1000, 0.00070065079048010708, ZTest, 10.204081632653061, 1e-12},
		{`prop.test(c(52,400), c(5000,50000), alternative="greater", correct=FALSE)`,
			52, 5000, 400, 50000, 0.036544690725493663, ZTest, 3.2122394760220914, 1e-12},
		{`prop.test(c(40,500), c(5000,50000), alternative="greater", correct=FALSE)`,
			40, 5000, 500, 50000, 0.91427471135992466, ZTest, 1.8702139524761636, 1e-12},
		// Fisher: small expected counts.
		{`fisher.test(matrix(c(5,1,95,199),2), alternative="greater")`,
			5, 100, 1, 200, 0.016876995031530541, FisherExact, 0, 1e-12},
		{`fisher.test(matrix(c(2,3,48,57),2), alternative="greater")`,
			2, 50, 3, 60, 0.75616561088275369, FisherExact, 0, 1e-12},
		{`fisher.test(matrix(c(4,0,16,30),2), alternative="greater")`,
			4, 20, 0, 30, 0.021037776812852793, FisherExact, 0, 1e-12},
		// Large totals (factorials far beyond float64): log space.
		{`fisher.test(matrix(c(3,0,99997,1000000),2), alternative="greater")`,
			3, 100000, 0, 1000000, 0.00075129431059105408, FisherExact, 0, 1e-11},
		{`fisher.test(matrix(c(12,20,4988,199980),2), alternative="greater")`,
			12, 5000, 20, 200000, 6.2753876656672603e-12, FisherExact, 0, 1e-10},
	}
	for _, c := range cases {
		r, err := CompareProportions(c.ce, c.ct, c.le, c.lt)
		if err != nil {
			t.Fatalf("%s: %v", c.rcall, err)
		}
		if r.Test != c.wantTest {
			t.Errorf("%s: test %v, want %v", c.rcall, r.Test, c.wantTest)
		}
		checkClose(t, c.rcall+" p-value", r.P, c.wantP, c.rel)
		if c.wantX2 != 0 {
			checkClose(t, c.rcall+" Z²", r.Z*r.Z, c.wantX2, 1e-12)
		}
		checkClose(t, "CanaryRate", r.CanaryRate, float64(c.ce)/float64(c.ct), 1e-15)
		checkClose(t, "LiveRate", r.LiveRate, float64(c.le)/float64(c.lt), 1e-15)
		checkClose(t, "Difference", r.Difference, r.CanaryRate-r.LiveRate, 1e-15)
	}
}

// Fisher's tail equals a direct sum of hypergeometric terms on tables small
// enough for exact float arithmetic, on both sides of the log-space switch.
func TestFisherMatchesDirectSum(t *testing.T) {
	choose := func(n, k int64) float64 {
		if k < 0 || k > n {
			return 0
		}
		c := 1.0
		for i := int64(1); i <= k; i++ {
			c = c * float64(n-k+i) / float64(i)
		}
		return c
	}
	r := rand.New(rand.NewPCG(11, 12))
	for range 500 {
		total := 2 + r.Int64N(60)
		draw := r.Int64N(total + 1)
		marked := r.Int64N(total + 1)
		x := r.Int64N(min(draw, marked) + 2)
		want := 0.0
		for k := x; k <= min(draw, marked); k++ {
			want += choose(marked, k) * choose(total-marked, draw-k)
		}
		want /= choose(total, draw)
		want = math.Min(want, 1)
		checkClose(t, "fisherGreater", fisherGreater(x, draw, marked, total), want, 1e-11)
	}
	// The log-gamma branch (more than 2^16 on both sides) agrees with the
	// product branch where they overlap in meaning.
	a := logChoose(200000, 3) + logChoose(10000000-200000, 100000-3) - logChoose(10000000, 100000)
	b := logHyperPMF(3, 100000, 200000, 10000000)
	if math.Abs(a-b) > 1e-6 {
		t.Errorf("log pmf: lgamma %v, product %v", a, b)
	}
}

func TestCompareProportionsEdgeCases(t *testing.T) {
	for _, bad := range [][4]int64{{-1, 10, 0, 10}, {11, 10, 0, 10}, {0, 10, 5, 4}, {0, -1, 0, 1}} {
		if _, err := CompareProportions(bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	r, err := CompareProportions(0, 0, 3, 100)
	if err != nil || r.Test != NoTest || r.P != 1 || r.CanaryRate != 0 || r.LiveRate != 0.03 {
		t.Errorf("no canary traffic: %+v %v", r, err)
	}
	// No errors anywhere: Fisher, p = 1, Z 0.
	r, _ = CompareProportions(0, 5000, 0, 50000)
	if r.Test != FisherExact || r.P != 1 || r.Z != 0 {
		t.Errorf("no errors: %+v", r)
	}
	// All requests fail on both sides.
	r, _ = CompareProportions(100, 100, 200, 200)
	if r.P != 1 {
		t.Errorf("all errors: %+v", r)
	}
	// Canary errors while live has none: significant on both tests.
	r, _ = CompareProportions(10, 1000, 0, 100000)
	if r.P > 1e-10 {
		t.Errorf("10 canary errors vs none: p = %v", r.P)
	}
}

// More canary errors never raise the p-value; p stays in [0, 1].
func TestCompareProportionsMonotone(t *testing.T) {
	for _, tot := range []int64{40, 400, 4000} {
		prev := 2.0
		for ce := int64(0); ce <= tot/4; ce++ {
			r, err := CompareProportions(ce, tot, tot/40, tot*3)
			if err != nil {
				t.Fatal(err)
			}
			if !(r.P >= 0 && r.P <= 1) {
				t.Fatalf("p %v outside [0,1]", r.P)
			}
			if r.P > prev+1e-12 {
				t.Fatalf("total %d: p rose from %v to %v at %d canary errors (%v)", tot, prev, r.P, ce, r.Test)
			}
			prev = r.P
		}
	}
}
