package gateway

// The admin API views and handlers the gateway itself serves: the running
// config and routes, and the flags endpoints.

import (
	"encoding/json"
	"net/http"

	"github.com/umbragw/umbra/internal/admin"
	"github.com/umbragw/umbra/internal/config"
)

// RouteInfo is one route as the admin API shows it.
type RouteInfo struct {
	Name     string       `json:"name"`
	Endpoint string       `json:"endpoint"`
	Match    config.Match `json:"match"`
	Backend  string       `json:"backend"`
	Health   any          `json:"backend_endpoints"`
	Shadow   []ShadowInfo `json:"shadow,omitempty"`
}

// ShadowInfo is one shadow target as the admin API shows it.
type ShadowInfo struct {
	Backend string  `json:"backend"`
	Percent float64 `json:"percent"`
	Unsafe  string  `json:"unsafe"`
}

// Routes lists the running routes (admin.Source).
func (g *Gateway) Routes() any {
	snap := g.handler.Snapshot()
	out := make([]RouteInfo, 0, len(snap.Routes))
	for i, r := range snap.Routes {
		info := RouteInfo{Name: r.Config.Name, Match: r.Config.Match, Backend: r.Config.Backend,
			Health: r.Live.Backend.Status()}
		if rs := snap.Table.Routes(); i < len(rs) {
			info.Endpoint = rs[i].Endpoint
		}
		for _, s := range r.Config.Shadow {
			info.Shadow = append(info.Shadow, ShadowInfo{Backend: s.Backend, Percent: float64(s.Percent), Unsafe: s.Unsafe})
		}
		out = append(out, info)
	}
	return out
}

// Config returns the running configuration (admin.Source).
func (g *Gateway) Config() any { return g.handler.Snapshot().Config }

// flagsAdmin lists the running flags (GET /api/v1/flags).
func (g *Gateway) flagsAdmin(w http.ResponseWriter, r *http.Request) {
	snap := g.handler.Snapshot()
	if snap.Flags == nil {
		admin.WriteError(w, http.StatusNotFound, "not_found", "no flags.file is configured")
		return
	}
	snap.Flags.AdminHandler().ServeHTTP(w, r)
}

// flagsEvaluate evaluates every flag for a context
// (POST /api/v1/flags/evaluate), as OFREP's bulk evaluation does on the
// main listener, for operators on the admin listener.
func (g *Gateway) flagsEvaluate(w http.ResponseWriter, r *http.Request) {
	snap := g.handler.Snapshot()
	if snap.Flags == nil {
		admin.WriteError(w, http.StatusNotFound, "not_found", "no flags.file is configured")
		return
	}
	var body struct {
		Context map[string]any `json:"context"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		admin.WriteError(w, http.StatusBadRequest, "bad_request", `want {"context": {"targetingKey": "alice", ...}}: `+err.Error())
		return
	}
	if body.Context == nil {
		body.Context = map[string]any{}
	}
	results, metadata := snap.Flags.EvaluateAll(body.Context)
	out := map[string]any{"flags": results}
	if len(metadata) > 0 {
		out["metadata"] = metadata
	}
	admin.WriteJSON(w, http.StatusOK, out)
}
