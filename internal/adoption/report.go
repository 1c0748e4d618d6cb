package adoption

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Report is the adoption report served at GET /api/v1/adoption.
type Report struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Since is when counting started (the process start): counts are
	// not persisted.
	Since  time.Time `json:"since"`
	Window string    `json:"window"`
	// MaxCallers is the cap on callers tracked by name; CallersCapped
	// says whether some caller was counted as "other" because of it.
	MaxCallers    int  `json:"max_callers"`
	CallersCapped bool `json:"callers_capped"`
	// UnusedRoutes are the configured routes nobody called within the
	// window.
	UnusedRoutes []string      `json:"unused_routes"`
	Routes       []RouteReport `json:"routes"`
}

// RouteReport is one route's usage.
type RouteReport struct {
	Route    string     `json:"route"`
	Requests uint64     `json:"requests"`
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// Used says whether the route was called within the window.
	Used      bool             `json:"used"`
	Endpoints []EndpointReport `json:"endpoints"`
	Fields    []FieldReport    `json:"fields,omitempty"`
	// BodiesSkipped counts bodies not inspected, by reason.
	BodiesSkipped map[string]uint64 `json:"bodies_skipped,omitempty"`
}

// EndpointReport is one endpoint's callers, the busiest first.
type EndpointReport struct {
	Endpoint string        `json:"endpoint"`
	Requests uint64        `json:"requests"`
	LastSeen *time.Time    `json:"last_seen,omitempty"`
	Callers  []CallerUsage `json:"callers"`
}

// FieldReport is one adoption field's use, by caller.
type FieldReport struct {
	Name     string     `json:"name"`
	Path     string     `json:"path"`
	Requests uint64     `json:"requests"` // bodies containing the field
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// Used says whether some caller sent the field within the window;
	// a field unused for long enough can be retired.
	Used    bool          `json:"used"`
	Callers []CallerUsage `json:"callers"`
}

// CallerUsage is one caller's count.
type CallerUsage struct {
	Caller   string    `json:"caller"`
	Requests uint64    `json:"requests"`
	LastSeen time.Time `json:"last_seen"`
	// InWindow says whether the caller was seen within the window.
	InWindow bool `json:"in_window"`
}

// Report summarises usage; "within the window" means in the last window
// before now (window <= 0: since counting started). In fleet mode it is
// the fleet's: every replica's counts added up.
func (t *Tracker) Report(window time.Duration) Report {
	rep := t.localReport(window)
	if ref := t.fleet.ref.Load(); ref != nil {
		rep = merged(rep, ref.f.Peers(), window)
	}
	return rep
}

// localReport is Report of this replica's counts.
func (t *Tracker) localReport(window time.Duration) Report {
	now := t.now()
	cutoff := t.started.UnixNano() - 1
	if window > 0 {
		cutoff = now.Add(-window).UnixNano()
	}
	rep := Report{GeneratedAt: now, Since: t.started, Window: window.String(), MaxCallers: int(t.maxCallers.Load()),
		CallersCapped: t.capped.Load(), UnusedRoutes: []string{}, Routes: []RouteReport{}}
	if window <= 0 {
		rep.Window = "since start"
	}
	routes := t.routes.Load()
	if routes == nil {
		return rep
	}
	for _, rt := range *routes {
		if rt == nil {
			continue
		}
		st := rt.st
		rr := RouteReport{Route: st.name, Requests: st.reqs.Load(), LastSeen: timePtr(st.last.Load()), Endpoints: []EndpointReport{}}
		rr.Used = st.last.Load() > cutoff
		if !rr.Used {
			rep.UnusedRoutes = append(rep.UnusedRoutes, st.name)
		}
		st.mu.RLock()
		for name, ep := range st.endpoints {
			rr.Endpoints = append(rr.Endpoints, EndpointReport{Endpoint: name, Requests: ep.reqs.Load(),
				LastSeen: timePtr(ep.last.Load()), Callers: usage(&ep.mu, ep.callers, cutoff)})
		}
		for _, f := range rt.fields {
			fs := st.fields[f.name]
			if fs == nil {
				continue
			}
			fr := FieldReport{Name: f.name, Path: f.path, Requests: fs.count.Load(), LastSeen: timePtr(fs.last.Load()),
				Callers: usage(&fs.mu, fs.callers, cutoff)}
			fr.Used = fs.last.Load() > cutoff
			rr.Fields = append(rr.Fields, fr)
		}
		st.mu.RUnlock()
		if n, m := st.skipped[0].Load(), st.skipped[1].Load(); n+m > 0 {
			rr.BodiesSkipped = map[string]uint64{SkipTooLarge: n, SkipInvalid: m}
		}
		slices.SortFunc(rr.Endpoints, func(a, b EndpointReport) int { return strings.Compare(a.Endpoint, b.Endpoint) })
		rep.Routes = append(rep.Routes, rr)
	}
	return rep
}

func usage(mu *sync.RWMutex, m map[string]*cell, cutoff int64) []CallerUsage {
	mu.RLock()
	out := make([]CallerUsage, 0, len(m))
	for name, c := range m {
		last := c.last.Load()
		out = append(out, CallerUsage{Caller: name, Requests: c.n.Load(), LastSeen: time.Unix(0, last).UTC(), InWindow: last > cutoff})
	}
	mu.RUnlock()
	sortCallers(out)
	return out
}

// sortCallers orders callers busiest first, then by name.
func sortCallers(out []CallerUsage) {
	slices.SortFunc(out, func(a, b CallerUsage) int {
		if a.Requests != b.Requests {
			if a.Requests > b.Requests {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Caller, b.Caller)
	})
}

func timePtr(nanos int64) *time.Time {
	if nanos == 0 {
		return nil
	}
	t := time.Unix(0, nanos).UTC()
	return &t
}

// Handler serves the report as JSON, for GET /api/v1/adoption on the
// admin listener. The window is the query parameter "window" (a Go
// duration such as 24h or 168h; default 24h; 0 for since start).
func (t *Tracker) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"error":"use GET"}` + "\n"))
			return
		}
		window := DefaultWindow
		if s := r.URL.Query().Get("window"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "window: want a duration such as 24h or 168h"})
				return
			}
			window = d
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(t.Report(window))
	})
}

// DefaultWindow is the report window when none is asked for.
const DefaultWindow = 24 * time.Hour
