package gateway

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"

	"github.com/umbragw/umbra/internal/adoption"
	"github.com/umbragw/umbra/internal/backend"
	"github.com/umbragw/umbra/internal/compare"
	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/flags"
	"github.com/umbragw/umbra/internal/metrics"
	"github.com/umbragw/umbra/internal/proxy"
	"github.com/umbragw/umbra/internal/rollout"
	"github.com/umbragw/umbra/internal/router"
	"github.com/umbragw/umbra/internal/shadow"
	"github.com/umbragw/umbra/internal/split"
	"github.com/umbragw/umbra/internal/tracing"
)

// liveBackend is a running backend and the config it was built from.
type liveBackend struct {
	cfg config.Backend
	b   *backend.Backend
}

// parts are the long-lived pieces a snapshot uses. A reload keeps every
// piece whose config did not change, so connection pools, health state,
// shadow queues and breakers survive it.
type parts struct {
	backends map[string]*liveBackend
	shadows  map[string]*shadow.Target // by shadowKey
}

func shadowKey(route, backend string) string { return route + "\x00" + backend }

// compiled is the product of compiling one config.
type compiled struct {
	snap     *proxy.Snapshot
	parts    parts
	paths    map[*metrics.Path]bool
	compares map[string]*diffs.RouteSpec
	plans    map[string]rollout.Plan
}

// deps are what compile needs besides the config.
type deps struct {
	metrics *metrics.Metrics
	shadow  *shadow.Metrics
	logOut  io.Writer
	sink    shadow.Sink // where compared exchanges go
	// rollouts gives routes with a rollout plan their controller; nil when
	// only validating.
	rollouts *rollout.Manager
	// adoption counts callers per route; it lives across reloads.
	adoption *adoption.Tracker
	// tracer makes the request path's spans; nil when tracing is off. It
	// is built at start-up only: backends and shadow targets kept across
	// reloads hold it.
	tracer *tracing.Tracer
}

// compiler turns one validated config into a runtime snapshot. It holds
// what every step needs, so each step takes only what it works on.
type compiler struct {
	cfg  *config.Config
	prev parts // the running snapshot's pieces, kept when unchanged
	d    deps
	log  *slog.Logger
	out  *compiled
	errs config.ErrorList
}

// fail records a problem with the value at path (config.Config.ErrorAt).
func (c *compiler) fail(path []any, format string, args ...any) {
	c.errs = append(c.errs, c.cfg.ErrorAt(path, format, args...))
}

// compile turns a validated config into a runtime snapshot. Errors are a
// config.ErrorList with positions, like the loader's. It binds no
// listener, so `umbra validate` runs it too.
func compile(cfg *config.Config, prev parts, d deps) (*compiled, error) {
	c := &compiler{cfg: cfg, prev: prev, d: d, out: &compiled{
		parts:    parts{backends: map[string]*liveBackend{}, shadows: map[string]*shadow.Target{}},
		paths:    map[*metrics.Path]bool{},
		compares: map[string]*diffs.RouteSpec{},
		plans:    map[string]rollout.Plan{},
	}}
	if err := c.compile(); err != nil {
		c.out.release(prev)
		return nil, err
	}
	return c.out, nil
}

