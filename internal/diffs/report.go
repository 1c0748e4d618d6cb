package diffs

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strings"

	"github.com/umbragw/umbra/internal/admin"
	"github.com/umbragw/umbra/internal/compare"
	"github.com/umbragw/umbra/internal/store"
)

// Report is GET /api/v1/diffs.
type Report struct {
	Routes []RouteReport `json:"routes"`
}

// RouteReport is one comparing route.
type RouteReport struct {
	Route      string             `json:"route"`
	Target     string             `json:"target,omitempty"`
	Secondary  string             `json:"secondary,omitempty"`
	Thresholds compare.Thresholds `json:"thresholds"`
	Endpoints  []EndpointReport   `json:"endpoints"`
}

// EndpointReport summarises one endpoint.
type EndpointReport struct {
	Endpoint      string           `json:"endpoint"`
	Compared      int64            `json:"compared"`
	Differing     int64            `json:"differing"`
	DiffRate      float64          `json:"diff_rate"`
	NoiseCompared int64            `json:"noise_compared"`
	Skipped       map[string]int64 `json:"skipped,omitempty"`
	Regressions   []FieldReport    `json:"regressions"`
	Noise         []FieldReport    `json:"noise"`
	Latency       Latency          `json:"latency_ms"`
	// Replicas are each replica's counts, in fleet mode (docs/fleet.md).
	Replicas map[string]ReplicaCounts `json:"replicas,omitempty"`
}

// Latency compares recent live and candidate latencies, in milliseconds.
type Latency struct {
	LiveP50      float64 `json:"live_p50"`
	LiveP99      float64 `json:"live_p99"`
	CandidateP50 float64 `json:"candidate_p50"`
	CandidateP99 float64 `json:"candidate_p99"`
}

// FieldReport is one field of an endpoint.
type FieldReport struct {
	Field       string           `json:"field"`
	Raw         int64            `json:"raw"`
	Noise       int64            `json:"noise"`
	RawRate     float64          `json:"raw_rate"`
	NoiseRate   float64          `json:"noise_rate"`
	Kinds       map[string]int64 `json:"kinds"`
	Regression  bool             `json:"regression"`
	MarkedNoise bool             `json:"marked_noise,omitempty"`
	Samples     int              `json:"samples"`
}

// Report builds the report, optionally for one route. It shares no map
// with the recorder: it is encoded after the lock is released, while
// workers go on counting.
func (r *Recorder) Report(route string) Report {
	specs := *r.routes.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	byRoute := map[string]*RouteReport{}
	for name, spec := range specs {
		if route == "" || route == name {
			byRoute[name] = &RouteReport{Route: name, Target: spec.Target, Secondary: spec.Secondary, Thresholds: spec.Thresholds}
		}
	}
	eps, byNode := r.view(route)
	for k, e := range eps {
		if route != "" && e.Route != route {
			continue
		}
		rr := byRoute[e.Route]
		if rr == nil { // persisted results of a route no longer comparing
			rr = &RouteReport{Route: e.Route, Thresholds: compare.DefaultThresholds}
			byRoute[e.Route] = rr
		}
		rep := r.endpointReport(e, rr.Thresholds)
		rep.Replicas = byNode[k]
		rr.Endpoints = append(rr.Endpoints, rep)
	}
	out := Report{Routes: []RouteReport{}}
	for _, rr := range byRoute {
		sort.Slice(rr.Endpoints, func(i, j int) bool { return rr.Endpoints[i].Endpoint < rr.Endpoints[j].Endpoint })
		if rr.Endpoints == nil {
			rr.Endpoints = []EndpointReport{}
		}
		out.Routes = append(out.Routes, *rr)
	}
	sort.Slice(out.Routes, func(i, j int) bool { return out.Routes[i].Route < out.Routes[j].Route })
	return out
}

