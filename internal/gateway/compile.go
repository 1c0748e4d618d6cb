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

// compile turns a validated config into a runtime snapshot. Errors are a
// config.ErrorList with positions, like the loader's. It binds no
// listener, so `umbra validate` runs it too.
func compile(cfg *config.Config, prev parts, d deps) (*compiled, error) {
	c := &compiled{
		parts:    parts{backends: map[string]*liveBackend{}, shadows: map[string]*shadow.Target{}},
		paths:    map[*metrics.Path]bool{},
		compares: map[string]*diffs.RouteSpec{},
		plans:    map[string]rollout.Plan{},
	}
	var errs config.ErrorList
	fail := func(pos config.Pos, format string, args ...any) {
		errs = append(errs, &config.Error{File: cfg.File, Line: pos.Line, Col: pos.Col, Msg: fmt.Sprintf(format, args...)})
	}
	for name, bc := range cfg.Backends {
		if old := prev.backends[name]; old != nil && sameBackend(&old.cfg, bc) {
			c.parts.backends[name] = old
			continue
		}
		b, err := backend.New(bc, backend.WithTracer(d.tracer))
		if err != nil {
			fail(bc.Pos, "backend %q: %v", name, err)
			continue
		}
		c.parts.backends[name] = &liveBackend{cfg: *bc, b: b}
	}
	for _, r := range cfg.Routes {
		if err := router.ValidateTemplate(r.Match.Path); err != nil {
			fail(r.Match.PathPos, "route %q: %v", r.Name, err)
		}
	}
	fe := c.flags(cfg, fail)
	table, err := router.CompileWith(cfg.Routes, router.Options{Flags: flags.Matcher{E: fe}})
	if err != nil && len(errs) == 0 {
		pos := config.Pos{}
		var ce *router.CompileError
		if errors.As(err, &ce) && ce.Index < len(cfg.Routes) {
			pos = cfg.Routes[ce.Index].Pos
		}
		fail(pos, "%v", err)
	}
	if len(errs) > 0 {
		c.release(prev)
		return nil, errs
	}
	ofrep, err := flags.HandlerFromConfig(fe, cfg.Flags)
	if err != nil {
		fail(cfg.Flags.Pos, "flags.ofrep: %v", err)
	}
	callers, err := adoption.NewIdentifier(cfg.Callers)
	if err != nil {
		fail(cfg.Callers.Pos, "callers: %v", err)
	}
	if len(errs) > 0 {
		c.release(prev)
		return nil, errs
	}
	logger := newLogger(cfg.Log, d.logOut)
	c.snap = &proxy.Snapshot{Config: cfg, Table: table, Log: logger, Access: cfg.Log.AccessEnabled(),
		OFREP: ofrep, Callers: callers, Tracer: d.tracer}
	if cfg.Flags != nil {
		c.snap.Flags = fe
	}
	for _, rc := range cfg.Routes {
		route, err := c.route(rc, cfg, prev, d, logger)
		if err != nil {
			fail(rc.Pos, "route %q: %v", rc.Name, err)
			continue
		}
		c.snap.Routes = append(c.snap.Routes, route)
	}
	if len(errs) > 0 {
		c.release(prev)
		return nil, errs
	}
	// From here on the compile cannot fail: the adoption tracker and the
	// flag set may commit to this config.
	_ = fe.Require(flags.Refs(cfg.Routes))
	for _, lb := range c.parts.backends {
		lb.b.SetLog(logger) // health events follow the log settings, kept backends too
	}
	d.adoption.SetMaxCallers(cfg.Callers.MaxCallers)
	for i, ar := range d.adoption.Configure(cfg.Routes) {
		c.snap.Routes[i].Adoption = ar
	}
	return c, nil
}

// flags loads the config's flag file into a new evaluator (a failed
// compile leaves the running flags alone) and checks that every flag the
// routes name exists with the variants they match on.
func (c *compiled) flags(cfg *config.Config, fail func(config.Pos, string, ...any)) *flags.Evaluator {
	fe := flags.New()
	if cfg.Flags != nil {
		if err := fe.LoadFile(cfg.Flags.File); err != nil {
			fail(cfg.Flags.Pos, "flags.file: %v", err)
			return fe
		}
	}
	var refErrs flags.RefErrors
	if err := fe.Check(flags.Refs(cfg.Routes)); errors.As(err, &refErrs) {
		for _, re := range refErrs {
			fail(cfg.Routes[re.Ref.Index].Pos, "%s", re.Msg)
		}
	} else if err != nil {
		fail(config.Pos{}, "%v", err)
	}
	return fe
}

