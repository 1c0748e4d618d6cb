package ui

import (
	"context"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/umbragw/umbra/internal/diffs"
)

// Sampler fills a History from the registries every interval. It reads
// what the request path already counts (Prometheus counters and
// histograms, the comparison recorder, the rollout states, the adoption
// tracker) and adds nothing to the request path: a dashboard left open
// costs one Gather per interval, whatever the traffic.
type Sampler struct {
	src      Sources
	hist     *History
	interval time.Duration

	mu    sync.Mutex // guards the fields below (one tick at a time)
	prevT time.Time
	prev  map[string]float64     // cumulative counters by series name
	prevH map[pathKey]*histogram // cumulative latency buckets
	now   Snapshot               // the latest totals, for the pages
}

type pathKey struct{ route, role string }

// Snapshot is the latest cumulative totals the sampler saw.
type Snapshot struct {
	At       time.Time
	Paths    map[pathKey]PathTotals
	Shadows  map[[2]string]*ShadowTotals // by route, target
	Breakers map[[2]string]bool          // open or half-open
}

// PathTotals are one route and role's cumulative counts.
type PathTotals struct {
	Requests, Errors float64
}

// ShadowTotals are one shadow target's cumulative outcomes.
type ShadowTotals struct {
	Route, Target string
	Outcomes      map[string]float64 // umbra_shadow_requests_total's outcome label
	Queued        float64            // umbra_shadow_queue_length: copies with no outcome yet
}

// Group sums the outcomes of one group: ok, failed (5xx or error), sent
// (both: every copy that went out ends ok or failed), skipped (by any
// reason), dropped. Each request has one final outcome, so the groups do
// not overlap, sent aside.
func (s *ShadowTotals) Group(g string) float64 {
	if g == "sent" {
		return s.Group("ok") + s.Group("failed")
	}
	var n float64
	for o, v := range s.Outcomes {
		if outcomeGroup(o) == g {
			n += v
		}
	}
	return n
}

