package gateway

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/umbragw/umbra/internal/admin"
	"github.com/umbragw/umbra/internal/flags"
	"github.com/umbragw/umbra/internal/ui"
)

// startDashboard serves the web dashboard at /ui/ on the admin listener
// and starts its sampler, which reads the registries on its own ticker
// (nothing on the request path). Shutdown stops it.
func (g *Gateway) startDashboard() {
	g.dashboard = ui.New(ui.Sources{
		Metrics:  g.metrics.Registry(),
		Diffs:    g.diffs,
		Rollouts: g.rollouts,
		Adoption: g.deps.adoption,
		Routes:   g.dashboardRoutes,
		Flags:    func() *flags.Evaluator { return g.handler.Snapshot().Flags },
		Version:  g.opts.Version,
	}, g.opts.Dashboard)
	g.dashboard.Register(g.admin)
	ctx, cancel := context.WithCancel(context.Background())
	g.stopDashboard = cancel
	go g.dashboard.Run(ctx)
}

// Dashboard is the web dashboard (for tests).
func (g *Gateway) Dashboard() *ui.Dashboard { return g.dashboard }

// dashboardRoutes lists the running routes with their backends' health.
func (g *Gateway) dashboardRoutes() []ui.Route {
	snap := g.handler.Snapshot()
	table := snap.Table.Routes()
	out := make([]ui.Route, 0, len(snap.Routes))
	for i, r := range snap.Routes {
		c := r.Config
		v := ui.Route{Name: c.Name, Backend: c.Backend, Dark: c.Dark,
			Health: []ui.Backend{{Name: c.Backend, Role: "live", Endpoints: r.Live.Backend.Status()}}}
		if i < len(table) {
			v.Endpoint = table[i].Endpoint
		}
		if c.Canary != nil && r.CanaryTarget != nil {
			v.Canary = c.Canary.Backend
			v.Health = append(v.Health, ui.Backend{Name: c.Canary.Backend, Role: "canary", Endpoints: r.CanaryTarget.Backend.Status()})
		}
		for _, s := range c.Shadow {
			v.Shadows = append(v.Shadows, ui.Shadow{Backend: s.Backend, Percent: float64(s.Percent), Unsafe: s.Unsafe})
		}
		if c.Compare != nil {
			v.Compare, v.Secondary = c.Compare.Target, c.Compare.Secondary
		}
		out = append(out, v)
	}
	return out
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
