package stats

import "math"

// normalCDF is the standard normal distribution function Φ(z).
func normalCDF(z float64) float64 {
	return 0.5 * math.Erfc(-z/math.Sqrt2)
}

// normalSF is the standard normal upper tail 1-Φ(z), computed without the
// cancellation of 1-normalCDF(z) so that small p-values keep their digits.
func normalSF(z float64) float64 {
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

// normalQuantile is Φ⁻¹(p) for p in (0, 1): ±Inf at 0 and 1, NaN outside.
func normalQuantile(p float64) float64 {
	if p < 0 || p > 1 || math.IsNaN(p) {
		return math.NaN()
	}
	if p < 0.5 {
		// Erfcinv keeps precision in the lower tail, where 2p-1 ≈ -1.
		return -math.Sqrt2 * math.Erfcinv(2*p)
	}
	return math.Sqrt2 * math.Erfinv(2*p-1)
}

// clamp01 keeps a computed probability inside [0, 1] despite rounding.
func clamp01(p float64) float64 {
	if p < 0 {
		return 0
	}
	if p > 1 {
		return 1
	}
	return p
}