func (r *Recorder) endpointReport(e *EndpointStats, th compare.Thresholds) EndpointReport {
	rep := EndpointReport{Endpoint: e.Endpoint, Compared: e.Compared, Differing: e.Differing,
		NoiseCompared: e.NoiseCompared, Skipped: maps.Clone(e.Skipped), Regressions: []FieldReport{}, Noise: []FieldReport{},
		Latency: Latency{LiveP50: quantile(e.LiveMs, 0.5), LiveP99: quantile(e.LiveMs, 0.99),
			CandidateP50: quantile(e.CandidateMs, 0.5), CandidateP99: quantile(e.CandidateMs, 0.99)}}
	if e.Compared > 0 {
		rep.DiffRate = float64(e.Differing) / float64(e.Compared)
	}
	for _, f := range r.fieldReports(e, th) {
		if f.Raw == 0 {
			continue
		}
		if f.Regression {
			rep.Regressions = append(rep.Regressions, f)
		} else {
			rep.Noise = append(rep.Noise, f)
		}
	}
	return rep
}

// fieldReports classifies every field of an endpoint, worst first.
func (r *Recorder) fieldReports(e *EndpointStats, th compare.Thresholds) []FieldReport {
	out := make([]FieldReport, 0, len(e.Fields))
	for name, f := range e.Fields {
		counts := compare.FieldCounts{Raw: f.Raw, Compared: e.Compared, Noise: f.Noise, NoiseCompared: e.NoiseCompared}
		raw, noise := counts.Rates()
		marked := r.marked(e.Route, e.Endpoint, name)
		out = append(out, FieldReport{Field: name, Raw: f.Raw, Noise: f.Noise, RawRate: raw, NoiseRate: noise,
			Kinds: maps.Clone(f.Kinds), Regression: !marked && th.Regression(counts), MarkedNoise: marked, Samples: len(f.Samples)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].RawRate != out[j].RawRate {
			return out[i].RawRate > out[j].RawRate
		}
		return out[i].Field < out[j].Field
	})
	return out
}

// thresholds are the route's, or the defaults for a route that compares
// nothing (any longer).
func (r *Recorder) thresholds(route string) compare.Thresholds {
	if spec := (*r.routes.Load())[route]; spec != nil {
		return spec.Thresholds
	}
	return compare.DefaultThresholds
}

// marked reports an operator's noise mark for the field on this endpoint
// or on every endpoint of the route ("").
func (r *Recorder) marked(route, endpoint, field string) bool {
	return r.marks[markKey{route, endpoint, field}] || r.marks[markKey{route, "", field}]
}

// Fields lists one endpoint's fields with their classification.
func (r *Recorder) Fields(route, endpoint string) ([]FieldReport, bool) {
	th := r.thresholds(route)
	r.mu.Lock()
	defer r.mu.Unlock()
	eps, _ := r.view(route)
	e := eps[epKey{route, endpoint}]
	if e == nil {
		return nil, false
	}
	return r.fieldReports(e, th), true
}

// Samples returns the kept samples of one field.
func (r *Recorder) Samples(route, endpoint, field string) ([]*Sample, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	eps, _ := r.view(route)
	e := eps[epKey{route, endpoint}]
	if e == nil || e.Fields[field] == nil {
		return nil, false
	}
	return append([]*Sample(nil), e.Fields[field].Samples...), true
}

// MarkNoise sets or clears an operator's noise mark and persists it at
// once; in fleet mode the fleet stores it, for every replica.
func (r *Recorder) MarkNoise(route, endpoint, field string, noise bool) error {
	if f := r.fleetOf(); f != nil {
		if err := f.SetMark(Mark{route, endpoint, field}, noise); err != nil {
			return err
		}
	}
	return r.markLocal(markKey{route, endpoint, field}, noise)
}

func (r *Recorder) markLocal(k markKey, noise bool) error {
	r.persist.Lock()
	defer r.persist.Unlock()
	r.mu.Lock()
	if noise {
		r.marks[k] = true
	} else {
		delete(r.marks, k)
	}
	st := r.store
	r.mu.Unlock()
	if st == nil {
		return nil
	}
	return st.Update(func(tx *store.Tx) error {
		if noise {
			return tx.Put(bucket, markStoreKey(k), true)
		}
		return tx.Delete(bucket, markStoreKey(k))
	})
}

