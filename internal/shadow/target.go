package shadow

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umbragw/umbra/internal/backend"
	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/match"
	"github.com/umbragw/umbra/internal/metrics"
	"github.com/umbragw/umbra/internal/tracing"

	"go.opentelemetry.io/otel/trace"
)

// maxDrain bounds how much of a shadow answer is read. Reading it lets the
// connection be reused; past this the connection is dropped instead.
const maxDrain = 8 << 20

// Target is one shadow target of one route: its own backend instance (so
// shadow traffic can never take connections from the live pool), a bounded
// queue, a fixed set of senders and a circuit breaker. Nothing on the live
// path ever waits for it: the live handler only does a non-blocking send.
type Target struct {
	Route, Name string
	cfg         config.Shadow
	backendCfg  config.Backend
	headers     []match.Cond // cfg.Match.Headers compiled

	backend *backend.Backend
	m       *bound
	metrics *Metrics
	path    *metrics.Path // role=shadow request metrics
	brk     breaker
	queue   chan *job
	done    chan struct{}
	wg      sync.WaitGroup
	ctx     context.Context // cancelled by Close: in-flight copies stop at once
	cancel  context.CancelFunc
	closed  atomic.Bool // set first thing by Close

	log     atomic.Pointer[slog.Logger]
	access  atomic.Bool
	limiter logLimiter

	sent, failed atomic.Int64 // totals, for the rollout's shadow step
}

// Totals returns how many copies were sent and how many of those failed
// (no answer or a 5xx), since the target started.
func (t *Target) Totals() (sent, failed int64) { return t.sent.Load(), t.failed.Load() }

// job is one prepared copy waiting for a sender.
type job struct {
	req  *http.Request
	body *bodyCopy  // nil for bodyless requests
	cap  *capture   // non-nil when the answer is compared
	span trace.Span // the copy's span; nil when tracing is off
	// paired, when the egress sandbox pairs the copy, hears once how it ended.
	paired func(ok bool)
}

// drop releases a copy that is not sent.
func (j *job) drop(reason outcome) {
	j.body.release()
	j.cap.fail(reason.String())
	j.end(false)
}

func (j *job) end(ok bool) {
	if j.paired != nil {
		j.paired(ok)
		j.paired = nil
	}
}

// NewTarget starts a shadow target: cfg.MaxInFlight senders reading a
// queue of cfg.QueueSize copies. tr, when not nil, traces each copy's
// exchange.
func NewTarget(route string, cfg *config.Shadow, bcfg *config.Backend, mm *Metrics, path *metrics.Path, log *slog.Logger, access bool, tr *tracing.Tracer) (*Target, error) {
	conds, err := match.Headers(cfg.Match.Headers)
	if err != nil {
		return nil, err
	}
	bc := *bcfg
	// A copy is sent once: retrying it elsewhere would only add load to a
	// version that is not serving users.
	bc.Retry.Disable = true
	b, err := backend.New(&bc, backend.WithTracer(tr))
	if err != nil {
		return nil, err
	}
	t := &Target{
		Route: route, Name: cfg.Backend, cfg: *cfg, backendCfg: *bcfg, headers: conds,
		backend: b, metrics: mm, path: path,
		brk:     breaker{failures: cfg.Breaker.Failures, openFor: cfg.Breaker.OpenFor.D()},
		queue:   make(chan *job, cfg.QueueSize),
		done:    make(chan struct{}),
		limiter: logLimiter{every: 10 * time.Second},
	}
	t.m = mm.bind(route, cfg.Backend, t.queue)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.SetLog(log, access)
	t.m.breaker.Set(0)
	t.wg.Add(cfg.MaxInFlight)
	for i := 0; i < cfg.MaxInFlight; i++ {
		go t.sender()
	}
	return t, nil
}

// Same reports whether t was built from the same configuration, so a reload
// can keep it (its queue, breaker and connections) instead of replacing it.
func (t *Target) Same(route string, cfg *config.Shadow, bcfg *config.Backend) bool {
	return t.Route == route && reflect.DeepEqual(&t.cfg, cfg) && reflect.DeepEqual(&t.backendCfg, bcfg)
}

// SetLog updates the logger after a reload that kept the target.
func (t *Target) SetLog(l *slog.Logger, access bool) {
	t.log.Store(l)
	t.backend.SetLog(l)
	t.access.Store(access)
}

// Close stops the senders after their current copy, drops what is still
// queued and forgets the target's metrics. Handlers of an older snapshot
// may still enqueue afterwards; those copies are never sent: enqueue sees
// closed and drops them itself (dropped_shutdown).
func (t *Target) Close() {
	t.closed.Store(true)
	close(t.done)
	t.cancel()
	t.wg.Wait()
	t.drain()
	t.backend.Close()
	t.metrics.forget(t.Route, t.Name, t.queue)
}

// drain drops every copy still queued.
func (t *Target) drain() {
	for {
		select {
		case j := <-t.queue:
			t.drop(j, outcomeShutdown)
		default:
			return
		}
	}
}

func (t *Target) count(o outcome) { t.m.outcome[o].Inc() }

// settle counts a copy's final outcome and ends its span; status is the
// answer's, 0 when there was none.
func (t *Target) settle(j *job, o outcome, status int) {
	t.count(o)
	if j.span != nil {
		tracing.EndShadow(j.span, o.String(), status)
	}
}

// drop settles a copy that is never sent and frees what it holds.
func (t *Target) drop(j *job, o outcome) {
	t.settle(j, o, 0)
	j.drop(o)
}

