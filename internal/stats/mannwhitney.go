package stats

import (
	"errors"
	"math"
	"math/bits"
	"slices"
)

// Alternative is the alternative hypothesis of a test, always stated for the
// canary against live.
type Alternative int

const (
	// TwoSided: the canary's values differ from live's in either direction.
	TwoSided Alternative = iota
	// Greater: the canary's values tend to be larger than live's (for
	// latency, the canary is slower). This is the canary question.
	Greater
	// Less: the canary's values tend to be smaller than live's.
	Less
)

// Errors returned for unusable input.
var (
	ErrEmptySample    = errors.New("stats: empty sample")
	ErrNaN            = errors.New("stats: sample contains NaN")
	ErrNotFinite      = errors.New("stats: sample contains an infinite value")
	ErrBadAlternative = errors.New("stats: unknown alternative")
)

// ExactLimit: MannWhitney uses the exact distribution of U when both samples
// have fewer than ExactLimit observations and there are no ties, as R's
// wilcox.test does; otherwise the normal approximation.
const ExactLimit = 50

// MannWhitneyResult is the outcome of a Mann-Whitney U test of the canary
// sample against the live sample.
type MannWhitneyResult struct {
	NCanary, NLive int

	// U is the canary's U statistic: the number of (canary, live) pairs in
	// which the canary value is larger, plus half the number of pairs that
	// are equal. It lies in [0, NCanary*NLive] and is R's W statistic for
	// wilcox.test(canary, live). Live's U is NCanary*NLive - U.
	U float64

	// ProbCanaryGreater is U/(NCanary*NLive): the estimated probability
	// that a canary observation exceeds a live one (ties counted half), an
	// effect size that does not depend on sample size. 0.5 means no
	// difference.
	ProbCanaryGreater float64

	// Z is the standardized statistic of the normal approximation, with the
	// tie-corrected variance and the continuity correction for Alternative
	// (as R computes it). It is filled in also when P comes from the exact
	// distribution, for information; 0 when every value is tied.
	Z float64

	// P is the p-value for Alternative, in [0, 1].
	P float64

	Alternative Alternative

	// Exact reports that P comes from the exact distribution of U
	// (both samples under ExactLimit, no ties) rather than the normal
	// approximation.
	Exact bool

	// Ties reports that some value occurs more than once in the combined
	// sample (within or across samples).
	Ties bool
}

// MannWhitney performs the Mann-Whitney U test (Wilcoxon rank-sum test) of
// the null hypothesis that canary and live observations come from the same
// distribution, against alt. It gives the same answer as R's
// wilcox.test(canary, live, alternative = alt, correct = TRUE):
//
//   - Without ties and with both samples smaller than ExactLimit (50), P is
//     exact, from the distribution of U over all rank orders.
//   - Otherwise P uses the normal approximation with the tie-corrected
//     variance n₁n₂/12·((N+1) − Σ(t³−t)/(N(N−1))), t the size of each group
//     of equal values, and a continuity correction of 0.5 toward the null.
//     (With ties the exact conditional distribution exists but R does not
//     use it, and for canary-sized samples the approximation is good.)
//
// When every observation is equal there is no evidence of a difference:
// P is 1 and Z is 0.
//
// Cost: both samples are copied and sorted, O(N log N) time and O(N) memory
// for N = len(canary)+len(live); the exact distribution, when used, adds at
// most about 120,000 128-bit additions (49 × 49 samples, about 0.3 ms). NaN is rejected
// (ErrNaN); ±Inf rank as the largest and smallest values.
func MannWhitney(canary, live []float64, alt Alternative) (MannWhitneyResult, error) {
	if alt != TwoSided && alt != Greater && alt != Less {
		return MannWhitneyResult{}, ErrBadAlternative
	}
	x, err := sortedCopy(canary, false)
	if err != nil {
		return MannWhitneyResult{}, err
	}
	y, err := sortedCopy(live, false)
	if err != nil {
		return MannWhitneyResult{}, err
	}
	return mannWhitneySorted(x, y, alt), nil
}

// mannWhitneySorted runs the test on sorted, non-empty, NaN-free samples.
func mannWhitneySorted(x, y []float64, alt Alternative) MannWhitneyResult {
	m, n := len(x), len(y)
	rs := rankSums(x, y)
	mn := float64(m) * float64(n)
	res := MannWhitneyResult{
		NCanary:           m,
		NLive:             n,
		U:                 rs.u,
		ProbCanaryGreater: rs.u / mn,
		Alternative:       alt,
		Ties:              rs.ties,
	}

	sigma := uSigma(m, n, rs.tieSum)
	if sigma > 0 {
		d := rs.u - mn/2
		var corr float64
		switch alt {
		case TwoSided:
			if d > 0 {
				corr = 0.5
			} else if d < 0 {
				corr = -0.5
			}
		case Greater:
			corr = 0.5
		case Less:
			corr = -0.5
		}
		res.Z = (d - corr) / sigma
	}

	switch {
	case sigma == 0:
		// Every observation is the same value.
		res.P = 1
	case !rs.ties && m < ExactLimit && n < ExactLimit:
		res.Exact = true
		res.P = exactUPValue(int(rs.u), m, n, alt)
	default:
		switch alt {
		case TwoSided:
			res.P = 2 * normalSF(math.Abs(res.Z))
		case Greater:
			res.P = normalSF(res.Z)
		case Less:
			res.P = normalCDF(res.Z)
		}
	}
	res.P = clamp01(res.P)
	return res
}

