package config

// Rollout is an automated, step-by-step rollout of a route's canary.
type Rollout struct {
	// Start is manual (default: `umbra rollout start ROUTE`) or auto (as
	// soon as the config is applied, unless a rollout already ran).
	Start string `yaml:"start" json:"start"`
	// How often the plan is evaluated.
	Interval Duration `yaml:"interval" json:"interval"`
	// The steps, in order; the last one is promote: {}.
	Steps []*RolloutStep `yaml:"steps" json:"steps"`
	// How a canary step is judged against live over the same window.
	Analysis Analysis `yaml:"analysis" json:"analysis"`
	// Optional hooks that can hold or stop the rollout.
	Webhooks Webhooks `yaml:"webhooks" json:"webhooks"`
}

// RolloutStep is exactly one of shadow, canary or promote.
type RolloutStep struct {
	// A shadow step: weight 0, judged on the comparison of shadow answers.
	Shadow *ShadowStep `yaml:"shadow" json:"shadow,omitempty"`
	// A canary step at a given weight.
	Canary *CanaryStep `yaml:"canary" json:"canary,omitempty"`
	// The last step: the canary serves everyone.
	Promote *PromoteStep `yaml:"promote" json:"promote,omitempty"`
}

// Kind names the step's kind.
func (s *RolloutStep) Kind() string {
	switch {
	case s.Shadow != nil:
		return "shadow"
	case s.Canary != nil:
		return "canary"
	}
	return "promote"
}

// ShadowStep passes when enough shadow answers were compared, no field
// regressed by more than MaxDiffRate and the shadow's errors stay under
// MaxErrorRate.
type ShadowStep struct {
	// Answers compared during the step before it can pass.
	MinRequests int64 `yaml:"min_requests" json:"min_requests"`
	// Time the step lasts at least.
	MinDuration Duration `yaml:"min_duration" json:"min_duration"`
	// Largest excess of a regressed field's raw rate over its noise rate.
	MaxDiffRate float64 `yaml:"max_diff_rate" json:"max_diff_rate"`
	// Share of shadow copies that may fail before the rollout rolls back.
	MaxErrorRate float64 `yaml:"max_error_rate" json:"max_error_rate"`
}

// CanaryStep sends Weight percent of callers to the canary and passes when
// both versions served MinRequests for MinDuration and the analysis finds
// the canary no worse.
type CanaryStep struct {
	// Share of callers on the canary; rises step by step, below 100.
	Weight Percent `yaml:"weight" json:"weight"`
	// Requests each version must serve during the step before it is judged.
	MinRequests int64 `yaml:"min_requests" json:"min_requests"`
	// Time the step lasts at least.
	MinDuration Duration `yaml:"min_duration" json:"min_duration"`
}

// PromoteStep sends everyone to the canary.
type PromoteStep struct{}

// Analysis judges the canary against live over the same window.
type Analysis struct {
	// MaxErrorRateIncrease is the absolute error-rate increase allowed
	// (0.005 = half a percentage point); a larger, significant increase
	// rolls back.
	MaxErrorRateIncrease float64 `yaml:"max_error_rate_increase" json:"max_error_rate_increase"`
	// Confidence of the error-rate test (significant when p < 1 - confidence).
	Confidence float64 `yaml:"confidence" json:"confidence"`
	// How the canary's latency is judged.
	Latency LatencyAnalysis `yaml:"latency" json:"latency"`
	// Immediate rollback on an error burst.
	Burst BurstAnalysis `yaml:"burst" json:"burst"`
	// Samples is the latency reservoir size per version and step.
	Samples int `yaml:"samples" json:"samples"`
}

// LatencyAnalysis compares latency distributions (Mann-Whitney U) and the
// shift of the canary (Hodges-Lehmann), as Kayenta does, plus tail latency.
type LatencyAnalysis struct {
	// Confidence of the Mann-Whitney U test that the canary is slower.
	Confidence float64 `yaml:"confidence" json:"confidence"`
	// Largest allowed ratio of the canary's median latency to live's (Hodges-Lehmann).
	MaxIncrease float64 `yaml:"max_increase" json:"max_increase"`
	// Largest allowed ratio of the canary's p99 latency to live's.
	MaxP99Ratio float64 `yaml:"max_p99_ratio" json:"max_p99_ratio"`
}

