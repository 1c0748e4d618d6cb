package gateway

import (
	"github.com/umbragw/umbra/internal/rollout"
)

// Shadow reports a route's cumulative comparison and shadow counters for
// the rollout's shadow step (rollout.Sources): answers compared, the
// regressed field that differs most beyond its noise, and the compared
// target's sent and failed copies.
func (g *Gateway) Shadow(route string) rollout.ShadowStatus {
	var s rollout.ShadowStatus
	for _, rr := range g.diffs.Report(route).Routes {
		for _, e := range rr.Endpoints {
			s.Compared += e.Compared
			for _, f := range e.Regressions {
				if excess := f.RawRate - f.NoiseRate; excess > s.WorstExcess {
					s.WorstExcess, s.WorstField = excess, e.Endpoint+" "+f.Field
				}
			}
		}
	}
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
