// Package diffs records the comparisons of shadow answers with live ones:
// per route, endpoint and field it counts live-vs-candidate differences
// (raw) and live-vs-secondary differences (noise), keeps a few samples,
// classifies regressions with Diffy's thresholds, persists everything in
// the embedded store, and serves the report on the admin API.
//
// Comparing happens off the request path: shadow senders hand finished
// exchanges to Recorder.Submit, a non-blocking send into a bounded queue
// read by a fixed pool of workers.
package diffs

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/umbragw/umbra/internal/compare"
	"github.com/umbragw/umbra/internal/shadow"
)

// Limits on what one sample keeps, so samples stay small in the store.
const (
	sampleBodyLimit    = 8 << 10
	sampleRequestLimit = 4 << 10
	latencyWindow      = 512
	maxSampleDiffs     = 20
)

// EndpointStats is everything recorded for one route and endpoint.
type EndpointStats struct {
	Route         string                 `json:"route"`
	Endpoint      string                 `json:"endpoint"`
	Compared      int64                  `json:"compared"`
	Differing     int64                  `json:"differing"`
	NoiseCompared int64                  `json:"noise_compared"`
	Skipped       map[string]int64       `json:"skipped,omitempty"`
	Fields        map[string]*FieldStats `json:"fields,omitempty"`
	// Recent latencies (ms) of live and candidate answers, a ring each.
	LiveMs      []float64 `json:"live_ms,omitempty"`
	CandidateMs []float64 `json:"candidate_ms,omitempty"`
	LatencyNext int       `json:"latency_next"`
	LastAt      time.Time `json:"last_at"`
	// sampleBytes is the size of the endpoint's samples.
	sampleBytes int64
}

// FieldStats counts one field's differences.
type FieldStats struct {
	Raw     int64            `json:"raw"`
	Noise   int64            `json:"noise"`
	Kinds   map[string]int64 `json:"kinds,omitempty"`
	Samples []*Sample        `json:"samples,omitempty"`
	// saved is how many of Samples are in the store (persist.go).
	saved int
}

// Sample is one compared request kept as evidence.
type Sample struct {
	At          time.Time            `json:"at"`
	Method      string               `json:"method"`
	URI         string               `json:"uri"`
	Header      http.Header          `json:"request_headers,omitempty"`
	Body        string               `json:"request_body,omitempty"`
	Live        *SampleResponse      `json:"live"`
	Candidate   *SampleResponse      `json:"candidate"`
	Secondary   *SampleResponse      `json:"secondary,omitempty"`
	Differences []compare.Difference `json:"differences"`
}

// SampleResponse is one answer of a sample.
type SampleResponse struct {
	Status    int         `json:"status"`
	Header    http.Header `json:"headers,omitempty"`
	Body      string      `json:"body,omitempty"`
	Truncated bool        `json:"truncated,omitempty"`
	LatencyMs float64     `json:"latency_ms"`
}

// size estimates the memory a sample holds: every string it keeps
// (bodies, headers, the rendered differences) and a fixed cost per part.
// Counting only the bodies let differences with long paths and many
// headers overrun the budget.
func (s *Sample) size() int {
	n := 256 + len(s.Method) + len(s.URI) + len(s.Body) + headerSize(s.Header)
	for _, r := range []*SampleResponse{s.Live, s.Candidate, s.Secondary} {
		if r != nil {
			n += 128 + len(r.Body) + headerSize(r.Header)
		}
	}
	for _, d := range s.Differences {
		n += 96 + len(d.Field) + len(d.Path) + len(d.Kind) + len(d.Live) + len(d.Other)
	}
	return n
}

func headerSize(h http.Header) int {
	n := 0
	for k, vs := range h {
		n += 48 + len(k)
		for _, v := range vs {
			n += 16 + len(v)
		}
	}
	return n
}

func newEndpoint(route, endpoint string) *EndpointStats {
	return &EndpointStats{Route: route, Endpoint: endpoint, Skipped: map[string]int64{}, Fields: map[string]*FieldStats{}}
}

// otherFields is the one entry of the fields past max_fields.
const otherFields = "(other fields)"

// field returns a field's stats and the name they are kept under: the
// field's own, or otherFields once the endpoint tracks maxFields fields.
func (e *EndpointStats) field(name string, maxFields int) (string, *FieldStats) {
	f := e.Fields[name]
	if f == nil {
		if len(e.Fields) >= maxFields {
			name = otherFields
			if f = e.Fields[name]; f != nil {
				return name, f
			}
		}
		f = &FieldStats{Kinds: map[string]int64{}}
		e.Fields[name] = f
	}
	return name, f
}

