package stats

import (
	"errors"
	"math"
)

// SampleSizeParams describe the error-rate increase a canary analysis must
// be able to see.
type SampleSizeParams struct {
	// LiveErrorRate is live's observed error rate p₀, in [0, 1).
	LiveErrorRate float64

	// LiveTotal is the number of live requests p₀ was measured on. 0 means
	// p₀ is treated as known exactly (live traffic much larger than the
	// canary's), which needs the fewest canary requests.
	LiveTotal int64

	// MaxIncrease is the absolute increase δ of the error rate that must be
	// detectable, for example 0.005 for max_error_rate_increase: 0.005.
	MaxIncrease float64

	// Confidence is the one-sided confidence of the test, 1 − α, for
	// example 0.98.
	Confidence float64

	// Power is the probability that a true increase of MaxIncrease is
	// detected, 1 − β. 0 means 0.8, the usual choice.
	Power float64
}

// DefaultPower is the Power used when SampleSizeParams.Power is 0.
const DefaultPower = 0.8

// MinSamplesNeeded returns how many canary requests are needed before the
// one-sided pooled two-proportion z-test of CompareProportions, at
// p.Confidence, detects with probability p.Power a canary error rate of
// p₀ + δ against live's p₀. The caller can subtract the canary requests
// already seen and tell the operator "N more requests needed" instead of
// judging on too little data.
//
// It uses the normal approximation to the test's power (Fleiss, Levin and
// Paik, Statistical Methods for Rates and Proportions, 3rd ed., §4.2,
// without continuity correction): with p₁ = p₀ + δ, n_c canary and n_l live
// requests and p̄ = (n_c·p₁ + n_l·p₀)/(n_c + n_l), the smallest n_c with
//
//	δ ≥ z₁₋α·√(p̄(1−p̄)(1/n_c + 1/n_l)) + z₁₋β·√(p₁(1−p₁)/n_c + p₀(1−p₀)/n_l).
//
// With LiveTotal 0 the live terms vanish (n_l → ∞, p̄ = p₀), giving
// n_c = ((z₁₋α·√(p₀(1−p₀)) + z₁₋β·√(p₁(1−p₁)))/δ)².
//
// The normal approximation is poor when errors are rare, so the answer is
// never below the count at which the canary is expected to see
// MinExpectedCount errors at rate p₁ (⌈5/p₁⌉): the point where
// CompareProportions also leaves Fisher's test for the z-test. It is an
// estimate for planning and for messages, not a guarantee.
//
// It returns an error for parameters out of range, and when no number of
// canary requests is enough because the live sample itself is too small
// to pin p₀ down to within δ (then more live traffic is needed first).
func MinSamplesNeeded(p SampleSizeParams) (int64, error) {
	p0, d := p.LiveErrorRate, p.MaxIncrease
	power := p.Power
	if power == 0 {
		power = DefaultPower
	}
	switch {
	case !(p0 >= 0 && p0 < 1):
		return 0, errors.New("stats: live error rate must be in [0, 1)")
	case !(d > 0 && p0+d <= 1):
		return 0, errors.New("stats: max increase must be in (0, 1 − live error rate]")
	case !(p.Confidence > 0 && p.Confidence < 1):
		return 0, errors.New("stats: confidence must be in (0, 1)")
	case !(power > 0 && power < 1):
		return 0, errors.New("stats: power must be in (0, 1)")
	case p.LiveTotal < 0:
		return 0, errors.New("stats: negative live total")
	}
	p1 := p0 + d
	za := normalQuantile(p.Confidence)
	zb := normalQuantile(power)
	floor := int64(math.Ceil(MinExpectedCount / p1))

	if p.LiveTotal == 0 {
		s := (za*math.Sqrt(p0*(1-p0)) + zb*math.Sqrt(p1*(1-p1))) / d
		return max(floor, int64(math.Ceil(s*s))), nil
	}

	nl := float64(p.LiveTotal)
	// enough reports whether nc canary requests meet the power condition.
	enough := func(nc float64) bool {
		pb := (nc*p1 + nl*p0) / (nc + nl)
		need := za*math.Sqrt(pb*(1-pb)*(1/nc+1/nl)) +
			zb*math.Sqrt(p1*(1-p1)/nc+p0*(1-p0)/nl)
		return need <= d
	}
	// The right-hand side falls as nc grows toward its value at nc = ∞
	// (checked numerically near the threshold for live rates 0–0.8,
	// increases 0.0005–0.15, live totals 100–1e8), so double until
	// enough, then bisect.
	const limit = 1 << 50
	hi := int64(1)
	for !enough(float64(hi)) {
		if hi >= limit {
			return 0, errors.New("stats: live sample too small to detect this increase; more live traffic needed")
		}
		hi *= 2
	}
	lo := hi / 2 // not enough (or 0)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if enough(float64(mid)) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return max(floor, hi), nil
}
