package config

// Compare asks umbra to diff a route's shadow answers against the live
// ones (see docs/config.md, "Comparing answers").
type Compare struct {
	// Target is the shadow backend whose answers are compared; default the
	// route's first shadow target.
	Target string `yaml:"target" json:"target"`
	// Secondary is a second instance of the live version. Its answers to the
	// same copies show which fields differ anyway (noise).
	Secondary string `yaml:"secondary" json:"secondary,omitempty"`
	// JSON paths of body fields never compared, for example $.created_at.
	Ignore []string `yaml:"ignore" json:"ignore,omitempty"`
	// JSON paths of arrays compared as multisets (order ignored).
	UnorderedArrays []string `yaml:"unordered_arrays" json:"unordered_arrays,omitempty"`
	// Relative difference under which two JSON numbers are equal (0.001: 0.1%).
	NumericTolerance float64 `yaml:"numeric_tolerance" json:"numeric_tolerance,omitempty"`
	// Response headers not compared, besides the default list (Date, Server, ...).
	IgnoreHeaders []string `yaml:"ignore_headers" json:"ignore_headers,omitempty"`
	// Largest response body compared; larger exchanges are counted, not compared.
	MaxBody ByteSize `yaml:"max_body" json:"max_body"`
	// When a field's differences are a regression rather than noise.
	Thresholds Thresholds `yaml:"thresholds" json:"thresholds"`
}

// Thresholds decide when a field's differences are a regression rather
// than noise: its raw rate must exceed the noise rate by more than Relative
// (of the raw rate) and by more than Absolute.
type Thresholds struct {
	// Margin relative to the field's difference rate, a fraction from 0 to 1.
	Relative float64 `yaml:"relative" json:"relative"`
	// Absolute margin on the rates, a fraction from 0 to 1.
	Absolute float64 `yaml:"absolute" json:"absolute"`
}

// Comparison holds global settings of the comparison engine.
type Comparison struct {
	// Workers compare answers off the request path.
	Workers int `yaml:"workers" json:"workers"`
	// QueueSize bounds comparisons waiting for a worker; when full, a
	// comparison is skipped and counted, never waited for.
	QueueSize int `yaml:"queue_size" json:"queue_size"`
	// SamplesPerField is how many example requests are kept per endpoint
	// and differing field.
	SamplesPerField int `yaml:"samples_per_field" json:"samples_per_field"`
	// MaxEndpoints bounds the endpoints tracked per route (the rest are
	// counted under "other").
	MaxEndpoints int `yaml:"max_endpoints" json:"max_endpoints"`
	// MaxFields bounds the fields tracked per endpoint.
	MaxFields int `yaml:"max_fields" json:"max_fields"`
	// FlushInterval is how often counters and samples are written to the store.
	FlushInterval Duration `yaml:"flush_interval" json:"flush_interval"`
}

// validateComparison refuses negative sizes of the comparison engine.
func (p *parser) validateComparison(c *Comparison) {
	for _, v := range []struct {
		value int
		name  string
	}{{c.Workers, "workers"}, {c.QueueSize, "queue_size"}, {c.SamplesPerField, "samples_per_field"},
		{c.MaxEndpoints, "max_endpoints"}, {c.MaxFields, "max_fields"}} {
		if v.value < 0 {
			p.errorf(at("comparison", v.name), "%s must not be negative", v.name)
		}
	}
}

func (p *parser) validateCompare(c *Config, r *Route, path []any) {
	cmp := r.Compare
	if len(r.Shadow) == 0 {
		p.errorf(path, "compare needs a shadow target on the route: it compares the shadow's answers with live ones")
		return
	}
	if cmp.Target == "" {
		cmp.Target = r.Shadow[0].Backend
	}
	found := false
	for _, s := range r.Shadow {
		found = found || s != nil && s.Backend == cmp.Target
	}
	if !found {
		p.errorf(join(path, "target"), "compare target %q is not a shadow target of this route", cmp.Target)
	}
	if cmp.Secondary != "" {
		p.checkBackendRef(c, join(path, "secondary"), cmp.Secondary, "compare secondary")
		shadowed := false
		for _, s := range r.Shadow {
			shadowed = shadowed || s != nil && s.Backend == cmp.Secondary
		}
		if cmp.Secondary == r.Backend || shadowed {
			p.errorf(join(path, "secondary"), "secondary must be another instance of the live version, not the route's backend or a shadow target (%q)", cmp.Secondary)
		}
	}
	if cmp.NumericTolerance < 0 || cmp.NumericTolerance >= 1 {
		p.errorf(join(path, "numeric_tolerance"), "numeric_tolerance is relative: a number from 0 to 1 (0.001 = 0.1%%)")
	}
	t := &cmp.Thresholds
	if t.Relative < 0 || t.Relative > 1 || t.Absolute < 0 || t.Absolute > 1 {
		p.errorf(join(path, "thresholds"), "thresholds are fractions from 0 to 1")
	}
	for i, h := range cmp.IgnoreHeaders {
		if !headerRe.MatchString(h) {
			p.errorf(join(path, "ignore_headers", i), "invalid header name %q", h)
		}
	}
}
