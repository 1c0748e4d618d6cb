// Package egress is umbra's egress sandbox: the listener through which
// services call third parties. A call made while serving a live (or
// canary) request is forwarded and recorded; a call made while serving a
// shadow copy is answered by umbra, from the recording of the matching
// call of the live request it copies, or from a Hoverfly simulation, or
// with a configured error, and is never forwarded (docs/egress.md).
//
// Calls are told apart by their W3C trace id: umbra registers every live
// request's trace id (adding a traceparent when it has none) and gives
// each shadow copy a trace id of its own, tagged with an HMAC so that a
// copy's call is recognised as one even when nothing about it is stored.
package egress

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/shadow"
	"github.com/umbragw/umbra/internal/store"
	"github.com/umbragw/umbra/internal/tracing"
)

// HeaderShadow marks a shadow copy (shadow.HeaderShadow); on an outbound
// call it makes the call a shadow call whatever its trace says.
const HeaderShadow = shadow.HeaderShadow

// liveLinger is how long a live request's trace stays known after it was
// answered when it made no call and has no copies: long enough for calls
// it makes just after answering, short enough to keep the table small.
const liveLinger = 5 * time.Second

// Sandbox is the egress sandbox. It outlives reloads: its recordings and
// trace table are kept while its services are replaced.
type Sandbox struct {
	minter   *minter
	table    *table
	services atomic.Pointer[serviceSet]
	metrics  *Metrics
	sink     shadow.Sink
	log      atomic.Pointer[slog.Logger]
	rec      *recorder
	tracer   *tracing.Tracer // nil when tracing is off; set before serving

	limiter  logLimiter
	stop     chan struct{}
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	retiring []*serviceSet
}

// SetTracer makes every outbound call a span (tracing.StartEgress); call
// it before the egress listener serves. nil (the default) traces nothing.
func (s *Sandbox) SetTracer(t *tracing.Tracer) { s.tracer = t }

// New starts a sandbox for cfg, reading (or creating) its trace key.
// st keeps the recordings across restarts (nil: memory only; with
// record.persist false it is not used); sink receives the comparisons of
// outbound calls; reg gets the metrics.
func New(cfg *config.Egress, st *store.Store, sink shadow.Sink, reg prometheus.Registerer, log *slog.Logger) (*Sandbox, error) {
	key, err := loadKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	s := &Sandbox{
		minter:  newMinter(key),
		table:   newTable(int64(cfg.Record.MaxBytes), cfg.Record.TTL.D()),
		metrics: newMetrics(reg),
		sink:    sink,
		stop:    make(chan struct{}),
	}
	if !cfg.Record.Persists() {
		st = nil
	}
	s.rec = &recorder{st: st, s: s}
	s.log.Store(log)
	s.metrics.collectTable(s.table)
	if err := s.Configure(cfg, log); err != nil {
		return nil, err
	}
	if st != nil {
		s.table.gone = s.rec.forget
		res, err := s.restore(st)
		if err != nil {
			// A store that cannot be read is no reason to stop serving:
			// copies of earlier requests get simulations or unmatched.
			s.metrics.storeErrors.Inc()
			log.Error("egress: reading recordings from the store failed; starting without them", "file", st.Path(), "err", err)
		}
		s.metrics.restored.WithLabelValues(RoleLive).Add(float64(res.lives))
		s.metrics.restored.WithLabelValues(RoleShadow).Add(float64(res.copies))
		if res.lives+res.copies+res.dropped > 0 {
			log.Info("egress: recordings restored from the store", "live_requests", res.lives, "copies", res.copies,
				"expired", res.expired, "not_restored", res.dropped, "clean_stop", res.clean)
		}
		if !res.clean && res.dropped > 0 {
			log.Warn("egress: the last run did not stop cleanly; shadow copies it paired are answered by simulations or the unmatched answer, not replayed (their last calls may not have been written)",
				"copies", res.dropped)
		}
	}
	s.wg.Add(1)
	go s.sweeper()
	return s, nil
}

// Configure installs the services of a new config. Recordings are kept.
func (s *Sandbox) Configure(cfg *config.Egress, log *slog.Logger) error {
	set, err := newServiceSet(cfg, s.metrics)
	if err != nil {
		return err
	}
	s.log.Store(log)
	s.table.max.Store(int64(cfg.Record.MaxBytes))
	s.table.ttl.Store(int64(cfg.Record.TTL.D()))
	if old := s.services.Swap(set); old != nil {
		// Calls in flight may still use the old backends: close them
		// after the longest a call may take.
		s.closeMu.Lock()
		s.retiring = append(s.retiring, old)
		s.closeMu.Unlock()
		time.AfterFunc(old.maxTimeout()+time.Second, func() { s.retire(old) })
	}
	return nil
}

func (s *Sandbox) retire(set *serviceSet) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	for i, r := range s.retiring {
		if r == set {
			s.retiring = append(s.retiring[:i], s.retiring[i+1:]...)
			set.close(s.services.Load())
			return
		}
	}
}

// Close stops the sweeper, writes what is left of the recordings (the
// store is then marked as cleanly stopped) and closes the services'
// connections. Call it after the egress listener stopped.
func (s *Sandbox) Close() {
	close(s.stop)
	s.wg.Wait()
	if err := s.rec.flush(true); err != nil {
		s.log.Load().Error("egress: writing the last recordings to the store failed", "err", err)
	}
	s.closeMu.Lock()
	for _, r := range s.retiring {
		r.close(nil)
	}
	s.retiring = nil
	s.closeMu.Unlock()
	s.services.Load().close(nil)
}

