// Package gateway assembles umbra: it compiles configs into snapshots,
// owns the listeners, applies reloads atomically and drains on shutdown.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/admin"
	"github.com/umbragw/umbra/internal/adoption"
	"github.com/umbragw/umbra/internal/cluster"
	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/egress"
	"github.com/umbragw/umbra/internal/h1server"
	"github.com/umbragw/umbra/internal/metrics"
	"github.com/umbragw/umbra/internal/proxy"
	"github.com/umbragw/umbra/internal/rollout"
	"github.com/umbragw/umbra/internal/shadow"
	"github.com/umbragw/umbra/internal/store"
	"github.com/umbragw/umbra/internal/tracing"
	"github.com/umbragw/umbra/internal/ui"
)

// Options are the parts of a gateway that do not come from the config.
type Options struct {
	Version   string
	LogOutput io.Writer // default os.Stderr
	// Dashboard sizes the web dashboard's history (zero: defaults).
	Dashboard ui.Options
}

// Gateway is a running umbra instance.
type Gateway struct {
	opts     Options
	deps     deps
	metrics  *metrics.Metrics
	handler  *proxy.Handler
	admin    *admin.Server
	store    *store.Store
	diffs    *diffs.Recorder
	rollouts *rollout.Manager
	// storeRecovered counts damaged store files moved aside.
	storeRecovered prometheus.Counter
	egress         *egress.Sandbox // nil without egress:
	tracer         *tracing.Tracer // nil when tracing is off

	egressSrv *h1server.Server
	egressLn  net.Listener
	// dashboard is the web UI at /ui/; stopDashboard ends its sampler.
	dashboard     *ui.Dashboard
	stopDashboard context.CancelFunc
	cluster       *cluster.Node // nil without a cluster block

	mu    sync.Mutex // serialises reloads
	parts parts      // what the running snapshot uses
	ready atomic.Bool

	main          server
	adminSrv      *http.Server
	mainLn, admLn net.Listener
	flagWatch     context.CancelFunc // stops the running flag file watch
	// cancelConns ends the requests of the main server; Shutdown uses it
	// for upgraded connections still open when the grace period ends.
	cancelConns context.CancelFunc
}

// Validate compiles cfg without starting anything, for `umbra validate`.
func Validate(cfg *config.Config) error {
	_, err := Check(cfg)
	return err
}

// Check is Validate that also returns the warnings of a config that
// compiles: those of its flag file (what flagd loads and only logs).
func Check(cfg *config.Config) (warnings []string, err error) {
	m := metrics.New("validate")
	c, err := compile(cfg, parts{}, deps{metrics: m, shadow: shadow.NewMetrics(m.Registry()), logOut: io.Discard,
		sink: func(*shadow.Exchange) {}, adoption: adoption.New(adoption.Options{Registerer: m.Registry()})})
	if err != nil {
		return nil, err
	}
	c.release(parts{})
	if cfg.Egress != nil {
		var errs config.ErrorList
		for _, sc := range cfg.Egress.Services {
			if eerr := egress.ValidateService(sc); eerr != nil {
				errs = append(errs, cfg.ErrorAt(at("egress", "services", sc.Name), "%v", eerr))
			}
		}
		if len(errs) > 0 {
			return nil, errs
		}
	}
	if c.snap.Flags != nil {
		warnings = c.snap.Flags.Info().Warnings
	}
	return warnings, nil
}

