package gateway

import (
	"context"
	"log/slog"
	"strings"

	"github.com/umbragw/umbra/internal/flags"
)

// watchFlags (re)starts the watch of the running snapshot's flag file: an
// edited file is validated and swapped in by the evaluator itself, and a
// broken one is logged (once per content) while the running flags stay.
// What flagd would only warn about is loaded and logged as a warning, at
// each load of the file.
func (g *Gateway) watchFlags() {
	g.stopFlagWatch()
	snap := g.handler.Snapshot()
	if snap.Flags == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	path, log := snap.Config.Flags.File, snap.Log
	logWarnings(log, path, snap.Flags.Info())
	err := snap.Flags.Watch(ctx, path, func(changed bool, err error) {
		g.metrics.FlagsReloaded(changed, err)
		if err != nil {
			log.Error("flag file rejected; keeping the running flags", "file", path, "errors", err.Error())
			return
		}
		if !changed {
			return
		}
		info := snap.Flags.Info()
		log.Info("flags reloaded", "file", path, "version", info.Version)
		logWarnings(log, path, info)
	})
	if err != nil {
		cancel()
		log.Warn("flag file watch unavailable; flags reload with the config", "file", path, "err", err)
		return
	}
	g.flagWatch = cancel
}

// logWarnings logs a loaded flag file's warnings (flagd's schema findings
// and umbra's lints), all in one line, as flagd logs its schema findings.
func logWarnings(log *slog.Logger, path string, info flags.Info) {
	if len(info.Warnings) > 0 {
		log.Warn("flag file loaded with warnings", "file", path, "version", info.Version, "warnings", strings.Join(info.Warnings, "\n"))
	}
}

func (g *Gateway) stopFlagWatch() {
	if g.flagWatch != nil {
		g.flagWatch()
		g.flagWatch = nil
	}
}
