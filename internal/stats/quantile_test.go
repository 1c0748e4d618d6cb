package stats

import (
	"math"
	"slices"
	"testing"
)

func TestQuantileAgainstR(t *testing.T) {
	qs := []float64{0, 0.25, 0.5, 0.9, 0.95, 0.99, 1}
	cases := []struct {
		rcall string
		xs    []float64
		qs    []float64
		want  []float64
	}{
		{`quantile(x, c(0, .25, .5, .9, .95, .99, 1), type=7)`, refX, qs,
			[]float64{0.72999999999999998, 0.88249999999999995, 1.41500000000000004, 1.89199999999999990,
				1.90099999999999980, 1.90819999999999990, 1.90999999999999992}},
		{`quantile(xb, c(0, .25, .5, .9, .95, .99, 1), type=7)`, bigX, qs,
			[]float64{30.899999999999999, 280.850000000000023, 530.799999999999955, 930.690000000000055,
				980.649999999999977, 1020.109000000000037, 1029.700000000000045}},
		{`quantile(c(4,1,3,2), c(0.1, 1/3, 0.5, 0.99), type=7)`, []float64{4, 1, 3, 2}, []float64{0.1, 1.0 / 3, 0.5, 0.99},
			[]float64{1.3, 2, 2.5, 3.9699999999999998}},
	}
	for _, c := range cases {
		for i, q := range c.qs {
			checkClose(t, c.rcall, Quantile(c.xs, q), c.want[i], 1e-14)
		}
	}
}

func TestQuantileEdgeCases(t *testing.T) {
	for _, c := range []struct {
		xs []float64
		q  float64
	}{{nil, 0.5}, {[]float64{1}, -0.1}, {[]float64{1}, 1.1}, {[]float64{1}, math.NaN()}, {[]float64{1, math.NaN()}, 0.5}} {
		if v := Quantile(c.xs, c.q); !math.IsNaN(v) {
			t.Errorf("Quantile(%v, %v) = %v, want NaN", c.xs, c.q, v)
		}
	}
	if v := Quantile([]float64{7}, 0.99); v != 7 {
		t.Errorf("single value: %v", v)
	}
	if v := Quantile([]float64{1, math.Inf(1)}, 0.5); !math.IsInf(v, 1) {
		t.Errorf("with +Inf: %v", v)
	}
	if v := Quantile([]float64{math.Inf(1), math.Inf(1)}, 0.5); !math.IsInf(v, 1) {
		t.Errorf("all +Inf: %v", v)
	}
	xs := []float64{3, 1, 2}
	Quantile(xs, 0.5)
	if !slices.Equal(xs, []float64{3, 1, 2}) {
		t.Errorf("input modified: %v", xs)
	}
}

func TestQuantileRatio(t *testing.T) {
	live := seq(100, func(i int) float64 { return float64(i) })
	canary := seq(100, func(i int) float64 { return 1.5 * float64(i) })
	r, ok := QuantileRatio(canary, live, 0.99)
	if !ok {
		t.Fatal("not ok")
	}
	checkClose(t, "p99 ratio", r, 1.5, 1e-14)
	if _, ok := QuantileRatio(canary, []float64{0, 0}, 0.99); ok {
		t.Error("zero live p99: ok")
	}
	if _, ok := QuantileRatio(nil, live, 0.99); ok {
		t.Error("empty canary: ok")
	}
}
