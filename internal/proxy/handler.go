package proxy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/umbragw/umbra/internal/backend"
	"github.com/umbragw/umbra/internal/egress"
	"github.com/umbragw/umbra/internal/metrics"
	"github.com/umbragw/umbra/internal/shadow"
	"github.com/umbragw/umbra/internal/tracing"

	"go.opentelemetry.io/otel/trace"
)

// Headers umbra reads or sets.
const (
	HeaderRequestID = "X-Request-Id"
)

// Handler is the main listener's http.Handler.
type Handler struct {
	snap    atomic.Pointer[Snapshot]
	metrics *metrics.Metrics
	active  atomic.Int64 // requests in ServeHTTP, upgraded connections included
}

// Active is the number of requests being served. http.Server.Shutdown does
// not wait for hijacked (upgraded) connections; the gateway waits on this.
func (h *Handler) Active() int64 { return h.active.Load() }

// NewHandler returns a handler serving snap.
func NewHandler(m *metrics.Metrics, snap *Snapshot) *Handler {
	h := &Handler{metrics: m}
	h.snap.Store(snap)
	return h
}

// Swap installs a new snapshot and returns the previous one. Requests
// already running keep the snapshot they loaded.
func (h *Handler) Swap(s *Snapshot) *Snapshot { return h.snap.Swap(s) }

// Snapshot returns the running snapshot.
func (h *Handler) Snapshot() *Snapshot { return h.snap.Load() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.active.Add(1)
	defer h.active.Add(-1)
	start := time.Now()
	snap := h.snap.Load()
	if snap.OFREP != nil && snap.OFREP.Owns(r.URL.Path) {
		snap.OFREP.ServeHTTP(w, r)
		return
	}
	if snap.Tracer != nil {
		h.serveTraced(snap, w, r, start)
		return
	}
	h.serve(snap, w, r, start, nil)
}

// serveTraced serves r inside its server span. A response aborted half
// way (http.ErrAbortHandler) still ends the span, as an error.
func (h *Handler) serveTraced(snap *Snapshot, w http.ResponseWriter, r *http.Request, start time.Time) {
	if snap.Egress != nil {
		// The egress sandbox and the span must agree on the live trace
		// id: a client's traceparent carrying a copy's trace id is dropped
		// before the span could continue it, and the span's trace id is
		// the one the sandbox registers.
		snap.Egress.DropShadowTrace(r)
	}
	r, span := snap.Tracer.StartServer(r)
	if snap.Egress != nil {
		snap.Tracer.InjectRequest(r)
	}
	status := 0
	defer func() { tracing.EndServer(span, status) }()
	status = h.serve(snap, w, r, start, span)
}

// exchange is what every step of serving one request needs: the snapshot
// it runs on, the request, when it started, its id and its server span
// (nil when tracing is off). It lives on serve's stack.
type exchange struct {
	snap  *Snapshot
	r     *http.Request
	start time.Time
	id    string
	span  trace.Span
}

// serve routes and forwards r; span is its server span, nil when tracing
// is off (then nothing of tracing runs). It returns the status sent.
func (h *Handler) serve(snap *Snapshot, w http.ResponseWriter, r *http.Request, start time.Time, span trace.Span) int {
	x := exchange{snap: snap, r: r, start: start, id: ensureRequestID(r), span: span}
	m := snap.Table.Match(r)
	if m == nil {
		h.metrics.Unmatched(r.Method)
		n := writeError(w, r, http.StatusNotFound, "no_route", "no route matches this request")
		x.accessLog("", "", "", http.StatusNotFound, n)
		return http.StatusNotFound
	}
	route := snap.Routes[m.Index]
	if proto := refusedUpgrade(route, r); proto != "" {
		// 403 as Envoy answers an upgrade its route does not allow.
		n := writeError(w, r, http.StatusForbidden, "upgrade_not_allowed",
			"route "+route.Config.Name+" does not allow upgrading to "+strconv.Quote(proto))
		x.accessLog(route.Config.Name, "", "", http.StatusForbidden, n)
		return http.StatusForbidden
	}
	forwardFlags(snap, route, r)
	t := route.Live
	if route.Canary != nil {
		canary, cookie := route.Canary.Decide(r)
		if cookie != "" {
			w.Header().Add("Set-Cookie", cookie)
		}
		if canary {
			t = route.CanaryTarget
		}
	}
	// Only requests served by the live version are copied: the canary is
	// the new version already.
	var copies *shadow.Pending
	if route.Shadow != nil && t == route.Live {
		copies = route.Shadow.Begin(r, m.Endpoint)
	}
	var calls *egress.Live
	if snap.Egress != nil {
		calls = snap.Egress.BeginLive(r, route.Config.Name, t != route.Live, copies != nil)
		if copies != nil {
			copies.Pair(calls)
		}
	}
	usage := beginAdoption(snap, route, r)
	if span != nil && tracing.Recording(span) {
		traceMatched(span, snap, route, t, r, m.Endpoint, x.id, usage)
	}
	status := x.forward(route, t, w, copies)
	calls.End()
	fields := usage.observe(route, m.Endpoint)
	if span != nil && fields != 0 && tracing.Recording(span) {
		tracing.Fields(span, route.Adoption.FieldNames(fields))
	}
	if route.Observer != nil {
		route.Observer.Observe(t != route.Live, status, time.Since(start))
	}
	if copies != nil {
		copies.Dispatch(r)
	}
	return status
}

