package rollout

import (
	"fmt"
	"math"
	"time"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/stats"
)

// verdict of one analysis.
type verdict string

// Verdicts.
const (
	verdictPass verdict = "pass" // the step's gates hold: go to the next step
	verdictWait verdict = "wait" // not enough data or time yet: hold, say what is missing
	verdictFail verdict = "fail" // the canary is worse: roll back
)

// result is an analysis with the numbers it was based on, recorded with
// every decision so an operator can see why.
type result struct {
	Verdict verdict            `json:"verdict"`
	Reason  string             `json:"reason"`
	Inputs  map[string]float64 `json:"inputs"`
}

// analyzeCanary judges a canary step on its window: enough data first,
// then errors (significant and above the allowed increase), then latency
// (Mann-Whitney U and the Hodges-Lehmann shift, as Kayenta does, and the
// p99 ratio).
func analyzeCanary(c counts, step *config.CanaryStep, a *config.Analysis) result {
	in := map[string]float64{
		"live_requests": float64(c.liveN), "canary_requests": float64(c.canaryN),
		"live_errors": float64(c.liveErr), "canary_errors": float64(c.canaryErr),
		"elapsed_seconds": c.elapsed.Seconds(),
	}
	if missing := waitingFor(c, step.MinRequests, step.MinDuration.D()); missing != "" {
		if n, ok := toDetect(c, a); ok {
			in["canary_requests_to_detect"] = float64(n)
		}
		return result{verdictWait, missing, in}
	}
	if r, done := errorVerdict(c, a, in); done {
		return r
	}
	if r, done := latencyVerdict(c, a, in); done {
		return r
	}
	return result{verdictPass, fmt.Sprintf("canary no worse than live over %d/%d requests", c.canaryN, c.liveN), in}
}

// waitingFor says what a step still needs, or "" when it has enough. Too
// little data is never a failure: a quiet service holds (Flagger's "no
// values found" rollbacks are what this avoids).
func waitingFor(c counts, minRequests int64, minDuration time.Duration) string {
	var needs []string
	if c.canaryN < minRequests {
		needs = append(needs, fmt.Sprintf("%d more canary requests", minRequests-c.canaryN))
	}
	if c.liveN < minRequests {
		needs = append(needs, fmt.Sprintf("%d more live requests", minRequests-c.liveN))
	}
	if c.elapsed < minDuration {
		needs = append(needs, fmt.Sprintf("%s more time", (minDuration-c.elapsed).Round(time.Second)))
	}
	if len(needs) == 0 {
		return ""
	}
	return "waiting for " + joinAnd(needs)
}

// toDetect is how many more canary requests the error test needs to
// detect an increase of max_error_rate_increase over live's observed
// rate at the analysis's confidence (stats.MinSamplesNeeded), which
// min_requests may well be below; false when it cannot tell (no live
// requests yet, or too few to pin live's rate down).
func toDetect(c counts, a *config.Analysis) (int64, bool) {
	if c.liveN == 0 {
		return 0, false
	}
	n, err := stats.MinSamplesNeeded(stats.SampleSizeParams{LiveErrorRate: float64(c.liveErr) / float64(c.liveN),
		LiveTotal: c.liveN, MaxIncrease: a.MaxErrorRateIncrease, Confidence: a.Confidence})
	if err != nil {
		return 0, false
	}
	return max(n-c.canaryN, 0), true
}

func errorVerdict(c counts, a *config.Analysis, in map[string]float64) (result, bool) {
	p, err := stats.CompareProportions(c.canaryErr, c.canaryN, c.liveErr, c.liveN)
	if err != nil {
		return result{verdictWait, "error counts: " + err.Error(), in}, true
	}
	in["live_error_rate"], in["canary_error_rate"], in["error_p_value"] = p.LiveRate, p.CanaryRate, p.P
	increase := p.CanaryRate - p.LiveRate
	if increase > a.MaxErrorRateIncrease && p.P < 1-a.Confidence {
		return result{verdictFail, fmt.Sprintf("canary error rate %.2f%% vs live %.2f%% (+%.2f points > allowed %.2f, p=%.2g)",
			100*p.CanaryRate, 100*p.LiveRate, 100*increase, 100*a.MaxErrorRateIncrease, p.P), in}, true
	}
	return result{}, false
}