// New compiles the first snapshot. Nothing listens until Start.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.LogOutput == nil {
		opts.LogOutput = os.Stderr
	}
	g := &Gateway{opts: opts, metrics: metrics.New(opts.Version)}
	g.storeRecovered = prometheus.NewCounter(prometheus.CounterOpts{Name: "umbra_store_recovered_total",
		Help: "Damaged or empty store files moved aside at start-up for an empty store (store.on_corruption: recover)."})
	g.metrics.Registry().MustRegister(g.storeRecovered)
	token := ""
	if cfg.Admin.TokenFile != "" {
		var err error
		if token, err = config.ReadToken(cfg.Admin.TokenFile); err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
	}
	logger := newLogger(cfg.Log, opts.LogOutput)
	tr, err := tracing.New(context.Background(), &cfg.Tracing, opts.Version, os.Getenv, logger)
	if err != nil {
		return nil, err
	}
	g.tracer = tr
	g.diffs = diffs.New(cfg.Comparison, g.metrics.Registry(), logger)
	g.rollouts = rollout.NewManager(g, rollout.NewMetrics(g.metrics.Registry()), logger)
	if cfg.Cluster != nil {
		node, err := cluster.New(cfg.Cluster, logger, g.metrics.Registry())
		if err != nil {
			g.diffs.Close()
			_ = tr.Shutdown(context.Background())
			return nil, err
		}
		g.cluster = node
		g.rollouts.SetFleet(node)
		node.ShareResults(g.diffs) // before the store is attached: it keeps the results' origin
	}
	if err := g.ensureStore(cfg, logger); err != nil {
		g.diffs.Close()
		_ = tr.Shutdown(context.Background())
		g.closeCluster()
		return nil, err
	}
	g.deps = deps{metrics: g.metrics, shadow: shadow.NewMetrics(g.metrics.Registry()), logOut: opts.LogOutput, sink: g.diffs.Submit,
		rollouts: g.rollouts, adoption: adoption.New(adoption.Options{MaxCallers: cfg.Callers.MaxCallers, Registerer: g.metrics.Registry()}),
		tracer: tr}
	if g.cluster != nil {
		g.cluster.ShareAdoption(g.deps.adoption)
	}
	c, err := compile(cfg, parts{}, g.deps)
	if err != nil {
		_ = g.closeStore()
		_ = tr.Shutdown(context.Background())
		g.closeCluster()
		return nil, err
	}
	g.parts = c.parts
	g.diffs.Configure(c.compares)
	g.handler = proxy.NewHandler(g.metrics, c.snap)
	g.rollouts.Configure(c.plans)
	if g.cluster != nil {
		// Before anything listens: a replica that joins late serves the
		// fleet's current weights from its first request.
		g.cluster.Start()
	}
	g.metrics.Reloaded(true, len(cfg.Routes))
	g.admin = admin.New(g, g.metrics.Handler(), token)
	g.admin.Handle("GET /api/v1/adoption", g.deps.adoption.Handler().ServeHTTP)
	g.admin.Handle("GET /api/v1/flags", g.flagsAdmin)
	if err := g.startEgress(cfg, c.snap); err != nil {
		retireParts(c.parts, parts{})
		_ = g.closeStore()
		return nil, err
	}
	g.admin.Handle("POST /api/v1/flags/evaluate", g.flagsEvaluate)
	g.watchFlags()
	for _, handlers := range []map[string]http.HandlerFunc{g.diffs.Handlers(), g.rollouts.Handlers()} {
		for pattern, h := range handlers {
			g.admin.Handle(pattern, h)
		}
	}
	g.startDashboard()
	return g, nil
}

// ensureStore opens the embedded store in data_dir the first time a
// config needs persistence (a route compares answers or has a rollout, or
// the egress sandbox keeps its recordings). A plain proxy never touches
// the disk.
func (g *Gateway) ensureStore(cfg *config.Config, log *slog.Logger) error {
	if g.store != nil || !needsStore(cfg) {
		return nil
	}
	st, err := store.Open(cfg.DataDir, store.Options{OnCorruption: cfg.Store.OnCorruption,
		CheckTimeout: cfg.Store.CheckTimeout.D(), Log: log})
	if err != nil {
		return err
	}
	if st.Lost() != "" {
		g.storeRecovered.Inc()
	}
	if err := g.diffs.Attach(st); err != nil {
		st.Close()
		return fmt.Errorf("loading comparison results from %s: %w", st.Path(), err)
	}
	g.store = st
	g.rollouts.Attach(st)
	return nil
}

func needsStore(cfg *config.Config) bool {
	if cfg.Egress != nil && cfg.Egress.Record.Persists() {
		return true
	}
	for _, r := range cfg.Routes {
		if r.Compare != nil || r.Rollout != nil {
			return true
		}
	}
	return false
}

// closeCluster leaves the fleet (the node logs what goes wrong).
func (g *Gateway) closeCluster() {
	if g.cluster != nil {
		_ = g.cluster.Close()
	}
}

// closeStore saves the comparison results and closes the store.
func (g *Gateway) closeStore() error {
	err := g.diffs.Close()
	if g.store != nil {
		err = errors.Join(err, g.store.Close())
	}
	return err
}

// Rollouts is the rollout manager (for the demo and tests).
func (g *Gateway) Rollouts() *rollout.Manager { return g.rollouts }

// Tracer is the gateway's tracer, nil when tracing is off (for tests,
// which flush it).
func (g *Gateway) Tracer() *tracing.Tracer { return g.tracer }

// Diffs is the comparison recorder (for the demo and tests).
func (g *Gateway) Diffs() *diffs.Recorder { return g.diffs }

// Log is the running snapshot's logger.
func (g *Gateway) Log() *slog.Logger { return g.handler.Snapshot().Log }

// Metrics exposes the registry to features that add their own metrics.
func (g *Gateway) Metrics() *metrics.Metrics { return g.metrics }

// AdminServer lets features register admin API endpoints.
func (g *Gateway) AdminServer() *admin.Server { return g.admin }

// Handler is the main listener's handler (used by tests and the demo).
func (g *Gateway) Handler() http.Handler { return g.handler }

