// Package adoption counts which callers use which endpoints and which
// request fields, so an endpoint or a deprecated field (a legacy "email"
// beside the new "emails") is retired once nobody uses it.
//
// A Tracker lives as long as the process and survives config reloads:
// Configure binds one *Route per configured route, keeping the counts of
// routes whose name did not change. On the request path the proxy calls
// Route.Observe with the route's endpoint, the caller's name (Identifier)
// and, for routes with field rules only, a prefix of the JSON request
// body. Routes without field rules never read a body.
//
// Caller names are capped: the first MaxCallers distinct callers are
// tracked by name (in the report and as the caller label of the metrics);
// every later caller is counted as "other". Prometheus series must stay
// stable, so a name, once given a label, keeps it: the cap admits callers
// in order of first appearance, not by volume. Callers of an API are
// normally a known set of clients, far below the cap; the cap protects
// against a caller key that is really per user. A request without a
// caller name counts as "unknown".
//
// Counts are kept in memory since the process started (Report says
// since when); they are not persisted.
package adoption

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/jsonpath"
)

// Caller labels that are not caller names.
const (
	Other   = "other"   // callers beyond the cap, endpoints beyond maxEndpoints
	Unknown = "unknown" // requests without a caller name
)

// maxEndpoints bounds the endpoints tracked per route.
const maxEndpoints = 100

// MaxFields is the most field rules a route may have.
const MaxFields = 64

// Reasons a body was not inspected.
const (
	SkipTooLarge = "too_large"    // the body was longer than adoption.max_body
	SkipInvalid  = "invalid_json" // not a JSON document
)

// Options configure a Tracker.
type Options struct {
	// MaxCallers caps the callers tracked by name; default
	// config.DefaultConfig.Callers.MaxCallers.
	MaxCallers int
	// Registerer receives the metrics; nil for none.
	Registerer prometheus.Registerer
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

// Tracker holds the adoption counts of every route.
type Tracker struct {
	now        func() time.Time
	maxCallers atomic.Int64
	started    time.Time

	callersMu sync.RWMutex
	callers   map[string]bool // admitted caller names
	capped    atomic.Bool     // a caller was turned away by the cap

	mu     sync.Mutex
	states map[string]*routeState // by route name
	routes atomic.Pointer[[]*Route]

	requests *prometheus.CounterVec
	fields   *prometheus.CounterVec
	skipped  *prometheus.CounterVec

	fleet fleetState // fleet.go
}

// New returns an empty Tracker; call Configure with the routes.
func New(o Options) *Tracker {
	t := &Tracker{now: o.Now, callers: map[string]bool{}, states: map[string]*routeState{}, fleet: newFleetState()}
	if t.now == nil {
		t.now = time.Now
	}
	t.SetMaxCallers(o.MaxCallers)
	t.started = t.now()
	t.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "umbra_adoption_requests_total",
		Help: "Requests by route, endpoint and caller (callers beyond callers.max_callers are \"other\").",
	}, []string{"route", "endpoint", "caller"})
	t.fields = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "umbra_adoption_field_total",
		Help: "JSON request bodies containing an adoption field, by route, field and caller.",
	}, []string{"route", "field", "caller"})
	t.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "umbra_adoption_bodies_skipped_total",
		Help: "Request bodies of routes with adoption fields that were not inspected, by reason (too_large, invalid_json).",
	}, []string{"route", "reason"})
	if o.Registerer != nil {
		t.requests = register(o.Registerer, t.requests)
		t.fields = register(o.Registerer, t.fields)
		t.skipped = register(o.Registerer, t.skipped)
	}
	return t
}

// register registers c, or returns the collector already registered
// under its name (a second Tracker on the same registry shares it).
func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}

// SetMaxCallers changes the cap on callers tracked by name (0 or less:
// the default), for a config reload. Callers already admitted keep their
// names when the cap is lowered.
func (t *Tracker) SetMaxCallers(n int) {
	if n <= 0 {
		n = config.DefaultConfig.Callers.MaxCallers
	}
	t.maxCallers.Store(int64(n))
}

