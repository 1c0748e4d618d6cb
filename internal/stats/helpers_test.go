package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// closeTo reports whether got is within rel relative error of want (absolute
// for want == 0).
func closeTo(got, want, rel float64) bool {
	if got == want {
		return true
	}
	if want == 0 {
		return math.Abs(got) <= rel
	}
	return math.Abs(got-want) <= rel*math.Abs(want)
}

func checkClose(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if !closeTo(got, want, rel) {
		t.Errorf("%s = %.17g, want %.17g (rel tol %g)", what, got, want, rel)
	}
}

// seq returns f(i) for i = 1..n, the way the R reference scripts build
// their samples with 1:n.
func seq(n int, f func(i int) float64) []float64 {
	out := make([]float64, n)
	for i := 1; i <= n; i++ {
		out[i-1] = f(i)
	}
	return out
}

// Samples shared with the R reference script. R's %% on positive integers
// is Go's %.
var (
	// R's own ?wilcox.test example data (Hollander & Wolfe).
	refX = []float64{0.8, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	refY = []float64{1.15, 0.88, 0.90, 0.74, 1.21}

	// xt <- c(1,2,2,3,5); yt <- c(1,1,2,4)
	tieX = []float64{1, 2, 2, 3, 5}
	tieY = []float64{1, 1, 2, 4}

	// xl <- ((1:60 * 37) %% 101) + 0.5; yl <- (1:70 * 53) %% 97  (no ties)
	largeX = seq(60, func(i int) float64 { return float64(i*37%101) + 0.5 })
	largeY = seq(70, func(i int) float64 { return float64(i * 53 % 97) })

	// xe <- ((1:49 * 37) %% 101) + 0.5 + 3; ye <- (1:49 * 53) %% 97
	exactX = seq(49, func(i int) float64 { return float64(i*37%101) + 0.5 + 3 })
	exactY = seq(49, func(i int) float64 { return float64(i * 53 % 97) })

	// xs <- c(10.1, ...); ys <- c(1.2, ...)  (fully separated)
	sepX = []float64{10.1, 11.3, 12.2, 13.7, 14.1, 15.9, 16.4, 17.2}
	sepY = []float64{1.2, 2.3, 3.1, 4.4, 5.6, 6.2, 7.9, 8.8, 9.5}

	// xh <- (1:200 %% 17) + 10; yh <- (1:300 %% 13) + 10  (integer ms, heavy ties)
	heavyX = seq(200, func(i int) float64 { return float64(i%17 + 10) })
	heavyY = seq(300, func(i int) float64 { return float64(i%13 + 10) })

	// xb <- ((1:1000 * 7919) %% 10007) / 10 + 30; yb <- ((1:1200 * 104729) %% 10009) / 10
	bigX = seq(1000, func(i int) float64 { return float64(i*7919%10007)/10 + 30 })
	bigY = seq(1200, func(i int) float64 { return float64(i*104729%10009) / 10 })

	// xf <- (1:300) + 250; yf <- (1:300) * 1.0001
	farX = seq(300, func(i int) float64 { return float64(i) + 250 })
	farY = seq(300, func(i int) float64 { return float64(i) * 1.0001 })
)

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }

// binomial draws from Binomial(n, p) by the normal approximation with
// rounding (n·p is large in the tests that use it).
func binomial(r *rand.Rand, n int64, p float64) int64 {
	mu, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
	v := int64(math.Round(mu + sd*r.NormFloat64()))
	return max(0, min(n, v))
}