func (c *compiler) compile() error {
	cfg, out := c.cfg, c.out
	c.backends()
	for i, r := range cfg.Routes {
		if err := router.ValidateTemplate(r.Match.Path); err != nil {
			c.fail(at("routes", i, "match", "path"), "route %q: %v", r.Name, err)
		}
	}
	fe := c.flags()
	table, err := router.CompileWith(cfg.Routes, router.Options{Flags: flags.Matcher{E: fe}})
	if err != nil && len(c.errs) == 0 {
		var path []any
		var ce *router.CompileError
		if errors.As(err, &ce) && ce.Index < len(cfg.Routes) {
			path = at("routes", ce.Index)
		}
		c.fail(path, "%v", err)
	}
	if len(c.errs) > 0 {
		return c.errs
	}
	ofrep, err := flags.HandlerFromConfig(fe, cfg.Flags)
	if err != nil {
		c.fail(at("flags"), "flags.ofrep: %v", err)
	}
	callers, err := adoption.NewIdentifier(cfg.Callers)
	if err != nil {
		c.fail(at("callers"), "callers: %v", err)
	}
	if len(c.errs) > 0 {
		return c.errs
	}
	c.log = newLogger(cfg.Log, c.d.logOut)
	out.snap = &proxy.Snapshot{Config: cfg, Table: table, Log: c.log, Access: cfg.Log.AccessEnabled(),
		OFREP: ofrep, Callers: callers, Tracer: c.d.tracer}
	if cfg.Flags != nil {
		out.snap.Flags = fe
	}
	for i, rc := range cfg.Routes {
		route, err := c.route(rc)
		if err != nil {
			c.fail(at("routes", i), "route %q: %v", rc.Name, err)
			continue
		}
		out.snap.Routes = append(out.snap.Routes, route)
	}
	if len(c.errs) > 0 {
		return c.errs
	}
	// From here on the compile cannot fail: the adoption tracker and the
	// flag set may commit to this config.
	_ = fe.Require(flags.Refs(cfg.Routes))
	for _, lb := range out.parts.backends {
		lb.b.SetLog(c.log) // health events follow the log settings, kept backends too
	}
	c.d.adoption.SetMaxCallers(cfg.Callers.MaxCallers)
	for i, ar := range c.d.adoption.Configure(cfg.Routes) {
		out.snap.Routes[i].Adoption = ar
	}
	return nil
}

// backends builds the backends whose config changed and keeps the others.
func (c *compiler) backends() {
	for name, bc := range c.cfg.Backends {
		if old := c.prev.backends[name]; old != nil && reflect.DeepEqual(&old.cfg, bc) {
			c.out.parts.backends[name] = old
			continue
		}
		b, err := backend.New(bc, backend.WithTracer(c.d.tracer))
		if err != nil {
			c.fail(at("backends", name), "backend %q: %v", name, err)
			continue
		}
		c.out.parts.backends[name] = &liveBackend{cfg: *bc, b: b}
	}
}

// flags loads the config's flag file into a new evaluator (a failed
// compile leaves the running flags alone) and checks that every flag the
// routes name exists with the variants they match on.
func (c *compiler) flags() *flags.Evaluator {
	fe := flags.New()
	if f := c.cfg.Flags; f != nil {
		if err := fe.LoadFile(f.File); err != nil {
			c.fail(at("flags"), "flags.file: %v", err)
			return fe
		}
	}
	var refErrs flags.RefErrors
	if err := fe.Check(flags.Refs(c.cfg.Routes)); errors.As(err, &refErrs) {
		for _, re := range refErrs {
			c.fail(at("routes", re.Ref.Index), "%s", re.Msg)
		}
	} else if err != nil {
		c.fail(nil, "%v", err)
	}
	return fe
}

