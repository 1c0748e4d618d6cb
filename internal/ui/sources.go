package ui

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/adoption"
	"github.com/umbragw/umbra/internal/backend"
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/flags"
	"github.com/umbragw/umbra/internal/rollout"
)

// Sources are the registries the dashboard reads; the gateway fills them.
// Every one is read off the request path: the sampler gathers them on its
// own ticker and the pages when they are asked for.
type Sources struct {
	Metrics  prometheus.Gatherer
	Diffs    *diffs.Recorder
	Rollouts *rollout.Manager
	Adoption *adoption.Tracker       // nil: no caller tracking
	Routes   func() []Route          // the running routes
	Flags    func() *flags.Evaluator // nil result: no flags file
	Version  string
}

// Route is one running route as the dashboard shows it.
type Route struct {
	Name      string
	Endpoint  string // the route's match, as the router names it
	Backend   string
	Canary    string   // canary backend, "" for none
	Shadows   []Shadow // shadow targets
	Compare   string   // compared shadow target, "" for none
	Secondary string   // the comparison's second live instance, "" for none
	Dark      bool
	Health    []Backend // the live backend's, then the canary's
}

// Backend is one backend's endpoints with their passive health.
type Backend struct {
	Name      string
	Role      string // live or canary
	Endpoints []backend.EndpointStatus
}

// Shadow is one shadow target of a route.
type Shadow struct {
	Backend string
	Percent float64
	Unsafe  string
}