// sweeper drops expired episodes every second and runs the recorder
// every flushInterval.
func (s *Sandbox) sweeper() {
	defer s.wg.Done()
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	flush := time.NewTicker(flushInterval)
	defer flush.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-sweep.C:
			s.table.sweep(now)
		case <-flush.C:
			_ = s.rec.flush(false)
		}
	}
}

// Live is a live or canary request whose calls the sandbox forwards and
// records. It pairs the request's shadow copies (shadow.Pairer).
type Live struct {
	s        *Sandbox
	e        *episode
	shadowed bool
}

// BeginLive registers a live request before it is forwarded: it removes
// a client's X-Umbra-Shadow (only umbra marks copies), gives the request
// a traceparent when it has none, and remembers its trace id. shadowed
// says the request will be copied; canary that the canary serves it.
func (s *Sandbox) BeginLive(r *http.Request, route string, canary, shadowed bool) *Live {
	delete(r.Header, HeaderShadow)
	id, ok := parseTraceparent(r.Header.Get(headerTraceparent))
	if !ok || s.minter.isShadow(id) {
		// A live request must not carry a copy's trace id: its calls
		// would be taken for a shadow's and never reach the third party.
		id = newTraceID()
		r.Header.Set(headerTraceparent, id.traceparent())
	}
	role := RoleLive
	if canary {
		role = RoleCanary
	}
	now := time.Now()
	e := newLive(id, route, role, s.table.expiry(now))
	s.table.putLive(e)
	return &Live{s: s, e: e, shadowed: shadowed}
}

// DropShadowTrace removes from r a traceparent that carries a shadow
// copy's trace id, which BeginLive would replace. With tracing on the
// proxy calls it before the request's span continues the caller's trace,
// so that the span's trace id is the one BeginLive registers.
func (s *Sandbox) DropShadowTrace(r *http.Request) {
	if id, ok := parseTraceparent(r.Header.Get(headerTraceparent)); ok && s.minter.isShadow(id) {
		delete(r.Header, headerTraceparent)
		delete(r.Header, "Tracestate")
	}
}

func newTraceID() traceID {
	var id traceID
	for id == (traceID{}) {
		putUint64(id[:8], rngUint64())
		putUint64(id[8:], rngUint64())
	}
	return id
}

// End marks the live request answered. Its trace is kept for the record
// TTL when it made calls or has copies, else only briefly.
func (l *Live) End() {
	if l == nil {
		return
	}
	e := l.e
	e.mu.Lock()
	e.open = false
	made := len(e.calls) > 0
	e.notify()
	e.mu.Unlock()
	if !made && !l.shadowed {
		e.expires.Store(time.Now().Add(liveLinger).UnixNano())
	}
}

// PairCopy implements shadow.Pairer: the copy gets a tagged trace id of
// its own, mapped to this live request.
func (l *Live) PairCopy(target string, role shadow.CopyRole) (string, func(ok bool)) {
	s := l.s
	id := s.minter.mint()
	live := l.e
	c := newCopy(id, live, target, role, s.table.expiry(time.Now()))
	if !s.table.putCopy(c) {
		s.metrics.dropped(RoleShadow, "store_full")
	} else if s.rec.st != nil {
		c.dirty = true
		s.rec.mark(c)
	}
	if role == shadow.CopyPlain {
		return id.traceparent(), func(bool) {}
	}
	live.mu.Lock()
	live.compared = append(live.compared, c)
	live.waiting++
	live.mu.Unlock()
	return id.traceparent(), func(ok bool) { s.copyDone(c, ok) }
}

// copyDone is told that a compared copy's exchange is over; when all of
// the live request's compared copies are, their calls are compared.
func (s *Sandbox) copyDone(c *episode, ok bool) {
	live := c.live
	c.mu.Lock()
	c.ok = ok
	c.mu.Unlock()
	live.mu.Lock()
	live.waiting--
	last := live.waiting == 0
	live.mu.Unlock()
	if last {
		s.compareCalls(live)
	}
}

// logLimiter lets one event through per 10 seconds and counts the others:
// a dead provider at thousands of calls per second must not become as
// many log lines.
type logLimiter struct {
	next       atomic.Int64
	suppressed atomic.Int64
}

func (l *logLimiter) allow(now time.Time) (suppressed int64, ok bool) {
	next := l.next.Load()
	if now.UnixNano() < next || !l.next.CompareAndSwap(next, now.Add(10*time.Second).UnixNano()) {
		l.suppressed.Add(1)
		return 0, false
	}
	return l.suppressed.Swap(0), true
}

// ValidateService builds a service (backend, simulations, comparator)
// without starting anything, for `umbra validate`.
func ValidateService(sc *config.EgressService) error {
	svc, err := newService(sc, newMetrics(prometheus.NewRegistry()))
	if err != nil {
		return err
	}
	svc.backend.Close()
	return nil
}

// SimulationHandler serves GET /api/v1/egress/{service}/simulation: the
// service's recorded calls as a Hoverfly v5 simulation.
func (s *Sandbox) SimulationHandler(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("service")
	sim, ok := s.Recorded(name)
	if !ok {
		writeError(w, http.StatusNotFound, "no_egress_service", "no egress service "+strconv.Quote(name))
		return
	}
	b, err := json.MarshalIndent(sim, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}
