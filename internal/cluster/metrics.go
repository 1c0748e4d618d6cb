package cluster

import "github.com/prometheus/client_golang/prometheus"

// metrics are the umbra_cluster_* series.
type metrics struct {
	up          prometheus.Gauge
	members     prometheus.Gauge
	leader      *prometheus.GaugeVec
	errors      *prometheus.CounterVec
	badValues   *prometheus.CounterVec
	resyncs     prometheus.Counter
	published   prometheus.Counter
	propagation prometheus.Histogram
	shared      *prometheus.CounterVec
	sharedBytes *prometheus.GaugeVec
	folded      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "umbra_cluster_etcd_up", Help: "1 while this replica reaches etcd and holds its lease, else 0 (rollouts hold).",
		}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "umbra_cluster_members", Help: "Replicas of the fleet with a live lease, as this replica last saw them.",
		}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "umbra_cluster_leader", Help: "1 when this replica judges the route's rollout.",
		}, []string{"route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_cluster_etcd_errors_total", Help: "Failed etcd operations by kind (session, campaign, save, publish, watch, sync, command, share).",
		}, []string{"op"}),
		badValues: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_cluster_bad_values_total", Help: "Values read from etcd that were ignored (garbage, another format version, a state that does not fit the plan), by kind.",
		}, []string{"kind"}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "umbra_cluster_resyncs_total", Help: "Full reads of the fleet's keys: at start and when a watch restarts after its revision was compacted.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "umbra_cluster_windows_published_total", Help: "Rollout windows this replica wrote to etcd.",
		}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "umbra_cluster_propagation_seconds",
			Help:    "From a leader writing a rollout state to this replica applying it (the writer's clock: meaningful when clocks agree).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		shared: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_cluster_summaries_published_total", Help: "Summaries of shared results this replica wrote to etcd, by kind (compare, adoption).",
		}, []string{"kind"}),
		sharedBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "umbra_cluster_summary_bytes", Help: "Size of the last summary of shared results this replica wrote, by kind (compare, adoption).",
		}, []string{"kind"}),
		folded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umbra_cluster_summaries_folded_total", Help: "Summaries of replicas whose lease ended that this replica kept as departed records, by kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.up, m.members, m.leader, m.errors, m.badValues, m.resyncs, m.published, m.propagation,
		m.shared, m.sharedBytes, m.folded)
	// Every series exists from the start, so rate() and alerts see the
	// first error.
	for _, op := range []string{"session", "campaign", "save", "publish", "watch", "sync", "command", "share"} {
		m.errors.WithLabelValues(op)
	}
	for _, kind := range []string{"state", "window", "member", "command", "result", "summary", "mark", "reset"} {
		m.badValues.WithLabelValues(kind)
	}
	for _, kind := range []string{"compare", "adoption"} {
		m.shared.WithLabelValues(kind)
		m.folded.WithLabelValues(kind)
		m.sharedBytes.WithLabelValues(kind)
	}
	return m
}