// init fills the maps a decoded record may lack.
func (e *EndpointStats) init() {
	if e.Skipped == nil {
		e.Skipped = map[string]int64{}
	}
	if e.Fields == nil {
		e.Fields = map[string]*FieldStats{}
	}
	for _, f := range e.Fields {
		if f.Kinds == nil {
			f.Kinds = map[string]int64{}
		}
	}
}

func (e *EndpointStats) observeLatency(live, cand time.Duration) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	if len(e.LiveMs) < latencyWindow {
		e.LiveMs = append(e.LiveMs, ms(live))
		e.CandidateMs = append(e.CandidateMs, ms(cand))
		return
	}
	e.LiveMs[e.LatencyNext] = ms(live)
	e.CandidateMs[e.LatencyNext] = ms(cand)
	e.LatencyNext = (e.LatencyNext + 1) % latencyWindow
}

// byField groups differences by their generalized field, once each.
func byField(diffs []compare.Difference) map[string][]compare.Difference {
	out := make(map[string][]compare.Difference, len(diffs))
	for _, d := range diffs {
		out[d.Field] = append(out[d.Field], d)
	}
	return out
}

// sensitiveHeader reports headers whose values never go into a sample.
func sensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie", "set-cookie":
		return true
	}
	return strings.Contains(n, "token") || strings.Contains(n, "secret") ||
		strings.Contains(n, "api-key") || strings.Contains(n, "apikey") || strings.Contains(n, "password")
}

func redact(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		if sensitiveHeader(k) {
			out[k] = []string{"[redacted]"}
			continue
		}
		out[k] = v
	}
	return out
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…[truncated]"
	}
	return string(b)
}

func sampleResponse(r *shadow.Response) *SampleResponse {
	if r == nil || r.Err != "" {
		return nil
	}
	return &SampleResponse{Status: r.Status, Header: redact(r.Header), Body: truncate(r.Body, sampleBodyLimit),
		Truncated: r.Truncated, LatencyMs: float64(r.Latency.Microseconds()) / 1000}
}

// ownFirst orders the differences of an exchange for the sample of one
// field: the field's own first, so that the cap on the differences a
// sample keeps never hides them, then the others.
func ownFirst(field string, own, all []compare.Difference) []compare.Difference {
	if len(all) <= maxSampleDiffs || len(own) == len(all) {
		return all
	}
	out := make([]compare.Difference, 0, maxSampleDiffs)
	out = append(out, own[:min(len(own), maxSampleDiffs)]...)
	for _, d := range all {
		if len(out) == maxSampleDiffs {
			break
		}
		if d.Field != field {
			out = append(out, d)
		}
	}
	return out
}

func newSample(ex *shadow.Exchange, diffs []compare.Difference) *Sample {
	if len(diffs) > maxSampleDiffs {
		diffs = diffs[:maxSampleDiffs]
	}
	return &Sample{At: ex.At, Method: ex.Method, URI: ex.URI, Header: redact(ex.Header),
		Body: truncate(ex.Body, sampleRequestLimit), Live: sampleResponse(ex.Live),
		Candidate: sampleResponse(ex.Candidate), Secondary: sampleResponse(ex.Secondary), Differences: diffs}
}

// quantile of a small unsorted window (type 7); 0 when empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[lo]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}

// merge adds the counters and samples of o (recorded in memory before the
// store was attached) to e, keeping at most maxSamples per field, and
// returns the size of the samples of o it dropped.
func (e *EndpointStats) merge(o *EndpointStats, maxSamples int) (dropped int64) {
	if o.LastAt.After(e.LastAt) {
		e.LastAt = o.LastAt
	}
	e.Compared += o.Compared
	e.Differing += o.Differing
	e.NoiseCompared += o.NoiseCompared
	for k, v := range o.Skipped {
		e.Skipped[k] += v
	}
	for name, of := range o.Fields {
		f := e.Fields[name]
		if f == nil {
			e.Fields[name] = of.clone() // o may be merged again elsewhere (a peer's summary)
			continue
		}
		f.Raw += of.Raw
		f.Noise += of.Noise
		for k, v := range of.Kinds {
			f.Kinds[k] += v
		}
		for _, s := range of.Samples {
			if len(f.Samples) < maxSamples {
				f.Samples = append(f.Samples, s)
			} else {
				dropped += int64(s.size())
			}
		}
	}
	return dropped
}