// uSigma is the standard deviation of U under the null hypothesis, with the
// tie correction tieSum = Σ(t³−t) over groups of equal values.
func uSigma(m, n int, tieSum float64) float64 {
	N := float64(m + n)
	v := float64(m) * float64(n) / 12 * ((N + 1) - tieSum/(N*(N-1)))
	if v <= 0 {
		return 0
	}
	return math.Sqrt(v)
}

type rankSummary struct {
	u      float64 // canary's U
	tieSum float64 // Σ(t³−t) over groups of equal values in the combined sample
	ties   bool
}

// rankSums walks the two sorted samples together once.
func rankSums(x, y []float64) rankSummary {
	var rs rankSummary
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		var v float64
		switch {
		case i == len(x):
			v = y[j]
		case j == len(y):
			v = x[i]
		default:
			v = min(x[i], y[j])
		}
		a := 0
		for i < len(x) && x[i] == v {
			a++
			i++
		}
		below := j // live values smaller than v
		b := 0
		for j < len(y) && y[j] == v {
			b++
			j++
		}
		rs.u += float64(a)*float64(below) + 0.5*float64(a)*float64(b)
		if t := float64(a + b); t > 1 {
			rs.ties = true
			rs.tieSum += t*t*t - t
		}
	}
	return rs
}

// sortedCopy returns a sorted copy of xs. It rejects empty input and NaN,
// and ±Inf too when finite is set.
func sortedCopy(xs []float64, finite bool) ([]float64, error) {
	if len(xs) == 0 {
		return nil, ErrEmptySample
	}
	for _, v := range xs {
		if math.IsNaN(v) {
			return nil, ErrNaN
		}
		if finite && math.IsInf(v, 0) {
			return nil, ErrNotFinite
		}
	}
	c := slices.Clone(xs)
	slices.Sort(c)
	return c, nil
}

// exactUPValue is R's exact p-value for an untied U statistic u:
//
//	two-sided: min(1, 2·(u > mn/2 ? P(U ≥ u) : P(U ≤ u)))
//	greater:   P(U ≥ u)
//	less:      P(U ≤ u)
func exactUPValue(u, m, n int, alt Alternative) float64 {
	d := newUDist(m, n)
	switch alt {
	case Greater:
		return d.sf(u)
	case Less:
		return d.cdf(u)
	}
	var p float64
	if 2*u > m*n {
		p = d.sf(u)
	} else {
		p = d.cdf(u)
	}
	return min(1, 2*p)
}

// uDist is the exact null distribution of the Mann-Whitney U statistic for
// untied samples of sizes m and n. It is symmetric about mn/2, so only the
// lower half is ever counted.
type uDist struct {
	m, n  int
	total float64 // C(m+n, m): the number of equally likely rank orders
}

func newUDist(m, n int) uDist {
	t := 1.0
	for i := 1; i <= m; i++ {
		t = t * float64(n+i) / float64(i)
	}
	return uDist{m: m, n: n, total: math.Round(t)}
}

// counts returns c[u] for u = 0..k: the number of rank orders with U = u.
//
// The counts are the coefficients of the Gaussian binomial coefficient
// [m+n choose m](q) = Π_{i=1..m} (1 − q^(n+i)) / (1 − q^i), so they are
// built by m multiplications by (1 − q^a) (c[u] −= c[u−a], downward) and
// m divisions by (1 − q^b) as a power series (c[u] += c[u−b], upward),
// truncated at q^k: O(min(m,n)·k) time. Intermediate values go negative,
// so the arithmetic is exact 128-bit two's-complement integers: every step
// is a ring operation, so the results are exact modulo 2^128, and the final
// counts (at most C(98, 49) ≈ 2^94) are exact. Only the conversion to
// float64 rounds.
func (d uDist) counts(k int) []float64 {
	m, n := min(d.m, d.n), max(d.m, d.n) // the counts are symmetric in m, n
	lo := make([]uint64, k+1)
	hi := make([]uint64, k+1)
	lo[0] = 1
	for i := 1; i <= m; i++ {
		if a := n + i; a <= k {
			for u := k; u >= a; u-- {
				var b uint64
				lo[u], b = bits.Sub64(lo[u], lo[u-a], 0)
				hi[u], _ = bits.Sub64(hi[u], hi[u-a], b)
			}
		}
		for u := i; u <= k; u++ {
			var c uint64
			lo[u], c = bits.Add64(lo[u], lo[u-i], 0)
			hi[u], _ = bits.Add64(hi[u], hi[u-i], c)
		}
	}
	out := make([]float64, k+1)
	for u := range out {
		out[u] = float64(hi[u])*0x1p64 + float64(lo[u])
	}
	return out
}

// lowerSum is P(U ≤ k) for k ≤ mn/2, summed directly.
func (d uDist) lowerSum(k int) float64 {
	c := d.counts(k)
	s := 0.0
	for _, v := range c {
		s += v
	}
	return s / d.total
}

// cdf is P(U ≤ u).
func (d uDist) cdf(u int) float64 {
	mn := d.m * d.n
	switch {
	case u < 0:
		return 0
	case u >= mn:
		return 1
	case 2*u <= mn:
		return d.lowerSum(u)
	}
	// P(U ≤ u) = 1 − P(U ≥ u+1) = 1 − P(U ≤ mn−u−1) by symmetry.
	return 1 - d.lowerSum(mn-u-1)
}

// sf is P(U ≥ u) = P(U ≤ mn − u).
func (d uDist) sf(u int) float64 {
	return d.cdf(d.m*d.n - u)
}