// enqueue hands a copy to the senders without ever blocking.
func (t *Target) enqueue(j *job) {
	select {
	case t.queue <- j:
		if t.closed.Load() {
			// Close began, and may have drained already: nothing will
			// take this copy off the queue.
			t.drain()
		}
	default:
		t.drop(j, outcomeQueueFull)
		t.warn("shadow queue full; dropping copies", "queue_size", t.cfg.QueueSize)
	}
}

func (t *Target) sender() {
	defer t.wg.Done()
	for {
		select {
		case <-t.done:
			return
		case j := <-t.queue:
			select {
			case <-t.done:
				// select picks at random among ready cases: a copy taken
				// after Close began is dropped like the rest of the queue,
				// not sent with a cancelled context.
				t.drop(j, outcomeShutdown)
				return
			default:
			}
			t.send(j)
		}
	}
}

// send performs one copy under the target's timeout and records its outcome.
func (t *Target) send(j *job) {
	now := time.Now()
	if !t.brk.allow(now) {
		t.drop(j, outcomeCircuitOpen)
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.Timeout.D())
	defer cancel()
	if j.span != nil {
		ctx = trace.ContextWithSpan(ctx, j.span) // the attempt's client span is its child
	}
	req := j.req.WithContext(ctx)
	if j.body != nil {
		req.Body = j.body.reader() // the transport closes it, which releases the copy
	}
	t.m.inFlight.Inc()
	t.path.Start()
	status, err := t.exchange(req, j.cap, now)
	j.end(err == nil && status < 500)
	elapsed := time.Since(now)
	t.m.inFlight.Dec()
	if err != nil && t.ctx.Err() != nil {
		// Cancelled because the target closed (reload or shutdown): says
		// nothing about the target's health.
		t.path.Failed(backend.KindCanceled)
		t.settle(j, outcomeErrorCanceled, 0)
		return
	}
	ok := err == nil && status < 500
	t.sent.Add(1)
	if !ok {
		t.failed.Add(1)
	}
	switch {
	case err != nil:
		kind := backend.KindOf(err)
		t.path.Failed(kind)
		t.settle(j, errorOutcome(kind), 0)
		t.warn("shadow copy failed", "kind", kind.String(), "err", err.Error())
	case status >= 500:
		t.path.Done(req.Method, status, elapsed)
		t.settle(j, outcomeStatus5xx, status)
	default:
		t.path.Done(req.Method, status, elapsed)
		t.settle(j, outcomeOK, status)
	}
	t.recordBreaker(ok)
	if t.access.Load() {
		t.accessLog(req, status, err, elapsed, j.span)
	}
}

// exchange sends req and reads the answer, so the connection can be
// reused; a compared answer is captured, the others are discarded.
func (t *Target) exchange(req *http.Request, cap *capture, start time.Time) (int, error) {
	resp, err := t.backend.RoundTrip(req)
	if err != nil {
		cap.fail(errorOutcome(backend.KindOf(err)).String())
		return 0, err
	}
	defer resp.Body.Close()
	if cap != nil {
		body, truncated, err := readCapped(resp.Body, cap.max)
		if err != nil {
			cap.fail(errorOutcome(backend.KindOf(err)).String())
			return resp.StatusCode, err
		}
		cap.finish(&Response{Status: resp.StatusCode, Header: resp.Header, Body: body, Truncated: truncated, Latency: time.Since(start)})
		return resp.StatusCode, nil
	}
	buf := drainBuffers.Get().(*[]byte)
	defer drainBuffers.Put(buf)
	if _, err := io.CopyBuffer(io.Discard, io.LimitReader(resp.Body, maxDrain), *buf); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

var drainBuffers = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

func (t *Target) recordBreaker(ok bool) {
	if t.brk.record(ok, time.Now()) {
		t.m.breaker.Set(1)
		t.warn("shadow circuit breaker open", "failures", t.cfg.Breaker.Failures, "open_for", t.cfg.Breaker.OpenFor.D().String())
	} else if ok {
		t.m.breaker.Set(0)
	}
}

func (t *Target) accessLog(req *http.Request, status int, err error, elapsed time.Duration, span trace.Span) {
	attrs := []slog.Attr{
		slog.String("route", t.Route), slog.String("backend", t.Name), slog.String("role", metrics.RoleShadow),
		slog.String("method", req.Method), slog.String("path", req.URL.Path), slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000), slog.String("request_id", req.Header.Get("X-Request-Id")),
	}
	if span != nil {
		attrs = append(attrs, slog.String("trace_id", tracing.TraceID(span)))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	t.log.Load().LogAttrs(context.Background(), slog.LevelInfo, "access", attrs...)
}

// warn logs at most one line per target every 10 seconds, with the number
// of lines it held back: a dead shadow at 10,000 requests/s must not turn
// into 10,000 log lines per second.
func (t *Target) warn(msg string, args ...any) {
	if n, ok := t.limiter.allow(time.Now()); ok {
		args = append(args, "route", t.Route, "target", t.Name, "suppressed_since_last", n)
		t.log.Load().Warn(msg, args...)
	}
}

// logLimiter lets one event through per interval and counts the others.
type logLimiter struct {
	every      time.Duration
	next       atomic.Int64
	suppressed atomic.Int64
}

func (l *logLimiter) allow(now time.Time) (suppressed int64, ok bool) {
	next := l.next.Load()
	if now.UnixNano() < next || !l.next.CompareAndSwap(next, now.Add(l.every).UnixNano()) {
		l.suppressed.Add(1)
		return 0, false
	}
	return l.suppressed.Swap(0), true
}