// Reset forgets the results (not the noise marks) of one endpoint of a
// route, of the whole route (endpoint "") or of every route (both ""), in
// memory and in the store, and returns how many endpoints it forgot; in
// fleet mode on every replica. Single fields are not reset: their counts
// are rates over the endpoint's compared answers, which a field of its
// own cannot restart.
func (r *Recorder) Reset(route, endpoint string) (int, error) {
	if endpoint != "" && route == "" {
		return 0, fmt.Errorf("diffs: resetting endpoint %q needs its route", endpoint)
	}
	f := r.fleetOf()
	if f == nil {
		return r.resetLocal(route, endpoint)
	}
	// The fleet's endpoints are reset: count them (this replica may have
	// none of them, and the watch may apply the reset here first).
	r.mu.Lock()
	eps, _ := r.view(route)
	n := 0
	for k := range eps {
		if endpoint == "" || k.endpoint == endpoint {
			n++
		}
	}
	r.mu.Unlock()
	m, err := f.Reset(route, endpoint)
	if err != nil {
		return 0, err
	}
	if _, err := r.resetLocal(route, endpoint); err != nil {
		return n, err
	}
	return n, r.noteReset(resetScope(route, endpoint), m)
}

func (r *Recorder) resetLocal(route, endpoint string) (int, error) {
	in := func(kRoute, kEndpoint string) bool {
		return (route == "" || kRoute == route) && (endpoint == "" || kEndpoint == endpoint)
	}
	r.persist.Lock()
	defer r.persist.Unlock()
	r.mu.Lock()
	n := 0
	for k, e := range r.endpoints {
		if in(k.route, k.endpoint) {
			for _, f := range e.Fields {
				for _, s := range f.Samples {
					r.sampleBytes -= int64(s.size())
				}
			}
			delete(r.endpoints, k)
			delete(r.dirty, k)
			delete(r.dirtyLat, k)
			n++
		}
	}
	for _, queued := range []map[fieldKey]bool{r.dirtyFields, r.unsaved} {
		for fk := range queued {
			if in(fk.route, fk.endpoint) {
				delete(queued, fk)
			}
		}
	}
	st := r.store
	r.mu.Unlock()
	if st == nil {
		return n, nil
	}
	return n, st.Update(func(tx *store.Tx) error {
		for _, prefix := range recordPrefixes(route, endpoint) {
			if _, err := tx.DeletePrefix(bucket, prefix); err != nil {
				return err
			}
		}
		for _, key := range recordKeys(route, endpoint) {
			if err := tx.Delete(bucket, key); err != nil {
				return err
			}
		}
		return nil
	})
}

// Handlers are the admin API endpoints, registered by the gateway.
func (r *Recorder) Handlers() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /api/v1/diffs":                 r.handleReport,
		"GET /api/v1/diffs/{route}":         r.handleReport,
		"GET /api/v1/diffs/{route}/fields":  r.handleFields,
		"GET /api/v1/diffs/{route}/samples": r.handleSamples,
		"POST /api/v1/diffs/{route}/noise":  r.handleNoise,
		"DELETE /api/v1/diffs":              r.handleReset,
		"DELETE /api/v1/diffs/{route}":      r.handleReset,
	}
}

func (r *Recorder) handleReport(w http.ResponseWriter, req *http.Request) {
	admin.WriteJSON(w, http.StatusOK, r.Report(req.PathValue("route")))
}

func (r *Recorder) handleFields(w http.ResponseWriter, req *http.Request) {
	route, ep := req.PathValue("route"), req.URL.Query().Get("endpoint")
	fields, ok := r.Fields(route, ep)
	if !ok {
		admin.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no comparisons for route %q endpoint %q (give ?endpoint=, e.g. \"GET /v1/items/{id}\")", route, ep))
		return
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"route": route, "endpoint": ep, "fields": fields})
}

func (r *Recorder) handleSamples(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	route, ep, field := req.PathValue("route"), q.Get("endpoint"), q.Get("field")
	samples, ok := r.Samples(route, ep, field)
	if !ok {
		admin.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no samples for route %q endpoint %q field %q", route, ep, field))
		return
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"route": route, "endpoint": ep, "field": field, "samples": samples})
}

// NoiseRequest is the body of POST /api/v1/diffs/{route}/noise. An empty
// endpoint marks the field on every endpoint of the route.
type NoiseRequest struct {
	Endpoint string `json:"endpoint"`
	Field    string `json:"field"`
	Noise    *bool  `json:"noise"`
}

