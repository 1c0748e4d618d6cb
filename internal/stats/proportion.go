package stats

import (
	"errors"
	"math"
)

// ProportionTest names the test CompareProportions used.
type ProportionTest int

const (
	// NoTest: a side has no requests, so nothing can be said (P = 1).
	NoTest ProportionTest = iota
	// ZTest: the two-proportion z-test with pooled variance.
	ZTest
	// FisherExact: Fisher's exact test (one-sided, hypergeometric).
	FisherExact
)

// MinExpectedCount is the smallest expected count, in every cell of the
// 2×2 table (errors and successes of each version, expected under equal
// rates), for which CompareProportions trusts the z-test (Cochran's rule);
// below it Fisher's exact test is used.
const MinExpectedCount = 5

// ProportionResult compares the canary's error rate with live's.
type ProportionResult struct {
	CanaryRate, LiveRate float64 // errors / total, 0 when the total is 0
	Difference           float64 // CanaryRate − LiveRate

	// Z is the pooled two-proportion z statistic
	// (p̂c − p̂l) / √(p̂(1−p̂)(1/nc + 1/nl)), p̂ the pooled rate. It is
	// filled in whenever that variance is positive, also when P comes
	// from Fisher's test, for information; Z² is the X-squared of R's
	// prop.test(correct = FALSE).
	Z float64

	// P is the one-sided p-value for "the canary's error rate is higher
	// than live's".
	P float64

	// Test is the test that produced P.
	Test ProportionTest
}

// CompareProportions tests, one-sided, whether the canary's error rate is
// higher than live's, from error and request counts of each version.
//
//   - When all four expected counts are at least MinExpectedCount it uses
//     the pooled two-proportion z-test, P = 1 − Φ(Z), equal to R's
//     prop.test(c(ce, le), c(ct, lt), alternative = "greater",
//     correct = FALSE)$p.value.
//   - Otherwise Fisher's exact test: P is the probability, given the total
//     number of errors, that the canary would get at least ce of them,
//     Σ_{x ≥ ce} C(E, x)·C(N−E, ct−x)/C(N, ct). Terms are computed in log
//     space (one log-gamma evaluation, then ratios of consecutive terms) so
//     that millions of requests do not overflow. It equals R's
//     fisher.test(matrix(c(ce, le, ct−ce, lt−le), 2),
//     alternative = "greater")$p.value.
//   - With no requests on either side, Test is NoTest and P is 1.
//
// It returns an error for negative counts or more errors than requests.
func CompareProportions(canaryErrors, canaryTotal, liveErrors, liveTotal int64) (ProportionResult, error) {
	if canaryErrors < 0 || liveErrors < 0 || canaryTotal < 0 || liveTotal < 0 {
		return ProportionResult{}, errors.New("stats: negative count")
	}
	if canaryErrors > canaryTotal || liveErrors > liveTotal {
		return ProportionResult{}, errors.New("stats: more errors than requests")
	}
	var r ProportionResult
	if canaryTotal > 0 {
		r.CanaryRate = float64(canaryErrors) / float64(canaryTotal)
	}
	if liveTotal > 0 {
		r.LiveRate = float64(liveErrors) / float64(liveTotal)
	}
	r.Difference = r.CanaryRate - r.LiveRate
	if canaryTotal == 0 || liveTotal == 0 {
		r.P, r.Test = 1, NoTest
		return r, nil
	}

	nc, nl := float64(canaryTotal), float64(liveTotal)
	N := nc + nl
	E := float64(canaryErrors + liveErrors)
	pooled := E / N
	if v := pooled * (1 - pooled) * (1/nc + 1/nl); v > 0 {
		r.Z = r.Difference / math.Sqrt(v)
	}

	// Expected counts under equal rates.
	minExp := min(nc*pooled, nl*pooled, nc*(1-pooled), nl*(1-pooled))
	if minExp >= MinExpectedCount {
		r.Test = ZTest
		r.P = clamp01(normalSF(r.Z))
		return r, nil
	}
	r.Test = FisherExact
	r.P = fisherGreater(canaryErrors, canaryTotal, canaryErrors+liveErrors, canaryTotal+liveTotal)
	return r, nil
}

// fisherGreater is P(X ≥ x) for X hypergeometric: the number of marked
// items in a draw of size draw from total items of which marked are marked
// (R's phyper(x − 1, marked, total − marked, draw, lower.tail = FALSE)).
func fisherGreater(x, draw, marked, total int64) float64 {
	lo := max(0, draw-(total-marked)) // smallest possible X
	hi := min(draw, marked)           // largest possible X
	if x <= lo {
		return 1
	}
	if x > hi {
		return 0
	}
	// log P(X = x), then P(X = k+1)/P(X = k) =
	// (marked−k)(draw−k) / ((k+1)(total−marked−draw+k+1)).
	logTerm := logHyperPMF(x, draw, marked, total)
	// Sum in a scale relative to the first term, rescaling when a term
	// exceeds the running maximum (log-sum-exp on the fly).
	maxLog, sum := logTerm, 1.0
	cur := logTerm
	for k := x; k < hi; k++ {
		cur += math.Log(float64(marked-k)) + math.Log(float64(draw-k)) -
			math.Log(float64(k+1)) - math.Log(float64(total-marked-draw+k+1))
		if cur > maxLog {
			sum = sum*math.Exp(maxLog-cur) + 1
			maxLog = cur
			continue
		}
		t := math.Exp(cur - maxLog)
		sum += t
		// Past the mode the terms only shrink: stop when they no
		// longer change the sum.
		if t < 1e-18*sum {
			break
		}
	}
	return clamp01(math.Exp(maxLog + math.Log(sum)))
}

// logHyperPMF is log P(X = x) for the hypergeometric distribution of
// fisherGreater. The pmf is symmetric in draw and marked; with s the
// smaller and l the larger of the two,
//
//	P(X = x) = C(s, x) · Π_{i<x}(l−i) · Π_{i<s−x}(total−l−i) / Π_{i<s}(total−i),
//
// a sum of 2s logarithms of moderate size. For up to 65,536 terms that is
// used, because log-gamma differences of numbers near a million lose about
// eight digits to cancellation; beyond it (rare: Fisher's test is chosen
// when counts are small) log-gamma, whose relative error then is ~1e-8.
func logHyperPMF(x, draw, marked, total int64) float64 {
	s, l := min(draw, marked), max(draw, marked)
	if s > 1<<16 {
		return logChoose(marked, x) + logChoose(total-marked, draw-x) - logChoose(total, draw)
	}
	r := logChoose(s, x)
	for i := int64(0); i < x; i++ {
		r += math.Log(float64(l - i))
	}
	for i := int64(0); i < s-x; i++ {
		r += math.Log(float64(total - l - i))
	}
	for i := int64(0); i < s; i++ {
		r -= math.Log(float64(total - i))
	}
	return r
}

// logChoose is log C(n, k) by log-gamma.
func logChoose(n, k int64) float64 {
	a, _ := math.Lgamma(float64(n) + 1)
	b, _ := math.Lgamma(float64(k) + 1)
	c, _ := math.Lgamma(float64(n-k) + 1)
	return a - b - c
}
