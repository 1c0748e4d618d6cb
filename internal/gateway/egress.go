package gateway

import (
	"context"
	"fmt"
	"net"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/egress"
	"github.com/umbragw/umbra/internal/h1server"
	"github.com/umbragw/umbra/internal/proxy"
)

// startEgress creates the egress sandbox of the first config, if it has one.
func (g *Gateway) startEgress(cfg *config.Config, snap *proxy.Snapshot) error {
	if cfg.Egress == nil {
		return nil
	}
	sb, err := egress.New(cfg.Egress, g.store, g.diffs.Submit, g.metrics.Registry(), snap.Log)
	if err != nil {
		return fmt.Errorf("egress: %w", err)
	}
	sb.SetTracer(g.tracer)
	g.egress = sb
	snap.Egress = sb
	g.admin.Handle("GET /api/v1/egress/{service}/simulation", sb.SimulationHandler)
	return nil
}

// applyEgress reconfigures the sandbox's services for a reload, before the
// snapshot is swapped in. The listener and the sandbox itself start and
// stop with the process only: a reload that adds egress is refused, one
// that removes it stops pairing live requests, while shadow calls stay
// recognisable and are never forwarded.
func (g *Gateway) applyEgress(cfg *config.Config, snap *proxy.Snapshot) error {
	switch {
	case cfg.Egress == nil:
		if g.egress != nil {
			snap.Log.Warn("egress removed from the config: live requests are no longer paired; the egress listener runs until restart")
		}
		return nil
	case g.egress == nil:
		return fmt.Errorf("egress: the egress sandbox starts only with the process; restart umbra to add it")
	}
	if err := g.egress.Configure(cfg.Egress, snap.Log); err != nil {
		return fmt.Errorf("egress: %w", err)
	}
	snap.Egress = g.egress
	return nil
}

// listenEgress binds the egress listener and serves it with the plain
// HTTP/1.x server of the main listener.
func (g *Gateway) listenEgress(cfg *config.Config, base context.Context) error {
	if g.egress == nil {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Egress.Listen)
	if err != nil {
		return fmt.Errorf("egress listen %s: %w", cfg.Egress.Listen, err)
	}
	g.egressLn = ln
	g.egressSrv = &h1server.Server{
		Handler:           g.egress,
		BaseContext:       base,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
		IdleTimeout:       cfg.Server.IdleTimeout.D(),
		BodyReadTimeout:   cfg.Server.BodyReadTimeout.D(),
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		Log:               g.Log(),
	}
	go g.serve(g.egressSrv, ln)
	return nil
}

// EgressAddr is the egress listener's address ("" without egress).
func (g *Gateway) EgressAddr() string {
	if g.egressLn == nil {
		return ""
	}
	return g.egressLn.Addr().String()
}

// Egress is the egress sandbox (nil without egress).
func (g *Gateway) Egress() *egress.Sandbox { return g.egress }
