package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"

	"github.com/umbragw/umbra/internal/backend"
	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/metrics"
	"github.com/umbragw/umbra/internal/proxy"
	"github.com/umbragw/umbra/internal/router"
)

// liveBackend is a running backend and the config it was built from, so a
// reload that leaves a backend unchanged keeps its connection pool and
// health state.
type liveBackend struct {
	cfg config.Backend
	b   *backend.Backend
}

// compiled is the product of compiling one config.
type compiled struct {
	snap     *proxy.Snapshot
	backends map[string]*liveBackend
	paths    map[*metrics.Path]bool
}

// compile turns a validated config into a runtime snapshot. Errors are
// config.ErrorList with positions, like the loader's. It creates no
// listeners and starts nothing, so `umbra validate` uses it too.
func compile(cfg *config.Config, prev map[string]*liveBackend, m *metrics.Metrics, logOut io.Writer) (*compiled, error) {
	var errs config.ErrorList
	fail := func(pos config.Pos, format string, args ...any) {
		errs = append(errs, &config.Error{File: cfg.File, Line: pos.Line, Col: pos.Col, Msg: fmt.Sprintf(format, args...)})
	}
	backends := make(map[string]*liveBackend, len(cfg.Backends))
	for name, bc := range cfg.Backends {
		if old := prev[name]; old != nil && sameBackend(&old.cfg, bc) {
			backends[name] = old
			continue
		}
		b, err := backend.New(bc)
		if err != nil {
			fail(bc.Pos, "backend %q: %v", name, err)
			continue
		}
		backends[name] = &liveBackend{cfg: *bc, b: b}
	}
	for _, r := range cfg.Routes {
		if err := router.ValidateTemplate(r.Match.Path); err != nil {
			fail(r.Match.PathPos, "route %q: %v", r.Name, err)
		}
	}
	table, err := router.Compile(cfg.Routes)
	if err != nil && len(errs) == 0 {
		fail(config.Pos{}, "%v", err)
	}
	if len(errs) > 0 {
		closeNew(backends, prev)
		return nil, errs
	}
	logger := newLogger(cfg.Log, logOut)
	c := &compiled{backends: backends, paths: map[*metrics.Path]bool{}}
	c.snap = &proxy.Snapshot{Config: cfg, Table: table, Log: logger, Access: cfg.Log.AccessEnabled()}
	for _, rc := range cfg.Routes {
		b := backends[rc.Backend].b
		p := m.Path(rc.Name, rc.Backend, metrics.RoleLive)
		c.paths[p] = true
		c.snap.Routes = append(c.snap.Routes, &proxy.Route{
			Config: rc,
			Live:   proxy.NewTarget(b, p, metrics.RoleLive, logger),
		})
	}
	return c, nil
}

// sameBackend compares backend configs, ignoring where they were written.
func sameBackend(a, b *config.Backend) bool {
	x, y := *a, *b
	x.Pos, y.Pos = config.Pos{}, config.Pos{}
	return reflect.DeepEqual(x, y)
}

// closeNew releases backends created by a compile that failed.
func closeNew(built, prev map[string]*liveBackend) {
	for name, lb := range built {
		if prev[name] != lb {
			lb.b.Close()
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
