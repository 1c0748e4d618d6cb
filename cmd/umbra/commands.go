package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/umbragw/umbra/internal/buildinfo"
	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/demo"
	"github.com/umbragw/umbra/internal/gateway"
)

// build is this binary's version, revision and toolchain.
var build = buildinfo.Read(version)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "umbra",
		Version:       build.Version,
		Short:         "umbra is a dark-launch gateway: shadow, compare, canary and flag new versions on live traffic",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version prints what `umbra version` prints.
	root.SetVersionTemplate(build.String())
	root.AddCommand(serveCmd(), validateCmd(), demoCmd(), diffCmd(), rolloutCmd(), egressCmd(), versionCmd())
	return root
}

func configFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVarP(path, "config", "c", "umbra.yaml", "config file")
}

func serveCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway with a config file (SIGHUP or editing the file reloads it; SIGTERM drains)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			g, err := gateway.New(cfg, gateway.Options{Version: build.Version})
			if err != nil {
				return err
			}
			return serve(g)
		},
	}
	configFlag(cmd, &path)
	return cmd
}

// serve runs g until SIGINT or SIGTERM, reloading on SIGHUP.
func serve(g *gateway.Gateway) error {
	// Signals are caught before Start logs "umbra started": a SIGHUP sent
	// as soon as that line shows would otherwise kill the process (its
	// default action), and a SIGTERM would skip the drain.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := g.Start(); err != nil {
		return &exitError{1, err}
	}
	if err := g.Watch(ctx); err != nil {
		g.Log().Warn("config file watch unavailable; reload with SIGHUP", "err", err)
	}
	for {
		select {
		case <-hup:
			_ = g.Reload()
		case <-ctx.Done():
			stop()
			if err := g.Shutdown(); err != nil {
				return &exitError{1, err}
			}
			return nil
		}
	}
}

func validateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file: print every error as FILE:LINE:COL: reason and exit 2, or a summary (and warnings, on stderr) and exit 0",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			warnings, err := gateway.Check(cfg)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			shadows := 0
			for _, r := range cfg.Routes {
				shadows += len(r.Shadow)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %d routes, %d backends, %d shadow targets\n", path, len(cfg.Routes), len(cfg.Backends), shadows)
			return nil
		},
	}
	configFlag(cmd, &path)
	return cmd
}

func demoCmd() *cobra.Command {
	o := demo.Options{Version: build.Version}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run umbra in front of two in-process versions of a demo API, with a guided tour",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			o.Out, o.Log = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := demo.Run(ctx, o); err != nil {
				return &exitError{1, err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:8080", "gateway address")
	cmd.Flags().StringVar(&o.Admin, "admin", "127.0.0.1:9901", "admin address")
	cmd.Flags().StringVar(&o.Egress, "egress", "", "egress listener address for the demo's payment calls (default 127.0.0.1:9902, or an ephemeral port when --listen's is 0)")
	cmd.Flags().IntVar(&o.Traffic, "traffic", 200, "requests the demo sends itself before the tour (0: none)")
	cmd.Flags().BoolVar(&o.Rollout, "rollout", false, "run an accelerated automated rollout of v2 and print each decision")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print umbra's version, VCS revision and Go version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), build.String())
		},
	}
}
