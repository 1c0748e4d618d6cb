package gateway

import (
	"context"
	"path/filepath"
	"reflect"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/umbragw/umbra/internal/config"
)

// Reload loads the config file again and applies it. A file that fails to
// load or compile is logged with every error and the running snapshot stays.
func (g *Gateway) Reload() error {
	path := g.handler.Snapshot().Config.File
	cfg, err := config.Load(path)
	if err != nil {
		g.metrics.Reloaded(false, 0)
		g.Log().Error("config reload rejected; keeping the running config", "file", path, "errors", err.Error())
		return err
	}
	return g.Apply(cfg)
}

// Apply compiles cfg and swaps it in atomically. In-flight requests finish
// on the snapshot they started with.
func (g *Gateway) Apply(cfg *config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.handler.Snapshot()
	if err := g.ensureStore(cfg, old.Log); err != nil {
		g.metrics.Reloaded(false, 0)
		g.Log().Error("config reload rejected; keeping the running config", "file", cfg.File, "errors", err.Error())
		return err
	}
	c, err := compile(cfg, g.parts, g.deps)
	if err != nil {
		g.metrics.Reloaded(false, 0)
		g.Log().Error("config reload rejected; keeping the running config", "file", cfg.File, "errors", err.Error())
		return err
	}
	if err := g.applyEgress(cfg, c.snap); err != nil {
		c.release(g.parts)
		g.metrics.Reloaded(false, 0)
		g.Log().Error("config reload rejected; keeping the running config", "file", cfg.File, "errors", err.Error())
		return err
	}
	g.diffs.Configure(c.compares)
	// Rollouts before the swap: a running rollout puts its weight on the
	// new splits before they serve, or the config's canary.weight would
	// move callers until the controller (maybe waiting for a webhook) is
	// configured.
	g.rollouts.Configure(c.plans)
	g.handler.Swap(c.snap)
	g.retire(c)
	g.watchFlags()
	g.metrics.Reloaded(true, len(cfg.Routes))
	warnRestartOnly(old.Config, cfg, c.snap.Log)
	c.snap.Log.Info("config applied", "file", cfg.File, "routes", len(cfg.Routes), "backends", len(cfg.Backends))
	return nil
}

// retire stops the pieces the new snapshot no longer uses and drops the
// metric series of paths that are gone. Backends are closed again after
// the grace period: requests still running on the old snapshot return
// their connections to the old pool only when they finish.
func (g *Gateway) retire(c *compiled) {
	grace := c.snap.Config.Server.ShutdownGrace.D()
	for name, lb := range g.parts.backends {
		if c.parts.backends[name] != lb {
			time.AfterFunc(grace, lb.b.Close)
		}
	}
	retireParts(g.parts, c.parts)
	g.parts = c.parts
	g.metrics.Forget(c.paths)
}

// warnRestartOnly says which changed settings only take effect on restart.
func warnRestartOnly(old, cfg *config.Config, log interface{ Warn(string, ...any) }) {
	if old.Listen != cfg.Listen || !reflect.DeepEqual(old.TLS, cfg.TLS) || old.Admin != cfg.Admin || old.Server != cfg.Server ||
		old.DataDir != cfg.DataDir || old.Comparison != cfg.Comparison || !reflect.DeepEqual(old.Tracing, cfg.Tracing) {
		log.Warn("listen, tls, admin, server, data_dir, comparison and tracing settings changed; they apply at the next restart")
	}
	if !reflect.DeepEqual(old.Cluster, cfg.Cluster) {
		log.Warn("cluster settings changed; they apply at the next restart")
	}
}

// Watch reloads when the config file changes. It watches the directory,
// because editors and config-management tools replace files by rename,
// and debounces bursts of events into one reload.
func (g *Gateway) Watch(ctx context.Context) error {
	path := g.handler.Snapshot().Config.File
	if path == "" {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(path)
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return err
	}
	go g.watchLoop(ctx, w, abs)
	return nil
}

func (g *Gateway) watchLoop(ctx context.Context, w *fsnotify.Watcher, file string) {
	defer w.Close()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.Events:
			if p, _ := filepath.Abs(ev.Name); p == file && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				debounce = time.After(200 * time.Millisecond)
			}
		case err := <-w.Errors:
			g.Log().Warn("config watch error", "err", err)
		case <-debounce:
			debounce = nil
			_ = g.Reload()
		}
	}
}
