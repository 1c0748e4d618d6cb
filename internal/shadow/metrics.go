package shadow

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a shadow copy, the values of umbra_shadow_requests_total's
// outcome label. They partition the requests: for each target, every
// request of its route is counted exactly once, under its final outcome,
// so the outcomes of a target add up to the route's requests (for a
// compare secondary, to the requests whose candidate copy was taken). A
// copy waiting in the queue or being sent is not counted yet:
// umbra_shadow_queue_length and umbra_shadow_in_flight show those.
const (
	// Decided on the live request path: no copy is made.
	OutcomeNotSampled     = "not_sampled"
	OutcomeNoMatch        = "skipped_no_match"
	OutcomeUnsafe         = "skipped_unsafe_method"
	OutcomeBodyTooLarge   = "skipped_body_too_large"
	OutcomeBodyIncomplete = "skipped_body_incomplete"
	OutcomeUpgrade        = "skipped_upgrade"
	OutcomeLiveAborted    = "skipped_live_aborted" // the live response was aborted half way
	OutcomeCircuitOpen    = "skipped_circuit_open" // also when the breaker opened while the copy waited
	OutcomeQueueFull      = "dropped_queue_full"
	// Decided by the target's senders for each queued copy: dropped when
	// the target closed first, else the answer (ok, status_5xx) or the
	// error of the exchange.
	OutcomeShutdown  = "dropped_shutdown"
	OutcomeOK        = "ok"
	OutcomeStatus5xx = "status_5xx"
	OutcomeError     = "error_" // + connect, timeout, reset, other, or canceled (the target closed while sending)
)

var outcomes = []string{
	OutcomeNotSampled, OutcomeNoMatch, OutcomeUnsafe, OutcomeBodyTooLarge, OutcomeBodyIncomplete,
	OutcomeUpgrade, OutcomeLiveAborted, OutcomeCircuitOpen, OutcomeQueueFull, OutcomeShutdown, OutcomeOK, OutcomeStatus5xx,
	OutcomeError + "connect", OutcomeError + "timeout", OutcomeError + "reset",
	OutcomeError + "other", OutcomeError + "canceled",
}

// Outcomes lists every outcome label value, in the order above.
func Outcomes() []string { return slices.Clone(outcomes) }

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
	outcome  map[string]prometheus.Counter // read-only after bind
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
		outcome:  make(map[string]prometheus.Counter, len(outcomes)),
		inFlight: m.inFlight.WithLabelValues(route, target),
		breaker:  m.breaker.WithLabelValues(route, target),
	}
	for _, o := range outcomes {
		b.outcome[o] = m.requests.WithLabelValues(route, target, o)
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
