// Package proxy is umbra's request path: it matches a request against the
// running snapshot's route table and forwards it to the route's backend,
// recording metrics and access logs.
//
// Requests with a body, upgrades and Expect go through
// net/http/httputil.ReverseProxy, which implements the HTTP rules a
// gateway must keep (hop-by-hop and Connection-named headers,
// Upgrade/WebSocket, trailers, immediate flushing of SSE and chunked
// bodies, cancelling the upstream request when the client leaves).
// Bodyless requests, the bulk of API traffic, take the direct path in
// direct.go: the same rules without ReverseProxy's per-request cloning.
package proxy

import (
	"log/slog"
	"time"

	"github.com/umbragw/umbra/internal/adoption"
	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/egress"
	"github.com/umbragw/umbra/internal/flags"
	"github.com/umbragw/umbra/internal/router"
	"github.com/umbragw/umbra/internal/shadow"
	"github.com/umbragw/umbra/internal/split"
	"github.com/umbragw/umbra/internal/tracing"
)

// Snapshot is one immutable, compiled configuration. The gateway swaps whole
// snapshots atomically; a request keeps the snapshot it started with.
type Snapshot struct {
	Config *config.Config
	Table  *router.Table
	Routes []*Route // indexed by router.Route.Index
	Log    *slog.Logger
	Access bool // one access-log line per request

	// Flags evaluates the snapshot's feature flags (nil without flags:);
	// OFREP serves them to callers under its path prefix (nil when off).
	Flags *flags.Evaluator
	OFREP *flags.Handler
	// Callers names the caller of a request for adoption tracking (nil
	// without callers:).
	Callers *adoption.Identifier
	// Egress pairs live requests with their copies' outbound calls (nil
	// without egress:). It outlives snapshots.
	Egress *egress.Sandbox
	// Tracer traces requests; nil when tracing is off, and then nothing
	// but that nil check runs per request.
	Tracer *tracing.Tracer
}

// Route is the runtime form of one configured route.
type Route struct {
	Config *config.Route
	Live   *Target
	Shadow *shadow.Set // nil when the route shadows nothing

	// Canary, when set, sends a sticky share of callers to CanaryTarget.
	Canary       *split.Split
	CanaryTarget *Target
	// Observer, when set, is told the outcome of every request (the
	// rollout's analysis window).
	Observer Observer
	// Adoption counts which callers use the route and its fields.
	Adoption *adoption.Route
}

// Observer receives the outcome of each request of a route.
type Observer interface {
	Observe(canary bool, status int, elapsed time.Duration)
}
