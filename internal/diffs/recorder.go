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

	mu          sync.Mutex // guards the fields below and store
	endpoints   map[epKey]*EndpointStats
	marks       map[markKey]bool
	dirty       map[epKey]bool
	sampleBytes int64
}

// MaxSampleBytes bounds the samples kept across all endpoints; past it,
// counters go on but no new sample is kept until a reset.
const MaxSampleBytes = 64 << 20

// New starts a recorder with the given global settings. It keeps results
// in memory until Attach gives it a store.
func New(cfg config.Comparison, reg prometheus.Registerer, log *slog.Logger) *Recorder {
	r := &Recorder{
		cfg: cfg, log: log,
		queue:     make(chan *shadow.Exchange, cfg.QueueSize),
		done:      make(chan struct{}),
		endpoints: map[epKey]*EndpointStats{},
		marks:     map[markKey]bool{},
		dirty:     map[epKey]bool{},
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_compare_total",
			Help: "Comparisons of shadow answers with live ones by route, endpoint and result (equal, different, candidate_error, live_error, too_large, skipped_queue_full).",
		}, []string{"route", "endpoint", "result"}),
	}
	empty := map[string]*RouteSpec{}
	r.routes.Store(&empty)
	reg.MustRegister(r.total)
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
	r.store = st
	for k := range r.endpoints {
		r.dirty[k] = true
	}
	return nil
}

// Configure installs the comparing routes of a new snapshot.
func (r *Recorder) Configure(routes map[string]*RouteSpec) { r.routes.Store(&routes) }

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
	return r.flush()
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
	r.dirty[epKey{e.Route, e.Endpoint}] = true
	if result != ResultEqual && result != ResultDifferent {
		e.Skipped[result]++
		return
	}
	e.Compared++
	e.observeLatency(ex.Live.Latency, ex.Candidate.Latency)
	if len(raw) > 0 {
		e.Differing++
	}
	// Fields past max_fields share one entry ("(other fields)"), which,
	// like any field, counts an exchange once and keeps one sample of it.
	touched := make(map[*FieldStats]bool, len(raw))
	for field, ds := range byField(raw) {
		f := e.field(field, r.cfg.MaxFields)
		for _, d := range ds {
			f.Kinds[d.Kind]++
		}
		if !touched[f] {
			touched[f] = true
			f.Raw++
			r.addSample(f, ex, ownFirst(field, ds, raw))
		}
	}
	if noiseOK {
		e.NoiseCompared++
		clear(touched)
		for field := range byField(noise) {
			if f := e.field(field, r.cfg.MaxFields); !touched[f] {
				touched[f] = true
				f.Noise++
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
	raw = spec.Comparator.Diff(toCompare(ex.Live), toCompare(cand))
	if noiseOK = sec != nil && sec.Err == "" && !sec.Truncated; noiseOK {
		noise = spec.Comparator.Diff(toCompare(ex.Live), toCompare(sec))
	}
	if len(raw) > 0 {
		return ResultDifferent, raw, noise, noiseOK
	}
	return ResultEqual, raw, noise, noiseOK
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
// within the global byte budget.
func (r *Recorder) addSample(f *FieldStats, ex *shadow.Exchange, diffs []compare.Difference) {
	if len(f.Samples) >= r.cfg.SamplesPerField || r.sampleBytes >= MaxSampleBytes {
		return
	}
	s := newSample(ex, diffs)
	r.sampleBytes += int64(s.size())
	f.Samples = append(f.Samples, s)
}