// Skipped lists the skip reasons with their counts, largest first.
func (s *ShadowTotals) Skipped() []Count {
	var out []Count
	for o, v := range s.Outcomes {
		if g := outcomeGroup(o); (g == "skipped" || g == "dropped") && v > 0 {
			out = append(out, Count{o, v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N > out[j].N || out[i].N == out[j].N && out[i].Name < out[j].Name })
	return out
}

// Count is a named count.
type Count struct {
	Name string
	N    float64
}

func outcomeGroup(o string) string {
	switch {
	case o == "ok":
		return "ok"
	case o == "status_5xx" || strings.HasPrefix(o, "error_"):
		return "failed"
	case strings.HasPrefix(o, "skipped_"):
		return "skipped"
	case strings.HasPrefix(o, "dropped_"):
		return "dropped"
	}
	return "" // not_sampled
}

// histogram is a cumulative bucket set (upper bounds in seconds).
type histogram struct {
	bounds []float64
	counts []float64 // cumulative, as Prometheus exposes them
	total  float64
}

// NewSampler samples into hist every interval once Run is called.
func NewSampler(src Sources, hist *History, interval time.Duration) *Sampler {
	return &Sampler{src: src, hist: hist, interval: interval, prev: map[string]float64{}, prevH: map[pathKey]*histogram{}}
}

// Run samples until ctx ends; the first sample is taken at once.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.Sample(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Latest returns the totals of the last sample.
func (s *Sampler) Latest() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Sample takes one snapshot at now.
func (s *Sampler) Sample(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vals := map[Key]float64{}
	snap := Snapshot{At: now, Paths: map[pathKey]PathTotals{}, Shadows: map[[2]string]*ShadowTotals{}, Breakers: map[[2]string]bool{}}
	dt := now.Sub(s.prevT).Seconds()
	first := s.prevT.IsZero()
	cur := map[string]float64{}
	rate := func(name string, v float64) (float64, bool) {
		cur[name] = v
		p, ok := s.prev[name]
		if first || !ok || dt <= 0 {
			return 0, false
		}
		if v < p { // a reload recreated the series
			p = 0
		}
		return (v - p) / dt, true
	}
	if fams, err := s.src.Metrics.Gather(); err == nil {
		s.paths(fams, snap, vals, rate, first)
		s.shadows(fams, snap, vals, rate)
	}
	s.diffSeries(vals)
	s.rolloutSeries(vals)
	s.adoptionSeries(vals, rate)
	s.prev, s.prevT, s.now = cur, now, snap
	s.hist.Record(now, vals)
}

type rateFunc func(name string, cumulative float64) (perSecond float64, ok bool)

// paths computes per route and role: requests/s, error rate and latency
// quantiles over the last interval.
func (s *Sampler) paths(fams []*dto.MetricFamily, snap Snapshot, vals map[Key]float64, rate rateFunc, first bool) {
	hists := map[pathKey]*histogram{}
	for _, f := range fams {
		switch f.GetName() {
		case "umbra_requests_total":
			for _, m := range f.GetMetric() {
				l := labels(m)
				k := pathKey{l["route"], l["role"]}
				t := snap.Paths[k]
				v := m.GetCounter().GetValue()
				t.Requests += v
				if code, _ := strconv.Atoi(l["code"]); code >= 500 {
					t.Errors += v
				}
				snap.Paths[k] = t
			}
		case "umbra_request_duration_seconds":
			for _, m := range f.GetMetric() {
				l := labels(m)
				k := pathKey{l["route"], l["role"]}
				hists[k] = addHistogram(hists[k], m.GetHistogram())
			}
		}
	}
	for k, t := range snap.Paths {
		reqs, ok := rate("req\x00"+k.route+"\x00"+k.role, t.Requests)
		errs, _ := rate("err\x00"+k.route+"\x00"+k.role, t.Errors)
		if !ok {
			continue
		}
		vals[Key{Metric: "rps", Route: k.route, A: k.role}] = reqs
		if reqs > 0 {
			vals[Key{Metric: "error_rate", Route: k.route, A: k.role}] = errs / reqs
		}
	}
	for k, h := range hists {
		if p := s.prevH[k]; p != nil && !first {
			if d := h.minus(p); d.total > 0 {
				vals[Key{Metric: "p50_ms", Route: k.route, A: k.role}] = 1000 * d.quantile(0.50)
				vals[Key{Metric: "p99_ms", Route: k.route, A: k.role}] = 1000 * d.quantile(0.99)
			}
		}
	}
	s.prevH = hists
}

// shadows computes per target the rates of sent, failed, skipped and
// dropped copies.
func (s *Sampler) shadows(fams []*dto.MetricFamily, snap Snapshot, vals map[Key]float64, rate rateFunc) {
	for _, f := range fams {
		switch f.GetName() {
		case "umbra_shadow_requests_total":
			for _, m := range f.GetMetric() {
				l := labels(m)
				k := [2]string{l["route"], l["target"]}
				st := snap.Shadows[k]
				if st == nil {
					st = &ShadowTotals{Route: k[0], Target: k[1], Outcomes: map[string]float64{}}
					snap.Shadows[k] = st
				}
				st.Outcomes[l["outcome"]] = m.GetCounter().GetValue()
			}
		case "umbra_shadow_queue_length":
			for _, m := range f.GetMetric() {
				l := labels(m)
				k := [2]string{l["route"], l["target"]}
				if snap.Shadows[k] == nil {
					snap.Shadows[k] = &ShadowTotals{Route: k[0], Target: k[1], Outcomes: map[string]float64{}}
				}
				snap.Shadows[k].Queued = m.GetGauge().GetValue()
			}
		case "umbra_shadow_circuit_open":
			for _, m := range f.GetMetric() {
				l := labels(m)
				snap.Breakers[[2]string{l["route"], l["target"]}] = m.GetGauge().GetValue() > 0
			}
		}
	}
	for k, st := range snap.Shadows {
		for _, g := range []string{"sent", "failed", "skipped", "dropped"} {
			if r, ok := rate("shadow\x00"+k[0]+"\x00"+k[1]+"\x00"+g, st.Group(g)); ok {
				vals[Key{Metric: "shadow", Route: k[0], A: k[1], B: g}] = r
			}
		}
	}
}

// diffSeries records each endpoint's diff rate and each field's raw and
// noise rates, cumulative since the last reset as the report gives them.
func (s *Sampler) diffSeries(vals map[Key]float64) {
	if s.src.Diffs == nil {
		return
	}
	for _, r := range s.src.Diffs.Report("").Routes {
		for _, e := range r.Endpoints {
			if e.Compared == 0 {
				continue
			}
			vals[Key{Metric: "diff_rate", Route: r.Route, A: e.Endpoint}] = e.DiffRate
			for _, fs := range [][]diffs.FieldReport{e.Regressions, e.Noise} {
				for _, f := range fs {
					vals[Key{Metric: "field_raw", Route: r.Route, A: e.Endpoint, B: f.Field}] = f.RawRate
					vals[Key{Metric: "field_noise", Route: r.Route, A: e.Endpoint, B: f.Field}] = f.NoiseRate
				}
			}
		}
	}
}

func (s *Sampler) rolloutSeries(vals map[Key]float64) {
	if s.src.Rollouts == nil {
		return
	}
	for _, st := range s.src.Rollouts.Statuses() {
		vals[Key{Metric: "weight", Route: st.Route}] = st.Weight
	}
}

// adoptionSeries records how often each adoption field is sent
// (requests/s), so a deprecated field's decline shows.
func (s *Sampler) adoptionSeries(vals map[Key]float64, rate rateFunc) {
	if s.src.Adoption == nil {
		return
	}
	for _, r := range s.src.Adoption.Report(0).Routes {
		for _, f := range r.Fields {
			if v, ok := rate("field\x00"+r.Route+"\x00"+f.Name, float64(f.Requests)); ok {
				vals[Key{Metric: "field_use", Route: r.Route, A: f.Name}] = v
			}
		}
	}
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// addHistogram adds a Prometheus histogram to h (a route's backends share
// the buckets).
func addHistogram(h *histogram, p *dto.Histogram) *histogram {
	if h == nil {
		h = &histogram{}
		for _, b := range p.GetBucket() {
			h.bounds = append(h.bounds, b.GetUpperBound())
		}
		h.counts = make([]float64, len(h.bounds))
	}
	for i, b := range p.GetBucket() {
		if i < len(h.counts) {
			h.counts[i] += float64(b.GetCumulativeCount())
		}
	}
	h.total += float64(p.GetSampleCount())
	return h
}

// minus is the histogram of what happened since p.
func (h *histogram) minus(p *histogram) *histogram {
	d := &histogram{bounds: h.bounds, counts: make([]float64, len(h.counts)), total: h.total - p.total}
	for i := range h.counts {
		d.counts[i] = h.counts[i]
		if i < len(p.counts) {
			d.counts[i] -= p.counts[i]
		}
	}
	if d.total < 0 { // series recreated by a reload
		return h
	}
	return d
}

// quantile interpolates linearly within the bucket holding rank q, as
// Prometheus' histogram_quantile does; past the last bound it answers the
// last bound.
func (h *histogram) quantile(q float64) float64 {
	rank := q * h.total
	lower, prev := 0.0, 0.0
	for i, c := range h.counts {
		if c >= rank && c > prev {
			return lower + (h.bounds[i]-lower)*(rank-prev)/(c-prev)
		}
		lower, prev = h.bounds[i], c
	}
	if len(h.bounds) == 0 {
		return math.NaN()
	}
	return h.bounds[len(h.bounds)-1]
}
