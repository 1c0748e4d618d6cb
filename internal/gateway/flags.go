package gateway

import (
	"context"
	"net/http"

	"github.com/umbragw/umbra/internal/admin"
)

// watchFlags (re)starts the watch of the running snapshot's flag file: an
// edited file is validated and swapped in by the evaluator itself, and a
// broken one is logged while the running flags stay.
func (g *Gateway) watchFlags() {
	g.stopFlagWatch()
	snap := g.handler.Snapshot()
	if snap.Flags == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	path, log := snap.Config.Flags.File, snap.Log
	err := snap.Flags.Watch(ctx, path, func(err error) {
		if err != nil {
			log.Error("flag file rejected; keeping the running flags", "file", path, "errors", err.Error())
			return
		}
		log.Info("flags reloaded", "file", path, "version", snap.Flags.Info().Version)
	})
	if err != nil {
		cancel()
		log.Warn("flag file watch unavailable; flags reload with the config", "file", path, "err", err)
		return
	}
	g.flagWatch = cancel
}

func (g *Gateway) stopFlagWatch() {
	if g.flagWatch != nil {
		g.flagWatch()
		g.flagWatch = nil
	}
}

// flagsAdmin lists the running flags (GET /api/v1/flags).
func (g *Gateway) flagsAdmin(w http.ResponseWriter, r *http.Request) {
	snap := g.handler.Snapshot()
	if snap.Flags == nil {
		admin.WriteError(w, http.StatusNotFound, "not_found", "no flags.file is configured")
		return
	}
	snap.Flags.AdminHandler().ServeHTTP(w, r)
}
