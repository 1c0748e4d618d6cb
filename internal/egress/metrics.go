package egress

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var roles = []string{RoleLive, RoleCanary, RoleShadow, RoleUnknown}

var outcomes = []string{OutcomeForwarded, OutcomeReplayed, OutcomeSimulated, OutcomeDenied, OutcomeUnmatched, OutcomeBadCall,
	OutcomeError + "connect", OutcomeError + "timeout", OutcomeError + "reset", OutcomeError + "canceled",
	OutcomeError + "no_endpoint", OutcomeError + "other"}

// Metrics are the egress sandbox's metrics.
type Metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	drops     *prometheus.CounterVec
	leaked    prometheus.Counter
	noService prometheus.Counter
	// The recordings' store.
	storeErrors prometheus.Counter
	restored    *prometheus.CounterVec
	reg         prometheus.Registerer

	mu       sync.Mutex
	services map[string]*serviceMetrics
}

// serviceMetrics are one service's children, bound once.
type serviceMetrics struct {
	count   map[[2]string]prometheus.Counter // (role, outcome)
	latency map[string]prometheus.Observer   // by role
}

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg:      reg,
		services: map[string]*serviceMetrics{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_egress_requests_total",
			Help: "Outbound calls through the egress listener by service, role (live, canary, shadow, unknown) and outcome (forwarded, replayed, simulated, denied, unmatched, bad_request, error_*).",
		}, []string{"service", "role", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "umbra_egress_request_duration_seconds",
			Help:    "Time to answer an outbound call, by service and role.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"service", "role"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_egress_recordings_dropped_total",
			Help: "Live calls, or shadow copies' traces, not recorded, by role and reason (store_full, trace_full).",
		}, []string{"role", "reason"}),
		leaked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "umbra_egress_shadow_leaked_total",
			Help: "Shadow calls that reached the forwarding path (refused there). Must stay 0.",
		}),
		noService: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "umbra_egress_no_service_total",
			Help: "Calls to the egress listener that named no configured service.",
		}),
	}
	m.storeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "umbra_egress_store_errors_total",
		Help: "Failed reads and writes of recordings in the embedded store (recordings stay in memory; writes are tried again).",
	})
	m.restored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "umbra_egress_restored_total",
		Help: "Recorded live requests (role live) and shadow copies (role shadow) read from the store at start-up.",
	}, []string{"role"})
	m.restored.WithLabelValues(RoleLive)
	m.restored.WithLabelValues(RoleShadow)
	reg.MustRegister(m.requests, m.latency, m.drops, m.leaked, m.noService, m.storeErrors, m.restored)
	for _, role := range []string{RoleLive, RoleCanary} {
		for _, reason := range []string{"store_full", "trace_full"} {
			m.drops.WithLabelValues(role, reason) // exported at 0 from the start
		}
	}
	m.drops.WithLabelValues(RoleShadow, "store_full")
	return m
}

// collectTable exports the table's size when scraped.
func (m *Metrics) collectTable(t *table) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "umbra_egress_recording_bytes", Help: "Bytes of recorded calls and traces held (bounded by egress.record.max_bytes).",
	}, func() float64 { return float64(t.bytes.Load()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "umbra_egress_traces", Help: "Live requests and shadow copies whose traces the egress sandbox knows.",
	}, func() float64 { return float64(t.count.Load()) }))
}

// service returns the children of a service, binding them the first time.
func (m *Metrics) service(name string) *serviceMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sm := m.services[name]; sm != nil {
		return sm
	}
	sm := &serviceMetrics{count: map[[2]string]prometheus.Counter{}, latency: map[string]prometheus.Observer{}}
	for _, r := range roles {
		for _, o := range outcomes {
			sm.count[[2]string{r, o}] = m.requests.WithLabelValues(name, r, o)
		}
		sm.latency[r] = m.latency.WithLabelValues(name, r)
	}
	m.services[name] = sm
	return sm
}

func (sm *serviceMetrics) observe(role, outcome string, d time.Duration) {
	if c := sm.count[[2]string{role, outcome}]; c != nil {
		c.Inc()
	}
	sm.latency[role].Observe(d.Seconds())
}

func (m *Metrics) dropped(role, reason string) { m.drops.WithLabelValues(role, reason).Inc() }