func latencyVerdict(c counts, a *config.Analysis, in map[string]float64) (result, bool) {
	if len(c.canaryMs) < 2 || len(c.liveMs) < 2 {
		return result{}, false
	}
	l := a.Latency
	mw, err := stats.MannWhitney(c.canaryMs, c.liveMs, stats.Greater)
	if err != nil {
		return result{verdictWait, "latency: " + err.Error(), in}, true
	}
	in["latency_p_value"] = mw.P
	if ratio, ok := stats.ShiftRatio(c.canaryMs, c.liveMs); ok {
		in["latency_shift_ratio"] = ratio
		if mw.P < 1-l.Confidence && ratio > l.MaxIncrease {
			return result{verdictFail, fmt.Sprintf("canary latency %.0f%% above live (Hodges-Lehmann shift, allowed %.0f%%, Mann-Whitney p=%.2g)",
				100*(ratio-1), 100*(l.MaxIncrease-1), mw.P), in}, true
		}
	}
	if r99, ok := stats.QuantileRatio(c.canaryMs, c.liveMs, 0.99); ok && !math.IsInf(r99, 0) {
		in["p99_ratio"] = r99
		if r99 > l.MaxP99Ratio && mw.P < 1-l.Confidence {
			return result{verdictFail, fmt.Sprintf("canary p99 latency %.2fx live's (allowed %.2fx)", r99, l.MaxP99Ratio), in}, true
		}
	}
	return result{}, false
}

// ShadowStatus is what a shadow step is judged on.
type ShadowStatus struct {
	Compared     int64   // answers compared since the step began
	WorstField   string  // the regressed field with the highest excess rate
	WorstExcess  float64 // its raw rate minus its noise rate
	Sent, Failed int64   // shadow copies since the step began, and those that failed
}

func analyzeShadow(s ShadowStatus, elapsed time.Duration, step *config.ShadowStep) result {
	in := map[string]float64{"compared": float64(s.Compared), "shadow_sent": float64(s.Sent),
		"shadow_failed": float64(s.Failed), "worst_diff_rate": s.WorstExcess, "elapsed_seconds": elapsed.Seconds()}
	if s.Sent > 0 {
		rate := float64(s.Failed) / float64(s.Sent)
		in["shadow_error_rate"] = rate
		if s.Sent >= step.MinRequests && rate > step.MaxErrorRate {
			return result{verdictFail, fmt.Sprintf("shadow error rate %.2f%% > allowed %.2f%%", 100*rate, 100*step.MaxErrorRate), in}
		}
	}
	var needs []string
	if s.Compared < step.MinRequests {
		needs = append(needs, fmt.Sprintf("%d more compared answers", step.MinRequests-s.Compared))
	}
	if elapsed < step.MinDuration.D() {
		needs = append(needs, fmt.Sprintf("%s more time", (step.MinDuration.D()-elapsed).Round(time.Second)))
	}
	if len(needs) > 0 {
		return result{verdictWait, "waiting for " + joinAnd(needs), in}
	}
	if s.WorstExcess > step.MaxDiffRate {
		return result{verdictFail, fmt.Sprintf("shadow answers differ: %s in %.1f%% more answers than noise explains (allowed %.1f%%)",
			s.WorstField, 100*s.WorstExcess, 100*step.MaxDiffRate), in}
	}
	return result{verdictPass, fmt.Sprintf("%d answers compared, no field regressed beyond %.1f%%", s.Compared, 100*step.MaxDiffRate), in}
}

func joinAnd(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	out := parts[0]
	for _, p := range parts[1 : len(parts)-1] {
		out += ", " + p
	}
	return out + " and " + parts[len(parts)-1]
}
