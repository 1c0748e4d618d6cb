package compare

import (
	"math"
	"math/big"
	"strconv"
)

// Thresholds separate regressions from noise, as in Twitter's Diffy.
type Thresholds struct {
	// Relative is the least share of a field's difference rate that must
	// not be explained by noise: (raw-noise)/raw > Relative.
	Relative float64 `json:"relative"`
	// Absolute is the least difference between the rates: raw-noise > Absolute.
	Absolute float64 `json:"absolute"`
}

// DefaultThresholds are Diffy's defaults: 20% relative, 0.03% absolute.
var DefaultThresholds = Thresholds{Relative: 0.20, Absolute: 0.0003}

// FieldCounts are one endpoint's counts for one field. Raw counts
// live-vs-candidate differences among Compared requests; Noise counts
// live-vs-secondary differences among NoiseCompared requests (both 0
// without a secondary).
type FieldCounts struct {
	Raw, Compared, Noise, NoiseCompared int64
}

// Rates returns the raw and noise difference rates, 0 when nothing was
// compared.
func (f FieldCounts) Rates() (raw, noise float64) {
	if f.Compared > 0 {
		raw = float64(f.Raw) / float64(f.Compared)
	}
	if f.NoiseCompared > 0 {
		noise = float64(f.Noise) / float64(f.NoiseCompared)
	}
	return raw, noise
}

// Regression reports whether a field really changed: with raw and noise
// the rates of f,
//
//	raw > noise  and  (raw-noise)/raw > Relative  and  raw-noise > Absolute
//
// all strict. Without a secondary the noise rate is 0, so any difference
// rate above Absolute is a regression. A field that differs as often
// between two live instances as between live and candidate (a timestamp, a
// random id) is noise.
//
// The test is exact: rates are fractions of integer counts and thresholds
// are taken as the decimals they print as (0.0003 is 3/10000, not the
// nearest float64), so a rate exactly at a threshold is never a regression.
func (t Thresholds) Regression(f FieldCounts) bool {
	if f.Compared <= 0 || f.Raw <= 0 || !finite(t.Relative) || !finite(t.Absolute) {
		return false
	}
	raw := new(big.Rat).SetFrac64(f.Raw, f.Compared)
	noise := new(big.Rat)
	if f.NoiseCompared > 0 {
		noise.SetFrac64(f.Noise, f.NoiseCompared)
	}
	diff := new(big.Rat).Sub(raw, noise)
	if diff.Sign() <= 0 {
		return false
	}
	// (raw-noise)/raw > Relative  <=>  raw-noise > Relative*raw, as raw > 0.
	rel := new(big.Rat).Mul(decimal(t.Relative), raw)
	return diff.Cmp(rel) > 0 && diff.Cmp(decimal(t.Absolute)) > 0
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// decimal returns x as the shortest decimal that parses back to it.
func decimal(x float64) *big.Rat {
	r := new(big.Rat)
	if _, ok := r.SetString(strconv.FormatFloat(x, 'g', -1, 64)); !ok {
		r.SetFloat64(x)
	}
	return r
}