// Route is a route's tracking handle, bound by Configure.
type Route struct {
	t       *Tracker
	st      *routeState
	fields  []field
	maxBody int
}

type field struct {
	name, path string
	steps      []jsonpath.Step
}

// routeState is a route's counts; it outlives config reloads.
type routeState struct {
	name string
	last atomic.Int64 // unix nanos of the last request, 0 for none
	reqs atomic.Uint64

	mu        sync.RWMutex
	endpoints map[string]*endpointState
	fields    map[string]*fieldState // by field name
	skipped   [2]atomic.Uint64       // too large, invalid
}

type endpointState struct {
	mu      sync.RWMutex
	callers map[string]*cell
	reqs    atomic.Uint64
	last    atomic.Int64
}

type fieldState struct {
	mu      sync.RWMutex
	path    string
	callers map[string]*cell
	count   atomic.Uint64
	last    atomic.Int64
}

// cell counts one caller on one endpoint or field.
type cell struct {
	n    atomic.Uint64
	last atomic.Int64
	c    prometheus.Counter
}

// Configure binds the routes of a config, in config order (index i is
// routes[i]). Counts of routes that keep their name are kept; routes no
// longer configured drop out of reports.
func (t *Tracker) Configure(routes []*config.Route) []*Route {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*Route, len(routes))
	states := map[string]*routeState{}
	for i, cr := range routes {
		if cr == nil {
			continue
		}
		st := t.states[cr.Name]
		if st == nil {
			st = &routeState{name: cr.Name, endpoints: map[string]*endpointState{}, fields: map[string]*fieldState{}}
		}
		states[cr.Name] = st
		rt := &Route{t: t, st: st}
		if a := cr.Adoption; a != nil {
			rt.maxBody = int(a.MaxBody)
			if rt.maxBody <= 0 {
				rt.maxBody = int(config.DefaultAdoption.MaxBody)
			}
			for _, f := range a.Fields {
				if len(rt.fields) == MaxFields {
					break
				}
				steps, _ := config.ParseFieldPath(f.Path) // validated with the config
				if steps == nil {
					continue
				}
				rt.fields = append(rt.fields, field{name: f.Name, path: f.Path, steps: steps})
				st.mu.Lock()
				if fs := st.fields[f.Name]; fs == nil || fs.path != f.Path {
					// a new field, or one whose path changed: counts restart
					st.fields[f.Name] = &fieldState{path: f.Path, callers: map[string]*cell{}}
				}
				st.mu.Unlock()
			}
		}
		st.mu.Lock()
		for name := range st.fields {
			if !slices.ContainsFunc(rt.fields, func(f field) bool { return f.name == name }) {
				delete(st.fields, name)
			}
		}
		st.mu.Unlock()
		out[i] = rt
	}
	t.states = states
	t.routes.Store(&out)
	return out
}

// WantsBody reports whether Observe inspects request bodies for this
// route, and how many bytes of them (adoption.max_body). Routes without
// field rules want none: the proxy must not read or buffer their bodies.
func (rt *Route) WantsBody() (maxBytes int, ok bool) {
	if rt == nil || len(rt.fields) == 0 {
		return 0, false
	}
	return rt.maxBody, true
}

