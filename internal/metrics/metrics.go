// Package metrics holds umbra's Prometheus metrics. Label children are bound
// once per (route, backend, role) and per (method, code) the first time they
// occur, so the request path does a map read and an atomic add, never a
// label lookup or a channel send (Traefik's per-observation channel halved
// its throughput).
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/umbragw/umbra/internal/backend"
	"github.com/umbragw/umbra/internal/buildinfo"
)

// Roles of a request path.
const (
	RoleLive   = "live"
	RoleShadow = "shadow"
	RoleCanary = "canary"
)

// methods is the allow-list for the method label; anything else is OTHER,
// so a client cannot blow up cardinality with invented methods.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

const methodOther = len(methods)

// LatencyBuckets cover 0.5 ms to 30 s; gateway latency lives at the low end.
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics is the set of umbra metrics on one registry.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	upstream   *prometheus.CounterVec
	inFlight   *prometheus.GaugeVec
	unmatched  *prometheus.CounterVec
	reloads    *prometheus.CounterVec
	lastReload prometheus.Gauge
	reloadOK   prometheus.Gauge
	flagLoads  *prometheus.CounterVec
	flagsOK    prometheus.Gauge
	routes     prometheus.Gauge

	mu    sync.Mutex
	paths map[pathKey]*Path
}

type pathKey struct{ route, backend, role string }

