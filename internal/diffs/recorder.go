package diffs

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/compare"
	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/shadow"
	"github.com/umbragw/umbra/internal/store"
)

// Results of umbra_compare_total.
const (
	ResultEqual          = "equal"
	ResultDifferent      = "different"
	ResultCandidateError = "candidate_error"
	ResultLiveError      = "live_error" // the live upstream failed: nothing to compare with
	ResultTooLarge       = "too_large"
	ResultQueueFull      = "skipped_queue_full"
)

// RouteSpec is how one route compares, rebuilt on every reload.
type RouteSpec struct {
	Comparator *compare.Comparator
	Thresholds compare.Thresholds
	Target     string
	Secondary  string
}

type epKey struct{ route, endpoint string }

type markKey struct{ route, endpoint, field string }

// Recorder aggregates exchanges. It is safe for concurrent use.
type Recorder struct {
	cfg    config.Comparison
	store  *store.Store // nil: memory only
	log    *slog.Logger
	queue  chan *shadow.Exchange
	routes atomic.Pointer[map[string]*RouteSpec]
	total  *prometheus.CounterVec
	wg     sync.WaitGroup
	done   chan struct{}

	// persist serialises each store write (flush, Reset, MarkNoise) with
	// the memory change it stands for, so that a flush encoded before a
	// reset cannot be written after it. Taken before mu.
	persist sync.Mutex

	overflow       *prometheus.CounterVec // exchanges counted under "(other fields)"
	samplesSkipped *prometheus.CounterVec // samples not kept for a byte budget
	backlog        prometheus.Gauge       // records waiting for a flush

	mu        sync.Mutex // guards the fields below and store
	endpoints map[epKey]*EndpointStats
	marks     map[markKey]bool
	// What the next flush writes (persist.go): changed endpoint counters,
	// latency rings and field counters, and fields with new samples.
	dirty       map[epKey]bool
	dirtyLat    map[epKey]bool
	dirtyFields map[fieldKey]bool
	unsaved     map[fieldKey]bool
	latSavedAt  time.Time
	sampleBytes int64

	// Fleet mode (fleet.go): the peers' results merged on read, the
	// origin of this replica's counts and the fleet resets applied.
	fleet  atomic.Pointer[fleetRef]
	origin string
	resets map[string]ResetMark // by resetScope
}

// Byte budgets of the samples kept: across all endpoints, and per
// endpoint so that one endpoint with many differing fields does not keep
// the others from having evidence. Past them counters go on, but no new
// sample is kept until a reset.
const (
	MaxSampleBytes         = 32 << 20
	MaxEndpointSampleBytes = 2 << 20
)

// New starts a recorder with the given global settings. It keeps results
// in memory until Attach gives it a store.
func New(cfg config.Comparison, reg prometheus.Registerer, log *slog.Logger) *Recorder {
	r := &Recorder{
		cfg: cfg, log: log,
		queue:       make(chan *shadow.Exchange, cfg.QueueSize),
		done:        make(chan struct{}),
		endpoints:   map[epKey]*EndpointStats{},
		marks:       map[markKey]bool{},
		dirty:       map[epKey]bool{},
		dirtyLat:    map[epKey]bool{},
		dirtyFields: map[fieldKey]bool{},
		unsaved:     map[fieldKey]bool{},
		latSavedAt:  time.Now(),
		origin:      newOrigin(),
		resets:      map[string]ResetMark{},
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_compare_total",
			Help: "Comparisons of shadow answers with live ones by route, endpoint and result (equal, different, candidate_error, live_error, too_large, skipped_queue_full).",
		}, []string{"route", "endpoint", "result"}),
		overflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_compare_fields_overflow_total",
			Help: "Differing answers with a field counted under \"(other fields)\" because the endpoint already tracks comparison.max_fields fields.",
		}, []string{"route"}),
		samplesSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_compare_samples_skipped_total",
			Help: "Samples not kept because a byte budget was spent (reason: total, endpoint).",
		}, []string{"route", "reason"}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "umbra_compare_store_backlog",
			Help: "Comparison records waiting to be written to the store after the last flush (each flush writes at most 1 MiB).",
		}),
	}
	empty := map[string]*RouteSpec{}
	r.routes.Store(&empty)
	reg.MustRegister(r.total, r.overflow, r.samplesSkipped, r.backlog)
	r.wg.Add(cfg.Workers + 1)
	for i := 0; i < cfg.Workers; i++ {
		go r.worker()
	}
	go r.flusher()
	return r
}

