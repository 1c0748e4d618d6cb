package shadow

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/backend"
)

// outcome is a shadow copy's final outcome, and its String the value of
// umbra_shadow_requests_total's outcome label. Outcomes partition the
// requests: for each target, every request of its route is counted
// exactly once, under its final outcome, so the outcomes of a target add
// up to the route's requests (for a compare secondary, to the requests
// whose candidate copy was taken). A copy waiting in the queue or being
// sent is not counted yet: umbra_shadow_queue_length and
// umbra_shadow_in_flight show those. Each target binds one counter per
// outcome, in an array indexed by outcome.
type outcome uint8

const (
	// Decided on the live request path: no copy is made.
	outcomeNotSampled outcome = iota
	outcomeNoMatch
	outcomeUnsafe
	outcomeBodyTooLarge
	outcomeBodyIncomplete
	outcomeUpgrade
	outcomeLiveAborted // the live response was aborted half way
	outcomeCircuitOpen // also when the breaker opened while the copy waited
	outcomeQueueFull
	// Decided by the target's senders for each queued copy: dropped when
	// the target closed first, else the answer (ok, status_5xx) or the
	// error of the exchange.
	outcomeShutdown
	outcomeOK
	outcomeStatus5xx
	outcomeErrorConnect
	outcomeErrorTimeout
	outcomeErrorReset
	outcomeErrorOther
	outcomeErrorCanceled // the target closed while sending
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"not_sampled", "skipped_no_match", "skipped_unsafe_method", "skipped_body_too_large", "skipped_body_incomplete",
	"skipped_upgrade", "skipped_live_aborted", "skipped_circuit_open", "dropped_queue_full", "dropped_shutdown", "ok", "status_5xx",
	"error_connect", "error_timeout", "error_reset", "error_other", "error_canceled",
}

func (o outcome) String() string { return outcomeNames[o] }

// errorOutcome is the outcome of a copy whose exchange failed with kind.
func errorOutcome(kind backend.ErrorKind) outcome {
	switch kind {
	case backend.KindConnect:
		return outcomeErrorConnect
	case backend.KindTimeout:
		return outcomeErrorTimeout
	case backend.KindReset:
		return outcomeErrorReset
	}
	return outcomeErrorOther
}

// Metrics are the shadow metrics, registered once per registry.
type Metrics struct {
	requests *prometheus.CounterVec
	inFlight *prometheus.GaugeVec
	breaker  *prometheus.GaugeVec
	queue    *prometheus.Desc // collected by queueLengths

	// queues holds the queue of each target bound to a (route, target)
	// series. A reload that changes a target binds the new one before the
	// old one is closed, so both share the series; only the last one
	// deletes them.
	mu     sync.Mutex
	queues map[[2]string][]chan *job
}

// NewMetrics registers the shadow metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	l := []string{"route", "target"}
	m := &Metrics{
		queues: map[[2]string][]chan *job{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_shadow_requests_total",
			Help: "Requests of a route by shadow target and final outcome (not_sampled, skipped_*, dropped_*, ok, status_5xx, error_*); each request is counted once per target, when its copy's fate is known.",
		}, append(l, "outcome")),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "umbra_shadow_in_flight", Help: "Shadow copies being sent now (not yet in umbra_shadow_requests_total).",
		}, l),
		queue: prometheus.NewDesc("umbra_shadow_queue_length", "Shadow copies waiting for a free sender (not yet in umbra_shadow_requests_total).", l, nil),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "umbra_shadow_circuit_open", Help: "1 while the target's circuit breaker is open or half-open.",
		}, l),
	}
	reg.MustRegister(m.requests, m.inFlight, m.breaker, queueLengths{m})
	return m
}

// queueLengths collects umbra_shadow_queue_length from the queues
// themselves when scraped. A gauge kept with Inc and Dec beside the channel
// runs ahead of it: while a sender has taken a copy but not yet counted it
// out, a handler can add one, and the gauge showed queue_size + 1.
type queueLengths struct{ m *Metrics }

func (q queueLengths) Describe(ch chan<- *prometheus.Desc) { ch <- q.m.queue }

func (q queueLengths) Collect(ch chan<- prometheus.Metric) {
	q.m.mu.Lock()
	defer q.m.mu.Unlock()
	for k, queues := range q.m.queues {
		n := 0
		for _, c := range queues {
			n += len(c)
		}
		ch <- prometheus.MustNewConstMetric(q.m.queue, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}

// bound is one target's metric children, bound once.
type bound struct {
	outcome  [numOutcomes]prometheus.Counter
	inFlight prometheus.Gauge
	breaker  prometheus.Gauge
}

// bind binds the series of (route, target) for a target whose copies wait
// in queue.
func (m *Metrics) bind(route, target string, queue chan *job) *bound {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{route, target}
	m.queues[k] = append(m.queues[k], queue)
	b := &bound{
		inFlight: m.inFlight.WithLabelValues(route, target),
		breaker:  m.breaker.WithLabelValues(route, target),
	}
	for o := range numOutcomes {
		b.outcome[o] = m.requests.WithLabelValues(route, target, o.String())
	}
	return b
}

// forget unbinds the target whose queue is queue, and deletes the series of
// (route, target) when no other target uses them.
func (m *Metrics) forget(route, target string, queue chan *job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{route, target}
	m.queues[k] = slices.DeleteFunc(m.queues[k], func(c chan *job) bool { return c == queue })
	if len(m.queues[k]) > 0 {
		return
	}
	delete(m.queues, k)
	l := prometheus.Labels{"route": route, "target": target}
	m.requests.DeletePartialMatch(l)
	m.inFlight.DeletePartialMatch(l)
	m.breaker.DeletePartialMatch(l)
}