// route builds one route's runtime: its live target and shadow targets.
func (c *compiler) route(rc *config.Route) (*proxy.Route, error) {
	live := c.path(rc.Name, rc.Backend, metrics.RoleLive)
	route := &proxy.Route{Config: rc, Live: proxy.NewTarget(c.out.parts.backends[rc.Backend].b, live, metrics.RoleLive, c.log)}
	c.canary(route)
	if len(rc.Shadow) == 0 {
		return route, nil
	}
	targets := make([]*shadow.Target, 0, len(rc.Shadow))
	for _, sc := range rc.Shadow {
		t, err := c.shadowTarget(rc.Name, sc)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	spec, err := c.compareSpec(rc, targets)
	if err != nil {
		return nil, err
	}
	route.Shadow = shadow.NewSet(rc, targets, spec, c.d.tracer)
	return route, nil
}

// path binds the metrics of one (route, backend, role) and records them
// as in use, so a reload forgets only the series of paths that are gone.
func (c *compiler) path(route, backend string, role string) *metrics.Path {
	p := c.d.metrics.Path(route, backend, role)
	c.out.paths[p] = true
	return p
}

// canary sets up a route's canary split and, with a rollout plan, its
// controller.
func (c *compiler) canary(route *proxy.Route) {
	rc := route.Config
	if rc.Canary == nil {
		return
	}
	p := c.path(rc.Name, rc.Canary.Backend, metrics.RoleCanary)
	route.Canary = split.New(rc)
	route.CanaryTarget = proxy.NewTarget(c.out.parts.backends[rc.Canary.Backend].b, p, metrics.RoleCanary, c.log)
	if rc.Rollout != nil && c.d.rollouts != nil {
		route.Observer = c.d.rollouts.Controller(rc.Name)
		c.out.plans[rc.Name] = rollout.Plan{Rollout: rc.Rollout, Split: route.Canary}
	}
}

// shadowTarget returns the running target for the shadow sc of route
// (kept from the running snapshot when unchanged) and records it.
func (c *compiler) shadowTarget(route string, sc *config.Shadow) (*shadow.Target, error) {
	bc := c.cfg.Backends[sc.Backend]
	p := c.path(route, sc.Backend, metrics.RoleShadow)
	key := shadowKey(route, sc.Backend)
	access := c.cfg.Log.AccessEnabled()
	t := c.prev.shadows[key]
	if t != nil && t.Same(route, sc, bc) {
		t.SetLog(c.log, access)
	} else {
		var err error
		if t, err = shadow.NewTarget(route, sc, bc, c.d.shadow, p, c.log, access, c.d.tracer); err != nil {
			return nil, fmt.Errorf("shadow %q: %w", sc.Backend, err)
		}
	}
	c.out.parts.shadows[key] = t
	return t, nil
}

// compareSpec sets up a route's comparison: the comparator (its paths are
// checked here, so a bad ignore path is a config error) and the secondary,
// which is a shadow target that mirrors the candidate's copies.
func (c *compiler) compareSpec(rc *config.Route, targets []*shadow.Target) (*shadow.CompareSpec, error) {
	cc := rc.Compare
	if cc == nil {
		return nil, nil
	}
	cmp, err := compare.New(compare.Options{Ignore: cc.Ignore, UnorderedArrays: cc.UnorderedArrays,
		NumericTolerance: cc.NumericTolerance, IgnoreHeaders: cc.IgnoreHeaders})
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	spec := &shadow.CompareSpec{MaxBody: int64(cc.MaxBody), Sink: c.d.sink}
	var candCfg *config.Shadow
	for i, sc := range rc.Shadow {
		if sc.Backend == cc.Target {
			spec.Candidate, candCfg = targets[i], sc
		}
	}
	if cc.Secondary != "" {
		secCfg := *candCfg
		secCfg.Backend = cc.Secondary
		if spec.Secondary, err = c.shadowTarget(rc.Name, &secCfg); err != nil {
			return nil, err
		}
	}
	c.out.compares[rc.Name] = &diffs.RouteSpec{Comparator: cmp, Target: cc.Target, Secondary: cc.Secondary,
		Thresholds: compare.Thresholds{Relative: cc.Thresholds.Relative, Absolute: cc.Thresholds.Absolute}}
	return spec, nil
}

// at builds a config path for config.Config.ErrorAt.
func at(path ...any) []any { return path }

// release stops what a failed compile created, keeping what prev owns.
func (c *compiled) release(prev parts) {
	retireParts(c.parts, prev)
}

// retireParts stops every piece of old that is not in keep.
func retireParts(old, keep parts) {
	for name, lb := range old.backends {
		if keep.backends[name] != lb {
			lb.b.Close()
		}
	}
	for key, t := range old.shadows {
		if keep.shadows[key] != t {
			go t.Close() // waits for its senders; never hold a reload for that
		}
	}
}

func newLogger(c config.Log, out io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}