// Attach loads what an earlier run persisted in st and persists from now
// on. Results recorded in memory before are kept and added to.
func (r *Recorder) Attach(st *store.Store) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(st); err != nil {
		return err
	}
	if err := r.loadFleet(st); err != nil {
		return err
	}
	r.store = st
	r.markAllDirty()
	return nil
}

// Configure installs the comparing routes of a new snapshot. Their
// overflow and skipped-sample series exist from the start, at 0, so that
// an alert on them sees a comparing route before its first event.
func (r *Recorder) Configure(routes map[string]*RouteSpec) {
	for route := range routes {
		r.overflow.WithLabelValues(route)
		r.samplesSkipped.WithLabelValues(route, "total")
		r.samplesSkipped.WithLabelValues(route, "endpoint")
	}
	r.routes.Store(&routes)
}

// Submit queues an exchange for comparison without ever blocking.
func (r *Recorder) Submit(ex *shadow.Exchange) {
	select {
	case r.queue <- ex:
	default:
		r.total.WithLabelValues(ex.Route, ex.Endpoint, ResultQueueFull).Inc()
		// Also in the report, so `umbra diff` shows comparisons were dropped.
		r.mu.Lock()
		e := r.endpoint(ex.Route, ex.Endpoint)
		e.Skipped[ResultQueueFull]++
		r.dirty[epKey{e.Route, e.Endpoint}] = true
		r.mu.Unlock()
	}
}

// Close stops the workers and writes what is not yet persisted.
func (r *Recorder) Close() error {
	close(r.done)
	r.wg.Wait()
	return r.flushAll()
}

func (r *Recorder) worker() {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case ex := <-r.queue:
			r.process(ex)
		}
	}
}

func (r *Recorder) flusher() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.FlushInterval.D())
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			if err := r.flush(); err != nil {
				r.log.Error("writing comparison results to the store failed", "err", err)
			}
		}
	}
}

// process compares one exchange and records the outcome.
func (r *Recorder) process(ex *shadow.Exchange) {
	spec := (*r.routes.Load())[ex.Route]
	if spec == nil {
		return // the route stopped comparing in a reload
	}
	result, raw, noise, noiseOK := r.diff(spec, ex)
	r.total.WithLabelValues(ex.Route, ex.Endpoint, result).Inc()
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.endpoint(ex.Route, ex.Endpoint)
	e.LastAt = ex.At
	ek := epKey{e.Route, e.Endpoint}
	r.dirty[ek] = true
	if result != ResultEqual && result != ResultDifferent {
		e.Skipped[result]++
		return
	}
	e.Compared++
	e.observeLatency(ex.Live.Latency, ex.Candidate.Latency)
	r.dirtyLat[ek] = true
	if len(raw) > 0 {
		e.Differing++
	}
	// Fields past max_fields share one entry ("(other fields)"), which,
	// like any field, counts an exchange once and keeps one sample of it.
	touched := make(map[*FieldStats]bool, len(raw))
	overflowed := false
	for field, ds := range byField(raw) {
		name, f := e.field(field, r.cfg.MaxFields)
		overflowed = overflowed || name != field
		for _, d := range ds {
			f.Kinds[d.Kind]++
		}
		if !touched[f] {
			touched[f] = true
			f.Raw++
			fk := fieldKey{ek.route, ek.endpoint, name}
			r.dirtyFields[fk] = true
			r.addSample(e, fk, f, ex, ownFirst(field, ds, raw))
		}
	}
	if overflowed {
		r.overflow.WithLabelValues(ek.route).Inc()
	}
	if noiseOK {
		e.NoiseCompared++
		clear(touched)
		for field := range byField(noise) {
			if name, f := e.field(field, r.cfg.MaxFields); !touched[f] {
				touched[f] = true
				f.Noise++
				r.dirtyFields[fieldKey{ek.route, ek.endpoint, name}] = true
			}
		}
	}
}

