package stats

import (
	"math"
	"testing"
)

func TestMinSamplesNeeded(t *testing.T) {
	// Live rate known (LiveTotal 0): the closed form.
	// R: ((qnorm(0.98)*sqrt(0.01*0.99) + qnorm(0.8)*sqrt(0.015*0.985))/0.005)^2
	//    = 3761.2846573895035
	n, err := MinSamplesNeeded(SampleSizeParams{LiveErrorRate: 0.01, MaxIncrease: 0.005, Confidence: 0.98})
	if err != nil || n != 3762 {
		t.Errorf("known live rate: n = %d, %v; want 3762", n, err)
	}

	// With equal group sizes the condition is R's power.prop.test; with
	// LiveTotal set to R's n the canary needs that same n.
	for _, c := range []struct {
		rcall        string
		p0, p1, conf float64
		power        float64
		rn           float64
	}{
		{`power.prop.test(p1=0.01, p2=0.015, sig.level=0.02, power=0.8, alternative="one.sided")$n`,
			0.01, 0.015, 0.98, 0.8, 8277.1601566356931},
		{`power.prop.test(p1=0.002, p2=0.007, sig.level=0.02, power=0.9, alternative="one.sided")$n`,
			0.002, 0.007, 0.98, 0.9, 3984.5636453847555},
	} {
		live := int64(math.Ceil(c.rn))
		n, err := MinSamplesNeeded(SampleSizeParams{
			LiveErrorRate: c.p0, LiveTotal: live, MaxIncrease: c.p1 - c.p0,
			Confidence: c.conf, Power: c.power,
		})
		if err != nil || n < live-1 || n > live {
			t.Errorf("%s = %v: n = %d, %v; want %d", c.rcall, c.rn, n, err, live)
		}
	}

	// No live errors at all: the normal approximation alone would ask for
	// very few requests; the floor asks for 5 expected errors.
	n, _ = MinSamplesNeeded(SampleSizeParams{LiveErrorRate: 0, MaxIncrease: 0.005, Confidence: 0.98})
	if n != 1000 {
		t.Errorf("p0 = 0: n = %d, want 1000 (5 / 0.005)", n)
	}

	// More live data, higher confidence, higher power or a smaller
	// increase never needs fewer canary requests.
	base := SampleSizeParams{LiveErrorRate: 0.02, LiveTotal: 20000, MaxIncrease: 0.01, Confidence: 0.95}
	nb, _ := MinSamplesNeeded(base)
	for _, p := range []SampleSizeParams{
		{LiveErrorRate: 0.02, LiveTotal: 5000, MaxIncrease: 0.01, Confidence: 0.95},
		{LiveErrorRate: 0.02, LiveTotal: 20000, MaxIncrease: 0.005, Confidence: 0.95},
		{LiveErrorRate: 0.02, LiveTotal: 20000, MaxIncrease: 0.01, Confidence: 0.99},
		{LiveErrorRate: 0.02, LiveTotal: 20000, MaxIncrease: 0.01, Confidence: 0.95, Power: 0.95},
	} {
		if n, _ := MinSamplesNeeded(p); n < nb {
			t.Errorf("%+v needs %d < %d", p, n, nb)
		}
	}
	// The bisection found the boundary: one fewer request is not enough.
	for _, live := range []int64{3000, 20000, 1 << 40} {
		p := base
		p.LiveTotal = live
		n, err := MinSamplesNeeded(p)
		if err != nil {
			t.Fatal(err)
		}
		enough := func(nc float64) bool {
			p1, nl := p.LiveErrorRate+p.MaxIncrease, float64(live)
			pb := (nc*p1 + nl*p.LiveErrorRate) / (nc + nl)
			return normalQuantile(p.Confidence)*math.Sqrt(pb*(1-pb)*(1/nc+1/nl))+
				normalQuantile(0.8)*math.Sqrt(p1*(1-p1)/nc+p.LiveErrorRate*(1-p.LiveErrorRate)/nl) <= p.MaxIncrease
		}
		if !enough(float64(n)) || enough(float64(n-1)) {
			t.Errorf("live %d: n = %d is not the boundary", live, n)
		}
	}

	// A live sample too small to pin p0 down within δ.
	if _, err := MinSamplesNeeded(SampleSizeParams{LiveErrorRate: 0.2, LiveTotal: 10, MaxIncrease: 0.01, Confidence: 0.98}); err == nil {
		t.Error("tiny live sample: no error")
	}
	for _, bad := range []SampleSizeParams{
		{LiveErrorRate: -0.1, MaxIncrease: 0.01, Confidence: 0.9},
		{LiveErrorRate: 1, MaxIncrease: 0.01, Confidence: 0.9},
		{LiveErrorRate: 0.1, MaxIncrease: 0, Confidence: 0.9},
		{LiveErrorRate: 0.5, MaxIncrease: 0.6, Confidence: 0.9},
		{LiveErrorRate: 0.1, MaxIncrease: 0.01, Confidence: 1},
		{LiveErrorRate: 0.1, MaxIncrease: 0.01, Confidence: 0.9, Power: 1.5},
		{LiveErrorRate: 0.1, MaxIncrease: 0.01, Confidence: 0.9, LiveTotal: -1},
		{LiveErrorRate: math.NaN(), MaxIncrease: 0.01, Confidence: 0.9},
	} {
		if _, err := MinSamplesNeeded(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// The planned size delivers roughly the promised power when simulated with
// the test CompareProportions runs.
func TestMinSamplesNeededPower(t *testing.T) {
	p := SampleSizeParams{LiveErrorRate: 0.02, LiveTotal: 50000, MaxIncrease: 0.01, Confidence: 0.98}
	n, err := MinSamplesNeeded(p)
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRand(13)
	const trials = 400
	detected := 0
	for range trials {
		ce := binomial(r, n, 0.03)
		le := binomial(r, p.LiveTotal, 0.02)
		res, err := CompareProportions(ce, n, le, p.LiveTotal)
		if err != nil {
			t.Fatal(err)
		}
		if res.P < 1-p.Confidence {
			detected++
		}
	}
	// Promised 0.8; binomial sd over 400 trials is 0.02.
	if pw := float64(detected) / trials; pw < 0.72 || pw > 0.88 {
		t.Errorf("n = %d: simulated power %.3f, want about 0.8", n, pw)
	}
}