// traceMatched records on the server span where the request goes, who
// sent it and the flag evaluations that routed it.
func traceMatched(span trace.Span, snap *Snapshot, route *Route, t *Target, r *http.Request, endpoint, id string, u *usage) {
	tracing.Matched(span, r.Method, route.Config.Name, endpoint, t.Role, t.Backend.Name(), id)
	switch {
	case u != nil:
		tracing.Caller(span, u.caller)
	case snap.Callers != nil:
		tracing.Caller(span, snap.Callers.Caller(r))
	}
	tracing.Flags(span, flagEvaluations(route, r))
}

// forward proxies r to t and records the outcome. The deferred finish also
// runs when ReverseProxy aborts a response whose upstream body failed half
// way (it panics with http.ErrAbortHandler), so gauges never leak and the
// shadow copies of an aborted request are still counted.
func (x *exchange) forward(route *Route, t *Target, w http.ResponseWriter, copies *shadow.Pending) (status int) {
	r := x.r
	rec := newRecorder(w)
	rec.capture = copies.LiveCapture()
	t.Metrics.Start()
	defer func() {
		p := recover()
		if p == http.ErrAbortHandler && r.Context().Err() == nil {
			t.Metrics.UpstreamError(backend.KindReset)
		}
		status = rec.finalStatus()
		t.Metrics.Done(r.Method, status, time.Since(x.start))
		x.accessLog(route.Config.Name, t.Backend.Name(), t.Role, status, rec.bytes)
		rec.release()
		if p != nil {
			if copies != nil {
				copies.Abandon()
			}
			panic(p)
		}
	}()
	if directEligible(r) {
		t.serveDirect(rec, r)
	} else {
		t.rp.ServeHTTP(rec, r)
	}
	return // the deferred function sets status
}

// ensureRequestID keeps a sane client-supplied X-Request-ID and otherwise
// sets a new random one on the request, so the upstream copy carries it.
func ensureRequestID(r *http.Request) string {
	if v := r.Header[HeaderRequestID]; len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	id := newRequestID()
	r.Header[HeaderRequestID] = id.values[:]
	return id.values[0]
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// requestID is a generated id and the header value holding it, in one
// allocation (three with hex.EncodeToString and a []string).
type requestID struct {
	values [1]string
	text   [32]byte
}

// newRequestID returns 128 random bits in hex. Ids need to be unique, not
// secret, so the runtime's fast per-thread generator is enough.
func newRequestID() *requestID {
	id := new(requestID)
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	hex.Encode(id.text[:], b[:])
	// The string shares id.text, which is never written again.
	id.values[0] = unsafe.String(&id.text[0], len(id.text))
	return id
}

// writeError sends a short JSON error body, the same shape everywhere.
// It returns the number of body bytes written.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) int64 {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set(HeaderRequestID, r.Header.Get(HeaderRequestID))
	body := `{"error":` + strconv.Quote(code) + `,"message":` + strconv.Quote(msg) +
		`,"request_id":` + strconv.Quote(r.Header.Get(HeaderRequestID)) + "}\n"
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return 0
	}
	n, _ := w.Write([]byte(body))
	return int64(n)
}

// accessLog writes the request's access log line when access logging is
// on; with tracing on it names the request's trace (trace_id), so a line
// leads to its trace.
func (x *exchange) accessLog(route, backend, role string, status int, bytes int64) {
	if !x.snap.Access {
		return
	}
	r := x.r
	attrs := [...]slog.Attr{
		slog.String("route", route),
		slog.String("backend", backend),
		slog.String("role", role),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", bytes),
		durationMS(time.Since(x.start)),
		slog.String("request_id", x.id),
		slog.String("remote", r.RemoteAddr),
		{}, // trace_id
	}
	n := len(attrs) - 1
	if x.span != nil {
		attrs[n] = slog.String("trace_id", tracing.TraceID(x.span))
		n++
	}
	x.snap.Log.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs[:n]...)
}

// durationMS is a log attribute with the unit in its name: a duration in
// milliseconds, to the microsecond. slog's own Duration attribute is text
// in one handler ("1.2ms") and bare nanoseconds in the other.
func durationMS(d time.Duration) slog.Attr {
	return slog.Float64("duration_ms", float64(d.Microseconds())/1000)
}