// route builds one route's runtime: its live target and shadow targets.
func (c *compiled) route(rc *config.Route, cfg *config.Config, prev parts, d deps, logger *slog.Logger) (*proxy.Route, error) {
	live := d.metrics.Path(rc.Name, rc.Backend, metrics.RoleLive)
	c.paths[live] = true
	route := &proxy.Route{Config: rc, Live: proxy.NewTarget(c.parts.backends[rc.Backend].b, live, metrics.RoleLive, logger)}
	c.canary(route, d, logger)
	if len(rc.Shadow) == 0 {
		return route, nil
	}
	targets := make([]*shadow.Target, 0, len(rc.Shadow))
	for _, sc := range rc.Shadow {
		t, err := c.shadowTarget(rc, sc, sc.Backend, cfg, prev, d, logger)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	spec, err := c.compareSpec(rc, targets, cfg, prev, d, logger)
	if err != nil {
		return nil, err
	}
	route.Shadow = shadow.NewSet(rc, targets, spec, d.tracer)
	return route, nil
}

// canary sets up a route's canary split and, with a rollout plan, its
// controller.
func (c *compiled) canary(route *proxy.Route, d deps, logger *slog.Logger) {
	rc := route.Config
	if rc.Canary == nil {
		return
	}
	p := d.metrics.Path(rc.Name, rc.Canary.Backend, metrics.RoleCanary)
	c.paths[p] = true
	route.Canary = split.New(rc)
	route.CanaryTarget = proxy.NewTarget(c.parts.backends[rc.Canary.Backend].b, p, metrics.RoleCanary, logger)
	if rc.Rollout != nil && d.rollouts != nil {
		route.Observer = d.rollouts.Controller(rc.Name)
		c.plans[rc.Name] = rollout.Plan{Rollout: rc.Rollout, Split: route.Canary}
	}
}

// shadowTarget returns the running target for a shadow of rc to backend
// (kept from prev when unchanged) and records it in c.
func (c *compiled) shadowTarget(rc *config.Route, sc *config.Shadow, backend string, cfg *config.Config, prev parts, d deps, logger *slog.Logger) (*shadow.Target, error) {
	bc := cfg.Backends[backend]
	p := d.metrics.Path(rc.Name, backend, metrics.RoleShadow)
	c.paths[p] = true
	key := shadowKey(rc.Name, backend)
	t := prev.shadows[key]
	if t != nil && t.Same(rc.Name, sc, bc) {
		t.SetLog(logger, cfg.Log.AccessEnabled())
	} else {
		var err error
		if t, err = shadow.NewTarget(rc.Name, sc, bc, d.shadow, p, logger, cfg.Log.AccessEnabled(), d.tracer); err != nil {
			return nil, fmt.Errorf("shadow %q: %w", backend, err)
		}
	}
	c.parts.shadows[key] = t
	return t, nil
}

// compareSpec sets up a route's comparison: the comparator (its paths are
// checked here, so a bad ignore path is a config error) and the secondary,
// which is a shadow target that mirrors the candidate's copies.
func (c *compiled) compareSpec(rc *config.Route, targets []*shadow.Target, cfg *config.Config, prev parts, d deps, logger *slog.Logger) (*shadow.CompareSpec, error) {
	cc := rc.Compare
	if cc == nil {
		return nil, nil
	}
	cmp, err := compare.New(compare.Options{Ignore: cc.Ignore, UnorderedArrays: cc.UnorderedArrays,
		NumericTolerance: cc.NumericTolerance, IgnoreHeaders: cc.IgnoreHeaders})
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	spec := &shadow.CompareSpec{MaxBody: int64(cc.MaxBody), Sink: d.sink}
	var candCfg *config.Shadow
	for i, sc := range rc.Shadow {
		if sc.Backend == cc.Target {
			spec.Candidate, candCfg = targets[i], sc
		}
	}
	if cc.Secondary != "" {
		secCfg := *candCfg
		secCfg.Backend = cc.Secondary
		if spec.Secondary, err = c.shadowTarget(rc, &secCfg, cc.Secondary, cfg, prev, d, logger); err != nil {
			return nil, err
		}
	}
	c.compares[rc.Name] = &diffs.RouteSpec{Comparator: cmp, Target: cc.Target, Secondary: cc.Secondary,
		Thresholds: compare.Thresholds{Relative: cc.Thresholds.Relative, Absolute: cc.Thresholds.Absolute}}
	return spec, nil
}

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

// sameBackend compares backend configs, ignoring where they were written.
func sameBackend(a, b *config.Backend) bool {
	x, y := *a, *b
	x.Pos, y.Pos = config.Pos{}, config.Pos{}
	return reflect.DeepEqual(x, y)
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
