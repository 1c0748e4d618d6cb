package gateway

import (
	"context"

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
