package rollout

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the rollout metrics.
type Metrics struct {
	step, weight *prometheus.GaugeVec
	phase        *prometheus.GaugeVec
	decisions    *prometheus.CounterVec
}

var phases = []Phase{Idle, Running, Paused, Promoted, RolledBack, Aborted, Held}

// NewMetrics registers the rollout metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		step: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "umbra_rollout_step", Help: "Current rollout step of a route (1-based; 0 when idle).",
		}, []string{"route"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "umbra_rollout_weight_percent", Help: "Share of callers sent to the canary.",
		}, []string{"route"}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "umbra_rollout_phase", Help: "1 for the rollout's current phase.",
		}, []string{"route", "phase"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_rollout_decisions_total", Help: "Rollout decisions by action (start, hold, promote, rollback, pause, resume, abort, complete, held).",
		}, []string{"route", "action"}),
	}
	reg.MustRegister(m.step, m.weight, m.phase, m.decisions)
	return m
}

func (m *Metrics) set(route string, st State) {
	step := 0.0
	if st.Phase != Idle {
		step = float64(st.Step + 1)
	}
	m.step.WithLabelValues(route).Set(step)
	m.weight.WithLabelValues(route).Set(st.Weight)
	for _, p := range phases {
		v := 0.0
		if p == st.Phase {
			v = 1
		}
		m.phase.WithLabelValues(route, string(p)).Set(v)
	}
}

func (m *Metrics) decided(route string, action Action, st State) {
	m.decisions.WithLabelValues(route, string(action)).Inc()
	m.set(route, st)
}

func (m *Metrics) forget(route string) {
	l := prometheus.Labels{"route": route}
	m.step.DeletePartialMatch(l)
	m.weight.DeletePartialMatch(l)
	m.phase.DeletePartialMatch(l)
	m.decisions.DeletePartialMatch(l)
}