func (r *Recorder) diff(spec *RouteSpec, ex *shadow.Exchange) (result string, raw, noise []compare.Difference, noiseOK bool) {
	cand, sec := ex.Candidate, ex.Secondary
	switch {
	case ex.Live.Err != "":
		return ResultLiveError, nil, nil, false
	case cand == nil || cand.Err != "":
		return ResultCandidateError, nil, nil, false
	case ex.Live.Truncated || cand.Truncated:
		return ResultTooLarge, nil, nil, false
	}
	cmp := spec.Comparator
	if ex.Comparator != nil {
		cmp = ex.Comparator
	}
	raw = diffCall(cmp, ex.Live, cand)
	if noiseOK = sec != nil && sec.Err == "" && !sec.Truncated; noiseOK {
		noise = diffCall(cmp, ex.Live, sec)
	}
	if len(raw) > 0 {
		return ResultDifferent, raw, noise, noiseOK
	}
	return ResultEqual, raw, noise, noiseOK
}

// EgressEndpointPrefix starts the endpoint names of the egress sandbox's
// comparisons of outbound calls: "egress payments POST /v1/charges". They
// are part of their route's report and gate its rollout by their fields,
// but are not answers: they do not count towards a step's min_requests.
const EgressEndpointPrefix = "egress "

// FieldCall names the difference of an outbound call made by one side only
// (the egress sandbox's comparisons): kind extra or missing.
const FieldCall = "call"

// diffCall compares two answers, or two outbound calls of which either may
// be absent.
func diffCall(cmp *compare.Comparator, live, other *shadow.Response) []compare.Difference {
	switch {
	case live.Absent && other.Absent:
		return nil
	case live.Absent:
		return []compare.Difference{{Field: FieldCall, Path: FieldCall, Kind: compare.KindExtra, Other: "called"}}
	case other.Absent:
		return []compare.Difference{{Field: FieldCall, Path: FieldCall, Kind: compare.KindMissing, Live: "called"}}
	}
	return cmp.Diff(toCompare(live), toCompare(other))
}

func toCompare(r *shadow.Response) *compare.Response {
	return &compare.Response{Status: r.Status, Header: r.Header, Body: r.Body, Truncated: r.Truncated}
}

// endpoint returns the stats of an endpoint, bounded per route: past
// max_endpoints new endpoints are counted together as "(other)".
func (r *Recorder) endpoint(route, endpoint string) *EndpointStats {
	k := epKey{route, endpoint}
	if e := r.endpoints[k]; e != nil {
		return e
	}
	n := 0
	for ek := range r.endpoints {
		if ek.route == route {
			n++
		}
	}
	if n >= r.cfg.MaxEndpoints {
		k.endpoint = "(other)"
		if e := r.endpoints[k]; e != nil {
			return e
		}
	}
	e := newEndpoint(k.route, k.endpoint)
	r.endpoints[k] = e
	return e
}

// addSample keeps the first samples_per_field exchanges of each field,
// within the byte budgets (all samples, and the endpoint's).
func (r *Recorder) addSample(e *EndpointStats, fk fieldKey, f *FieldStats, ex *shadow.Exchange, diffs []compare.Difference) {
	if len(f.Samples) >= r.cfg.SamplesPerField {
		return
	}
	switch {
	case r.sampleBytes >= MaxSampleBytes:
		r.samplesSkipped.WithLabelValues(fk.route, "total").Inc()
		return
	case e.sampleBytes >= MaxEndpointSampleBytes:
		r.samplesSkipped.WithLabelValues(fk.route, "endpoint").Inc()
		return
	}
	s := newSample(ex, diffs)
	size := int64(s.size())
	r.sampleBytes += size
	e.sampleBytes += size
	f.Samples = append(f.Samples, s)
	r.unsaved[fk] = true
}