// BurstAnalysis rolls back at once, without waiting for the step to end,
// when over the last Window canary requests at least MinErrors failed and
// the canary's error rate is MinIncrease above live's over its own last
// Window requests.
type BurstAnalysis struct {
	// Most recent requests per version the burst check looks at.
	Window int `yaml:"window" json:"window"`
	// Errors among the canary's last Window requests needed for a burst.
	MinErrors int `yaml:"min_errors" json:"min_errors"`
	// How far the canary's recent error rate must exceed live's for a burst.
	MinIncrease float64 `yaml:"min_increase" json:"min_increase"`
}

// Webhooks let other systems hold or stop a rollout. A 2xx answer lets it
// go on, 410 Gone aborts it, anything else (or no answer) holds it.
type Webhooks struct {
	// URL asked before moving to the next shadow or canary step.
	BeforeStep string `yaml:"before_step" json:"before_step,omitempty"`
	// URL asked before promotion.
	ConfirmPromotion string `yaml:"confirm_promotion" json:"confirm_promotion,omitempty"`
	// URL told after a rollback (its answer is ignored).
	OnRollback string `yaml:"on_rollback" json:"on_rollback,omitempty"`
	// Time to wait for a webhook's answer.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

func (p *parser) validateRollout(c *Config, r *Route, path []any) {
	ro := r.Rollout
	if r.Canary == nil {
		p.errorf(path, "rollout needs a canary on the route (canary: {backend: ...})")
	}
	if !oneOf(ro.Start, "manual", "auto") {
		p.errorf(join(path, "start"), "start %q: use manual or auto", ro.Start)
	}
	if len(ro.Steps) == 0 {
		p.errorf(path, "rollout needs steps (shadow, canary and a final promote)")
	}
	last := 0.0
	for i, s := range ro.Steps {
		sp := join(path, "steps", i)
		if s == nil || countSet(s.Shadow != nil, s.Canary != nil, s.Promote != nil) != 1 {
			p.errorf(sp, "a step is exactly one of shadow, canary or promote")
			continue
		}
		switch {
		case s.Shadow != nil:
			if r.Compare == nil {
				p.errorf(join(sp, "shadow"), "a shadow step is judged on comparisons: the route needs compare:")
			}
		case s.Canary != nil:
			w := float64(s.Canary.Weight)
			if w <= last || w >= 100 {
				p.errorf(join(sp, "canary", "weight"), "canary weights must rise step by step, above 0 and below 100 (promote sends everyone)")
			}
			last = w
		case s.Promote != nil && i != len(ro.Steps)-1:
			p.errorf(sp, "promote must be the last step")
		}
	}
	if n := len(ro.Steps); n > 0 && ro.Steps[n-1] != nil && ro.Steps[n-1].Promote == nil {
		p.errorf(join(path, "steps", n-1), "the last step must be promote: {}")
	}
	p.validateAnalysis(&ro.Analysis, join(path, "analysis"))
	for _, h := range []struct{ name, url string }{{"before_step", ro.Webhooks.BeforeStep},
		{"confirm_promotion", ro.Webhooks.ConfirmPromotion}, {"on_rollback", ro.Webhooks.OnRollback}} {
		if h.url != "" && !isHTTPURL(h.url) {
			p.errorf(join(path, "webhooks", h.name), "webhook %q must be an http or https URL", h.url)
		}
	}
}

func (p *parser) validateAnalysis(a *Analysis, path []any) {
	// Documented: 0 or less means the default (0 was filled in decoding).
	def := &DefaultRollout.Analysis
	for _, v := range []struct{ field, def *int }{{&a.Burst.Window, &def.Burst.Window},
		{&a.Burst.MinErrors, &def.Burst.MinErrors}, {&a.Samples, &def.Samples}} {
		if *v.field < 0 {
			*v.field = *v.def
		}
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"confidence", a.Confidence}, {"latency.confidence", a.Latency.Confidence}} {
		if c.v <= 0.5 || c.v >= 1 {
			p.errorf(join(path, c.name), "%s must be between 0.5 and 1 (for example 0.98)", c.name)
		}
	}
	if a.Latency.MaxIncrease < 1 || a.Latency.MaxP99Ratio < 1 {
		p.errorf(join(path, "latency"), "latency ratios are at least 1 (1.2 allows 20%% slower)")
	}
}

func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func isHTTPURL(s string) bool {
	return len(s) > 8 && (s[:7] == "http://" || s[:8] == "https://")
}