// New creates the metrics on a fresh registry with Go and process collectors.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), paths: map[pathKey]*Path{}}
	pathLabels := []string{"route", "backend", "role"}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "umbra_requests_total", Help: "Requests proxied, by route, backend, role, method and status code.",
	}, append(pathLabels, "method", "code"))
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "umbra_request_duration_seconds", Help: "Time from receiving a request to the end of its response.",
		Buckets: LatencyBuckets,
	}, pathLabels)
	m.upstream = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "umbra_upstream_errors_total", Help: "Upstream failures by kind (connect, timeout, reset, no_endpoint, canceled, other).",
	}, append(pathLabels, "kind"))
	m.inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "umbra_requests_in_flight", Help: "Requests being proxied now.",
	}, pathLabels)
	m.unmatched = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "umbra_unmatched_requests_total", Help: "Requests no route matched (answered 404).",
	}, []string{"method"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "umbra_config_reloads_total", Help: "Configuration reloads by result (success, failure).",
	}, []string{"result"})
	m.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "umbra_config_last_reload_success_timestamp_seconds", Help: "When the running configuration was applied.",
	})
	// The *_last_reload_successful gauges are what alerts watch (as
	// Prometheus's own prometheus_config_last_reload_successful): they stay
	// 0 while the file on disk is rejected and the gateway runs an older
	// config, and clear with the next good reload.
	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "umbra_config_last_reload_successful", Help: "1 if the last configuration load or reload was applied, 0 if it was rejected.",
	})
	m.flagLoads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "umbra_flags_reloads_total", Help: "Reloads of the flag file after an edit, by result (success, failure).",
	}, []string{"result"})
	m.flagsOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "umbra_flags_last_reload_successful", Help: "1 if the last reload of the flag file was applied (or none happened yet), 0 if it was rejected.",
	})
	m.routes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "umbra_config_routes", Help: "Routes in the running configuration.",
	})
	bi := buildinfo.Read(version)
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "umbra_build_info", Help: "Build information (version, VCS revision, Go version); always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": bi.RevisionLabel(), "goversion": bi.GoVersion},
	})
	build.Set(1)
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
		m.flagLoads.WithLabelValues(r)
	}
	m.flagsOK.Set(1)
	m.reg.MustRegister(m.requests, m.duration, m.upstream, m.inFlight, m.unmatched,
		m.reloads, m.lastReload, m.reloadOK, m.routes, m.flagLoads, m.flagsOK, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry lets other packages (shadow, compare, ...) register their metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Reloaded records a configuration load or reload and, on success, the
// route count.
func (m *Metrics) Reloaded(ok bool, routes int) {
	if !ok {
		m.reloads.WithLabelValues("failure").Inc()
		m.reloadOK.Set(0)
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.reloadOK.Set(1)
	m.flagsOK.Set(1) // an applied config read its flag file afresh
	m.lastReload.SetToCurrentTime()
	m.routes.Set(float64(routes))
}

// FlagsReloaded records an attempt to reload the flag file after an event
// in its directory: a failure, a change applied, or the file found as it
// runs (no count, but it clears an earlier failure).
func (m *Metrics) FlagsReloaded(changed bool, err error) {
	switch {
	case err != nil:
		m.flagLoads.WithLabelValues("failure").Inc()
		m.flagsOK.Set(0)
	case changed:
		m.flagLoads.WithLabelValues("success").Inc()
		m.flagsOK.Set(1)
	default:
		m.flagsOK.Set(1)
	}
}

// Unmatched counts a request that no route matched.
func (m *Metrics) Unmatched(method string) {
	m.unmatched.WithLabelValues(methodName(methodIndex(method))).Inc()
}

// Path returns the bound metrics of one (route, backend, role). Paths are
// kept across reloads so counters continue; Forget drops removed routes.
func (m *Metrics) Path(route, backendName, role string) *Path {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := pathKey{route, backendName, role}
	if p := m.paths[k]; p != nil {
		return p
	}
	p := &Path{m: m, key: k,
		duration: m.duration.WithLabelValues(route, backendName, role),
		inFlight: m.inFlight.WithLabelValues(route, backendName, role),
	}
	for kind := range backend.NumErrorKinds {
		p.errs[kind] = m.upstream.WithLabelValues(route, backendName, role, kind.String())
	}
	p.codes.Store(&codeTable{})
	m.paths[k] = p
	return p
}

// Forget deletes every series of paths not in keep (routes removed or
// re-pointed by a reload), so dashboards do not show ghosts.
func (m *Metrics) Forget(keep map[*Path]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, p := range m.paths {
		if keep[p] {
			continue
		}
		delete(m.paths, k)
		l := prometheus.Labels{"route": k.route, "backend": k.backend, "role": k.role}
		m.requests.DeletePartialMatch(l)
		m.duration.DeletePartialMatch(l)
		m.upstream.DeletePartialMatch(l)
		m.inFlight.DeletePartialMatch(l)
	}
}

// Path is the bound metrics of one (route, backend, role).
type Path struct {
	m        *Metrics
	key      pathKey
	duration prometheus.Observer
	inFlight prometheus.Gauge
	errs     [backend.NumErrorKinds]prometheus.Counter

	mu    sync.Mutex // serialises writers of codes
	codes atomic.Pointer[codeTable]
}

// codeTable is copied on write: readers never lock.
type codeTable struct{ m map[uint32]prometheus.Counter }

// Start marks a request in flight; call Done when its response ends.
func (p *Path) Start() { p.inFlight.Inc() }

// Done records one finished request.
func (p *Path) Done(method string, code int, elapsed time.Duration) {
	p.inFlight.Dec()
	p.duration.Observe(elapsed.Seconds())
	p.counter(methodIndex(method), code).Inc()
}

// Failed ends an in-flight request that got no response at all.
func (p *Path) Failed(kind backend.ErrorKind) {
	p.inFlight.Dec()
	p.UpstreamError(kind)
}

// UpstreamError counts one upstream failure of the given kind.
func (p *Path) UpstreamError(kind backend.ErrorKind) { p.errs[kind].Inc() }

func (p *Path) counter(method, code int) prometheus.Counter {
	key := uint32(method)<<16 | uint32(code&0xffff)
	if c, ok := p.codes.Load().m[key]; ok {
		return c
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.codes.Load()
	if c, ok := old.m[key]; ok {
		return c
	}
	next := &codeTable{m: make(map[uint32]prometheus.Counter, len(old.m)+1)}
	for k, v := range old.m {
		next.m[k] = v
	}
	c := p.m.requests.WithLabelValues(p.key.route, p.key.backend, p.key.role, methodName(method), strconv.Itoa(code))
	next.m[key] = c
	p.codes.Store(next)
	return c
}

func methodIndex(method string) int {
	for i, m := range methods {
		if m == method {
			return i
		}
	}
	return methodOther
}

func methodName(i int) string {
	if i < len(methods) {
		return methods[i]
	}
	return "OTHER"
}

// MethodLabel maps a request method to its label value: itself when it is
// on the allow-list, OTHER otherwise, so invented methods cannot create
// series.
func MethodLabel(method string) string { return methodName(methodIndex(method)) }