func (r *Recorder) handleNoise(w http.ResponseWriter, req *http.Request) {
	var body NoiseRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Field == "" {
		admin.WriteError(w, http.StatusBadRequest, "bad_request", `want {"endpoint": "GET /path", "field": "user.created_at", "noise": true}`)
		return
	}
	noise := body.Noise == nil || *body.Noise
	if err := r.MarkNoise(req.PathValue("route"), body.Endpoint, body.Field, noise); err != nil {
		admin.WriteError(w, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"route": req.PathValue("route"), "endpoint": body.Endpoint, "field": body.Field, "noise": noise})
}

// handleReset serves DELETE /api/v1/diffs[/{route}][?endpoint=E]: one
// endpoint's results with ?endpoint=, else the route's or every route's.
func (r *Recorder) handleReset(w http.ResponseWriter, req *http.Request) {
	route := req.PathValue("route")
	q := req.URL.Query()
	endpoint := q.Get("endpoint")
	if q.Has("endpoint") && (endpoint == "" || route == "") {
		admin.WriteError(w, http.StatusBadRequest, "bad_request",
			`?endpoint= names one endpoint of the route in the path: DELETE /api/v1/diffs/{route}?endpoint=GET%20/checkout/{id}`)
		return
	}
	n, err := r.Reset(route, endpoint)
	if err != nil {
		admin.WriteError(w, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	if endpoint != "" && n == 0 {
		admin.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no comparisons for route %q endpoint %q", route, endpoint))
		return
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"reset_endpoints": n})
}

// Counts are one route's cumulative comparison counters by endpoint: a
// baseline, so that a rollout step judges only the comparisons made
// during it (a step retried after a fix must not fail on the answers of
// the broken version).
type Counts map[string]EndpointCounts

// EndpointCounts are one endpoint's counters in Counts.
type EndpointCounts struct {
	Compared      int64                  `json:"compared"`
	NoiseCompared int64                  `json:"noise_compared"`
	Fields        map[string]FieldCounts `json:"fields,omitempty"`
}

// FieldCounts are one field's counters in Counts.
type FieldCounts struct {
	Raw   int64 `json:"raw"`
	Noise int64 `json:"noise"`
}

// Counts snapshots the route's counters.
func (r *Recorder) Counts(route string) Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := Counts{}
	eps, _ := r.view(route)
	for k, e := range eps {
		if k.route != route {
			continue
		}
		ec := EndpointCounts{Compared: e.Compared, NoiseCompared: e.NoiseCompared, Fields: make(map[string]FieldCounts, len(e.Fields))}
		for name, f := range e.Fields {
			ec.Fields[name] = FieldCounts{Raw: f.Raw, Noise: f.Noise}
		}
		out[k.endpoint] = ec
	}
	return out
}

// Since judges the comparisons of route made after base was taken (all of
// them when base is nil) with the route's thresholds and noise marks: it
// returns how many answers were compared and the regressed field whose
// raw rate exceeds its noise rate most ("endpoint field"), with that
// excess. An endpoint whose counters went below base was reset since, and
// is counted from zero.
func (r *Recorder) Since(route string, base Counts) (compared int64, worst string, excess float64) {
	th := r.thresholds(route)
	r.mu.Lock()
	defer r.mu.Unlock()
	eps, _ := r.view(route)
	for k, e := range eps {
		if k.route != route {
			continue
		}
		b := base[k.endpoint]
		if e.Compared < b.Compared || e.NoiseCompared < b.NoiseCompared {
			b = EndpointCounts{}
		}
		n, nNoise := e.Compared-b.Compared, e.NoiseCompared-b.NoiseCompared
		if !strings.HasPrefix(k.endpoint, EgressEndpointPrefix) {
			compared += n // answers; outbound calls gate by their fields only
		}
		for name, f := range e.Fields {
			bf := b.Fields[name]
			if f.Raw < bf.Raw || f.Noise < bf.Noise {
				bf = FieldCounts{}
			}
			counts := compare.FieldCounts{Raw: f.Raw - bf.Raw, Compared: n, Noise: f.Noise - bf.Noise, NoiseCompared: nNoise}
			if counts.Raw == 0 || r.marked(route, k.endpoint, name) || !th.Regression(counts) {
				continue
			}
			raw, noise := counts.Rates()
			if x := raw - noise; x > excess {
				excess, worst = x, k.endpoint+" "+name
			}
		}
	}
	return compared, worst, excess
}