// Start binds the main and admin listeners and serves them in the background.
func (g *Gateway) Start() error {
	cfg := g.handler.Snapshot().Config
	var err error
	if g.mainLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	if n := cfg.Server.MaxConnections; n > 0 {
		// Past the limit, Accept waits for a connection to close: new
		// clients queue in the kernel's backlog (HAProxy's maxconn) instead
		// of being accepted into goroutines and buffers without bound.
		g.mainLn = h1server.LimitListener(g.mainLn, n)
	}
	if g.admLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
		g.mainLn.Close()
		return fmt.Errorf("admin listen %s: %w", cfg.Admin.Listen, err)
	}
	errLog := slog.NewLogLogger(g.Log().Handler(), slog.LevelWarn)
	baseCtx, cancel := context.WithCancel(context.Background())
	g.cancelConns = cancel
	g.adminSrv = &http.Server{Handler: g.admin, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	if cfg.TLS == nil {
		// Plain HTTP/1.x: umbra's own connection loop, for speed (see
		// internal/h1server).
		g.main = &h1server.Server{
			Handler:           g.handler,
			BaseContext:       baseCtx,
			ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
			IdleTimeout:       cfg.Server.IdleTimeout.D(),
			BodyReadTimeout:   cfg.Server.BodyReadTimeout.D(),
			MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
			MaxHeaderCount:    cfg.Server.MaxHeaderCount,
			Log:               g.Log(),
		}
		go g.serve(g.main, g.mainLn)
	} else {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			g.mainLn.Close()
			g.admLn.Close()
			return fmt.Errorf("tls: %w", err)
		}
		// NextProtos h2 first: clients that speak HTTP/2 get it.
		tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
		g.main = &http.Server{
			Handler:           g.handler,
			BaseContext:       func(net.Listener) context.Context { return baseCtx },
			ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
			IdleTimeout:       cfg.Server.IdleTimeout.D(),
			MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
			ErrorLog:          errLog,
			TLSConfig:         tlsCfg,
		}
		go g.serve(g.main, tls.NewListener(g.mainLn, tlsCfg))
	}
	if err := g.listenEgress(cfg, baseCtx); err != nil {
		g.main.Close()
		g.admLn.Close()
		return err
	}
	go g.serve(g.adminSrv, g.admLn)
	g.ready.Store(true)
	g.Log().Info("umbra started", "listen", g.mainLn.Addr().String(), "admin", g.admLn.Addr().String(),
		"routes", len(cfg.Routes), "backends", len(cfg.Backends), "tls", cfg.TLS != nil, "tracing", g.tracer != nil)
	return nil
}

// server is what the gateway needs of a listener's server: net/http's,
// or h1server's for plain HTTP/1.x.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

func (g *Gateway) serve(s server, ln net.Listener) {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		g.Log().Error("server stopped", "addr", ln.Addr().String(), "err", err)
	}
}

// Addr is the main listener's address (useful with port 0).
func (g *Gateway) Addr() string { return g.mainLn.Addr().String() }

// AdminAddr is the admin listener's address.
func (g *Gateway) AdminAddr() string { return g.admLn.Addr().String() }

// Shutdown stops accepting, marks the gateway not ready, waits up to the
// configured grace for in-flight requests, then closes what is left.
func (g *Gateway) Shutdown() error {
	g.ready.Store(false)
	grace := g.handler.Snapshot().Config.Server.ShutdownGrace.D()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	g.Log().Info("draining", "grace", grace.String())
	err := g.main.Shutdown(ctx)
	if err == nil {
		err = g.drainUpgraded(ctx)
	}
	if err != nil {
		g.Log().Warn("grace period over; closing remaining connections", "err", err, "active", g.handler.Active())
		g.main.Close()
	}
	// Cancelling the requests' context makes ReverseProxy close both ends
	// of upgraded connections that outlived the grace period.
	g.cancelConns()
	g.waitIdle(time.Second)
	if g.egressSrv != nil {
		// Calls in flight finish within the grace left; the services'
		// pools close with the sandbox.
		if g.egressSrv.Shutdown(ctx) != nil {
			g.egressSrv.Close()
		}
		g.egress.Close()
	}
	g.adminSrv.Close()
	g.stopDashboard()
	g.closeCluster() // resigns its leaderships: a survivor takes over at once
	g.rollouts.Close()
	g.mu.Lock()
	g.stopFlagWatch()
	for _, t := range g.parts.shadows {
		t.Close()
	}
	for _, lb := range g.parts.backends {
		lb.b.Close()
	}
	g.mu.Unlock()
	if serr := g.closeStore(); serr != nil {
		g.Log().Error("saving comparison results failed", "err", serr)
	}
	// Last: the shadow copies' spans end when their targets close.
	if g.tracer != nil {
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if terr := g.tracer.Shutdown(tctx); terr != nil {
			g.Log().Warn("tracing: exporting the last spans failed", "err", terr)
		}
	}
	return err
}

// drainUpgraded waits, within the grace period, for upgraded connections
// (WebSocket), which http.Server.Shutdown neither waits for nor closes.
func (g *Gateway) drainUpgraded(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for g.handler.Active() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// waitIdle gives cancelled handlers a moment to return.
func (g *Gateway) waitIdle(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for g.handler.Active() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// Ready reports whether the gateway is serving (admin.Source).
func (g *Gateway) Ready() bool { return g.ready.Load() }