// Observe counts one request of caller on endpoint. body is the request
// body, or its first bytes when complete is false; pass nil when the
// route wants no body (WantsBody) or the request has no JSON body. An
// incomplete or invalid body is skipped and counted, never half-read.
// It returns the fields the body used, bit i for the route's field i
// (FieldNames names them).
func (rt *Route) Observe(endpoint, caller string, body []byte, complete bool) (found uint64) {
	if rt == nil {
		return 0
	}
	t, st := rt.t, rt.st
	now := t.now().UnixNano()
	label := t.callerLabel(caller)
	st.reqs.Add(1)
	st.last.Store(now)
	ep := st.endpoint(endpoint)
	ep.reqs.Add(1)
	ep.last.Store(now)
	ep.cell(label, func() prometheus.Counter {
		return t.requests.WithLabelValues(st.name, ep.nameFor(st, endpoint), label)
	}).hit(now)
	if len(rt.fields) == 0 || body == nil {
		return 0
	}
	if !complete || len(body) > rt.maxBody {
		st.skipped[0].Add(1)
		t.skipped.WithLabelValues(st.name, SkipTooLarge).Inc()
		return 0
	}
	found, ok := scan(body, rt.fields)
	if !ok {
		st.skipped[1].Add(1)
		t.skipped.WithLabelValues(st.name, SkipInvalid).Inc()
		return 0
	}
	if found == 0 {
		return 0
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	for i, f := range rt.fields {
		if found&(1<<i) == 0 {
			continue
		}
		fs := st.fields[f.name]
		if fs == nil {
			continue
		}
		fs.count.Add(1)
		fs.last.Store(now)
		fs.cell(label, func() prometheus.Counter {
			return t.fields.WithLabelValues(st.name, f.name, label)
		}).hit(now)
	}
	return found
}

// FieldNames names the fields whose bits are set in mask (from Observe).
func (rt *Route) FieldNames(mask uint64) []string {
	var names []string
	for i, f := range rt.fields {
		if mask&(1<<i) != 0 {
			names = append(names, f.name)
		}
	}
	return names
}

func (c *cell) hit(now int64) {
	c.n.Add(1)
	c.last.Store(now)
	c.c.Inc()
}

// callerLabel admits caller under the cap, or answers Other/Unknown.
func (t *Tracker) callerLabel(caller string) string {
	if caller == "" {
		return Unknown
	}
	if caller == Other || caller == Unknown {
		return caller
	}
	t.callersMu.RLock()
	ok := t.callers[caller]
	n := len(t.callers)
	t.callersMu.RUnlock()
	if ok {
		return caller
	}
	limit := int(t.maxCallers.Load())
	if n >= limit {
		t.capped.Store(true)
		return Other
	}
	t.callersMu.Lock()
	defer t.callersMu.Unlock()
	if t.callers[caller] {
		return caller
	}
	if len(t.callers) >= limit {
		t.capped.Store(true)
		return Other
	}
	t.callers[caller] = true
	return caller
}

// endpoint returns the state of endpoint, or of Other beyond the cap.
func (st *routeState) endpoint(name string) *endpointState {
	st.mu.RLock()
	ep := st.endpoints[name]
	st.mu.RUnlock()
	if ep != nil {
		return ep
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if ep = st.endpoints[name]; ep != nil {
		return ep
	}
	if len(st.endpoints) >= maxEndpoints {
		name = Other
		if ep = st.endpoints[name]; ep != nil {
			return ep
		}
	}
	ep = &endpointState{callers: map[string]*cell{}}
	st.endpoints[name] = ep
	return ep
}

// nameFor returns the name ep is filed under (endpoint, or Other).
func (ep *endpointState) nameFor(st *routeState, endpoint string) string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.endpoints[endpoint] == ep {
		return endpoint
	}
	return Other
}

func (ep *endpointState) cell(label string, counter func() prometheus.Counter) *cell {
	return getCell(&ep.mu, ep.callers, label, counter)
}

func (fs *fieldState) cell(label string, counter func() prometheus.Counter) *cell {
	return getCell(&fs.mu, fs.callers, label, counter)
}

func getCell(mu *sync.RWMutex, m map[string]*cell, label string, counter func() prometheus.Counter) *cell {
	mu.RLock()
	c := m[label]
	mu.RUnlock()
	if c != nil {
		return c
	}
	mu.Lock()
	defer mu.Unlock()
	if c = m[label]; c == nil {
		c = &cell{c: counter()}
		m[label] = c
	}
	return c
}
