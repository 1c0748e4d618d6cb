package gateway

import (
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/rollout"
)

// DiffCounts snapshots a route's comparison counters (rollout.Sources).
func (g *Gateway) DiffCounts(route string) diffs.Counts { return g.diffs.Counts(route) }

// Shadow reports a route's cumulative comparison and shadow counters for
// the rollout's shadow step (rollout.Sources): answers compared, the
// regressed field that differs most beyond its noise among the
// comparisons made since base, and the compared target's sent and failed
// copies.
func (g *Gateway) Shadow(route string, base diffs.Counts) rollout.ShadowStatus {
	var s rollout.ShadowStatus
	s.Compared, _, _ = g.diffs.Since(route, nil)
	_, s.WorstField, s.WorstExcess = g.diffs.Since(route, base)
	snap := g.handler.Snapshot()
	for _, r := range snap.Routes {
		if r.Config.Name != route || r.Shadow == nil || r.Config.Compare == nil {
			continue
		}
		for _, t := range r.Shadow.Targets() {
			if t.Name == r.Config.Compare.Target {
				s.Sent, s.Failed = t.Totals()
			}
		}
	}
	return s
}
