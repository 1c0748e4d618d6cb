package compare

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestRegressionThresholds(t *testing.T) {
	def := DefaultThresholds
	for _, tc := range []struct {
		name string
		th   Thresholds
		f    FieldCounts
		want bool
	}{
		// No secondary: the noise rate is 0, only Absolute decides.
		{"no secondary, at absolute", def, FieldCounts{Raw: 3, Compared: 10000}, false},
		{"no secondary, above absolute", def, FieldCounts{Raw: 4, Compared: 10000}, true},
		{"no secondary, below absolute", def, FieldCounts{Raw: 2, Compared: 10000}, false},
		{"no secondary, at absolute, other scale", def, FieldCounts{Raw: 30, Compared: 100000}, false},
		{"no secondary, just above", def, FieldCounts{Raw: 30001, Compared: 100000000}, true},
		{"no secondary, every request", def, FieldCounts{Raw: 1000, Compared: 1000}, true},
		{"no difference", def, FieldCounts{Raw: 0, Compared: 1000}, false},
		{"nothing compared", def, FieldCounts{}, false},

		// Relative: (raw-noise)/raw against 0.2, with raw = 0.1.
		{"relative at threshold", def, FieldCounts{Raw: 100, Compared: 1000, Noise: 80, NoiseCompared: 1000}, false},
		{"relative just above", def, FieldCounts{Raw: 100, Compared: 1000, Noise: 79, NoiseCompared: 1000}, true},
		{"relative just below", def, FieldCounts{Raw: 100, Compared: 1000, Noise: 81, NoiseCompared: 1000}, false},
		{"relative at threshold, other denominators", def, FieldCounts{Raw: 50, Compared: 500, Noise: 160, NoiseCompared: 2000}, false},
		{"relative above, other denominators", def, FieldCounts{Raw: 50, Compared: 500, Noise: 159, NoiseCompared: 2000}, true},

		// Absolute: raw-noise against 0.0003, relative well satisfied.
		{"absolute at threshold", def, FieldCounts{Raw: 5, Compared: 10000, Noise: 2, NoiseCompared: 10000}, false},
		{"absolute just above", def, FieldCounts{Raw: 50001, Compared: 100000000, Noise: 20000, NoiseCompared: 100000000}, true},
		{"absolute below", def, FieldCounts{Raw: 4, Compared: 10000, Noise: 2, NoiseCompared: 10000}, false},

		// raw must exceed noise.
		{"raw equals noise", def, FieldCounts{Raw: 10, Compared: 100, Noise: 10, NoiseCompared: 100}, false},
		{"raw below noise", def, FieldCounts{Raw: 10, Compared: 100, Noise: 20, NoiseCompared: 100}, false},
		{"zero thresholds, raw above noise", Thresholds{}, FieldCounts{Raw: 11, Compared: 100, Noise: 10, NoiseCompared: 100}, true},
		{"zero thresholds, raw equals noise", Thresholds{}, FieldCounts{Raw: 10, Compared: 100, Noise: 10, NoiseCompared: 100}, false},

		// A field random in both live instances: noise ≈ raw.
		{"random field, always differs", def, FieldCounts{Raw: 1000, Compared: 1000, Noise: 1000, NoiseCompared: 1000}, false},
		{"random field, raw slightly higher", def, FieldCounts{Raw: 1000, Compared: 1000, Noise: 990, NoiseCompared: 1000}, false},
		{"random field, raw slightly lower", def, FieldCounts{Raw: 985, Compared: 1000, Noise: 998, NoiseCompared: 1000}, false},
		{"secondary answered fewer", def, FieldCounts{Raw: 500, Compared: 1000, Noise: 240, NoiseCompared: 500}, false},

		{"NaN threshold", Thresholds{Relative: nan()}, FieldCounts{Raw: 1, Compared: 1}, false},
	} {
		if got := tc.th.Regression(tc.f); got != tc.want {
			raw, noise := tc.f.Rates()
			t.Errorf("%s: Regression(%+v) = %v, want %v (rates %g %g)", tc.name, tc.f, got, tc.want, raw, noise)
		}
	}
}

func nan() float64 { var z float64; return z / z }

func TestRates(t *testing.T) {
	raw, noise := FieldCounts{Raw: 1, Compared: 4, Noise: 1, NoiseCompared: 10}.Rates()
	if raw != 0.25 || noise != 0.1 {
		t.Errorf("Rates = %g %g", raw, noise)
	}
	if raw, noise := (FieldCounts{}).Rates(); raw != 0 || noise != 0 {
		t.Errorf("empty Rates = %g %g", raw, noise)
	}
}

// TestNoiseEndToEnd plays Diffy's setup: every answer carries a random
// request id and a timestamp, and the candidate changes a price in one
// request out of ten. Counting Diff results per field as the gateway
// would, the random fields come out as noise and the price as a regression.
func TestNoiseEndToEnd(t *testing.T) {
	c := mustNew(t, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	answer := func(i int, price float64) *Response {
		body := fmt.Sprintf(`{"request_id":"%x","served_at":%d,"item":{"id":%d,"price":%g,"tags":["a","b"]}}`,
			rng.Uint64(), 1700000000+rng.IntN(3), i, price)
		r := jsonResp(body)
		r.Header.Set("X-Instance", fmt.Sprint(rng.IntN(2))) // random per answer too
		return r
	}
	counts := map[string]*FieldCounts{}
	get := func(f string) *FieldCounts {
		if counts[f] == nil {
			counts[f] = &FieldCounts{}
		}
		return counts[f]
	}
	const n = 5000
	for i := range n {
		live, secondary := answer(i, 9.99), answer(i, 9.99)
		price := 9.99
		if i%10 == 0 {
			price = 10.99
		}
		candidate := answer(i, price)
		raw, noise := c.Diff(live, candidate), c.Diff(live, secondary)
		for f := range fieldsOf(raw) {
			get(f).Raw++
		}
		for f := range fieldsOf(noise) {
			get(f).Noise++
		}
	}
	for f, fc := range counts {
		fc.Compared, fc.NoiseCompared = n, n
		want := f == "$.item.price"
		if got := DefaultThresholds.Regression(*fc); got != want {
			raw, noise := fc.Rates()
			t.Errorf("%s: regression %v, want %v (raw %.4f, noise %.4f)", f, got, want, raw, noise)
		}
	}
	for _, f := range []string{"$.request_id", "$.served_at", "header:X-Instance", "$.item.price"} {
		if counts[f] == nil {
			t.Errorf("field %s never differed", f)
		}
	}
}

func fieldsOf(ds []Difference) map[string]bool {
	m := map[string]bool{}
	for _, d := range ds {
		m[d.Field] = true
	}
	return m
}
