package backend

import (
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/umbragw/umbra/internal/h1client"
)

// endpoint is one upstream address and its counters. All fields after url
// are atomics so the request path never takes a lock.
type endpoint struct {
	url  *url.URL
	fast *h1client.Pool // nil: every request uses the backend's http.Transport

	inFlight atomic.Int64  // requests sent and not yet finished
	total    atomic.Uint64 // attempts sent, including failed ones
	fails    atomic.Int64  // consecutive connection failures
	// ejectedUntil is the readmission time in Unix nanoseconds, 0 when the
	// endpoint is in rotation. Transitions are compare-and-swaps, so
	// exactly one goroutine wins each and logs it.
	ejectedUntil atomic.Int64
}

func newEndpoint(u *url.URL) *endpoint { return &endpoint{url: u} }

func (e *endpoint) begin() {
	e.inFlight.Add(1)
	e.total.Add(1)
}

func (e *endpoint) end() { e.inFlight.Add(-1) }

// connFailed counts a connection failure of e and ejects it at MaxFails.
// The count is not reset by ejection, so after readmission a single new
// failure ejects the endpoint again; only a response resets it.
func (b *Backend) connFailed(e *endpoint) {
	n := e.fails.Add(1)
	if n < b.s.maxFails {
		return
	}
	now := time.Now()
	// An expired ejection nobody has noticed yet must end first, or the
	// compare-and-swap below would find it still set and not re-eject.
	if until := e.ejectedUntil.Load(); until != 0 && now.UnixNano() >= until {
		b.readmit(e, until)
	}
	until := now.Add(b.s.ejectFor)
	if e.ejectedUntil.CompareAndSwap(0, until.UnixNano()) {
		b.ejected.Add(1)
		b.logger().Warn("backend endpoint ejected",
			"backend", b.name, "endpoint", e.url.String(),
			"consecutive_failures", n, "until", until)
	}
}

// SetLog sets the logger of health events (ejected, readmitted, panic
// mode). The gateway calls it with each snapshot's logger, so a backend
// kept across a reload follows the new log settings.
func (b *Backend) SetLog(l *slog.Logger) { b.log.Store(l) }

// logger is the logger SetLog gave, or slog.Default for a backend used
// on its own (tests, tools).
func (b *Backend) logger() *slog.Logger {
	if l := b.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// connSucceeded resets the failure count. It reads before writing so the
// common case (already 0) does not dirty a cache line shared by all cores.
func (b *Backend) connSucceeded(e *endpoint) {
	if e.fails.Load() != 0 {
		e.fails.Store(0)
	}
}

// readmit puts e back in rotation if its ejection still ends at until.
// Readmission is noticed by the first pick after EjectFor (no timer per
// endpoint); Status reports it on time regardless.
func (b *Backend) readmit(e *endpoint, until int64) {
	if e.ejectedUntil.CompareAndSwap(until, 0) {
		b.ejected.Add(-1)
		b.logger().Info("backend endpoint readmitted",
			"backend", b.name, "endpoint", e.url.String())
	}
}

// usable reports whether e is in rotation. now is 0 when no endpoint of
// the backend is ejected, which keeps the clock off the hot path; an
// ejection racing with that read is then correctly seen as in force.
func (b *Backend) usable(e *endpoint, now int64) bool {
	until := e.ejectedUntil.Load()
	if until == 0 {
		return true
	}
	if now != 0 && now >= until {
		b.readmit(e, until)
		return true
	}
	return false
}

// EndpointStatus is one endpoint's state for the admin API.
type EndpointStatus struct {
	URL string `json:"url"`
	// Healthy is false while the endpoint is ejected.
	Healthy bool `json:"healthy"`
	// EjectedUntil is when an ejected endpoint returns; zero when healthy.
	EjectedUntil        time.Time `json:"ejected_until,omitzero"`
	ConsecutiveFailures int64     `json:"consecutive_failures"`
	// InFlight counts requests awaiting response headers; with
	// least_request it also counts responses whose body is still open.
	InFlight int64 `json:"in_flight"`
	// Requests counts every attempt sent to the endpoint, failed ones too.
	Requests uint64 `json:"requests"`
}

// Status reports every endpoint in configuration order.
func (b *Backend) Status() []EndpointStatus {
	now := time.Now().UnixNano()
	out := make([]EndpointStatus, len(b.eps))
	for i, e := range b.eps {
		st := EndpointStatus{
			URL:                 e.url.String(),
			Healthy:             true,
			ConsecutiveFailures: e.fails.Load(),
			InFlight:            e.inFlight.Load(),
			Requests:            e.total.Load(),
		}
		if until := e.ejectedUntil.Load(); until != 0 && now < until {
			st.Healthy = false
			st.EjectedUntil = time.Unix(0, until)
		}
		out[i] = st
	}
	return out
}
