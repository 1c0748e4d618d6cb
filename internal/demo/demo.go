package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/gateway"
)

// Options are `umbra demo`'s flags.
type Options struct {
	Listen  string
	Admin   string
	Egress  string // the egress listener
	Version string
	Traffic int       // requests the demo sends itself before the tour
	Rollout bool      // run an accelerated automated rollout of v2
	Out     io.Writer // the guided tour
	Log     io.Writer // umbra's own log
}

// configTemplate is the demo's embedded config: an ordinary umbra config,
// loaded through the same strict loader as a file.
var configTemplate = template.Must(template.New("demo").Parse(`# umbra demo (embedded config)
listen: "{{.Listen}}"
admin: {listen: "{{.Admin}}"}
log: {format: text, level: info, access: false}
data_dir: "{{.DataDir}}"
flags: {file: "{{.DataDir}}/flags.json"}     # flagd format; OFREP under /ofrep
callers: {key: "header:X-Client-ID"}         # who uses which endpoint
backends:
  shortlinks-v1: {endpoints: ["{{.V1}}"]}
  shortlinks-v1-secondary: {endpoints: ["{{.V1b}}"]}
  shortlinks-v2: {endpoints: ["{{.V2}}"]}
routes:
  - name: geo-report                 # a new endpoint of v2, dark until its flag opens it
    match: {path: "/v1/shortlinks/{id}/geo", flag: {key: geo-report, variant: "on"}}
    dark: true
    key: "header:X-User-ID"
    backend: shortlinks-v2
    forward_flags: [geo-report]
  - name: shortlinks
    match: {path_prefix: "/v1/shortlinks"}
    backend: shortlinks-v1
    key: "header:X-User-ID"
    shadow:
      - backend: shortlinks-v2
        percent: 50            # half the users, always the same half
        unsafe: mark           # copy writes too, marked X-Umbra-Sandbox: 1
        headers: {remove: [Authorization]}
    compare:
      secondary: shortlinks-v1-secondary   # a second v1: what differs there is noise
{{- if not .Rollout}}
  - name: checkout                   # charges a payment provider through the egress listener
    match: {path: "/v1/checkout", methods: [POST]}
    backend: shortlinks-v1
    key: "header:X-User-ID"
    shadow:
      - {backend: shortlinks-v2, percent: 100, unsafe: allow}   # writes too: egress keeps them safe
    compare: {secondary: shortlinks-v1-secondary}
{{- end}}
{{- if .Rollout}}
    canary: {backend: shortlinks-v2, weight: 0, override_header: X-Umbra-Version}
    rollout:                               # accelerated for the demo
      start: auto
      interval: 500ms
      steps:
        - shadow: {min_requests: 100, max_diff_rate: 0.05}
        - canary: {weight: 10, min_requests: 60, min_duration: 2s}
        - canary: {weight: 50, min_requests: 150, min_duration: 2s}
        - promote: {}
      analysis: {max_error_rate_increase: 0.02, latency: {confidence: 0.98, max_increase: 1.5}}
{{- end}}
egress:                              # third parties; shadow calls are never forwarded
  listen: "{{.Egress}}"
  services:
    payments: {upstream: "{{.Provider}}", endpoints: ["/v1/charges", "/v1/risk"]}
`))

// demoFlags opens the geo report for two users, in flagd's format.
const demoFlags = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "geo-report": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"in": [{"var": "targetingKey"}, ["alice", "carol"]]}, "on", "off"]}
    }
  }
}
`

// Run starts the demo and blocks until ctx is done.
func Run(ctx context.Context, o Options) error {
	v1, err := startService("v1")
	if err != nil {
		return err
	}
	defer v1.Close()
	v1b, err := startService("v1")
	if err != nil {
		return err
	}
	defer v1b.Close()
	v2, err := startService(map[bool]string{true: "v2-fixed", false: "v2"}[o.Rollout])
	if err != nil {
		return err
	}
	defer v2.Close()
	prov, err := startProvider()
	if err != nil {
		return err
	}
	defer prov.Close()
	dataDir, err := os.MkdirTemp("", "umbra-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	if err := os.WriteFile(filepath.Join(dataDir, "flags.json"), []byte(demoFlags), 0o600); err != nil {
		return err
	}
	cfg, text, err := demoConfig(o, dataDir, prov, v1, v1b, v2)
	if err != nil {
		return fmt.Errorf("demo config: %w\n%s", err, text)
	}
	g, err := gateway.New(cfg, gateway.Options{Version: o.Version, LogOutput: o.Log})
	if err != nil {
		return err
	}
	if err := g.Start(); err != nil {
		return fmt.Errorf("%w (another umbra running? pick other ports with --listen, --admin and --egress)", err)
	}
	payments := "http://" + g.EgressAddr() + "/payments"
	for _, s := range []*service{v1, v1b, v2} {
		s.egress.Store(&payments)
	}
	if o.Rollout {
		if err := runRollout(ctx, o.Out, g); err != nil {
			return err
		}
	} else if o.Traffic > 0 {
		if err := driveTraffic(ctx, "http://"+g.Addr(), o.Traffic); err != nil {
			return err
		}
		waitForCopies(ctx, g, v2)
		printShadowReport(o.Out, g, o.Traffic, v1, v2)
		printDiffReport(ctx, o.Out, g)
		checkouts := min(max(o.Traffic/4, 20), 100)
		if err := driveCheckouts(ctx, "http://"+g.Addr(), checkouts); err != nil {
			return err
		}
		printCheckoutReport(ctx, o.Out, g, prov, checkouts, v2)
	}
	printFlagTour(o.Out, g)
	printTour(o.Out, g, v1, v2)
	<-ctx.Done()
	return g.Shutdown()
}

func demoConfig(o Options, dataDir string, prov *provider, v1, v1b, v2 *service) (*config.Config, string, error) {
	var buf bytesBuffer
	egress := o.Egress
	if egress == "" {
		egress = "127.0.0.1:9902"
		if strings.HasSuffix(o.Listen, ":0") {
			egress = "127.0.0.1:0" // ephemeral ports asked for: this one too
		}
	}
	err := configTemplate.Execute(&buf, map[string]any{"Listen": o.Listen, "Admin": o.Admin, "DataDir": dataDir,
		"Egress": egress, "Provider": prov.URL(),
		"V1": v1.URL(), "V1b": v1b.URL(), "V2": v2.URL(), "Rollout": o.Rollout})
	if err != nil {
		return nil, "", err
	}
	cfg, err := config.Parse("demo.yaml", buf.b)
	return cfg, string(buf.b), err
}

type bytesBuffer struct{ b []byte }

func (b *bytesBuffer) Write(p []byte) (int, error) { b.b = append(b.b, p...); return len(p), nil }

func printTour(w io.Writer, g *gateway.Gateway, v1, v2 *service) {
	base, adm := "http://"+g.Addr(), "http://"+g.AdminAddr()
	fmt.Fprintf(w, `umbra demo is running.

  gateway     %[1]s          (routes /v1/shortlinks to shortlinks-v1,
                                          shadows 50%% of users to shortlinks-v2)
  admin API   %[2]s
  dashboard   %[2]s/ui/
  backends    shortlinks-v1 at %[3]s, shortlinks-v2 at %[4]s

Try:
  curl -s %[1]s/v1/shortlinks/gh -H 'X-User-ID: alice'    # you get v1's answer
  curl -s -X POST %[1]s/v1/shortlinks -d '{"id":"umbra","url":"https://example.com"}'
  curl -s %[1]s/nowhere                      # no route: 404 with a JSON error
  curl -s %[2]s/api/v1/routes                # routes and backend health
  curl -s %[2]s/metrics | grep umbra_requests_total
  curl -s %[2]s/metrics | grep 'umbra_shadow_requests_total.*[1-9]$'
  curl -s %[2]s/api/v1/diffs                 # how v2's answers differ from v1's
  umbra diff --admin %[2]s                   # the same as a table
  umbra rollout status shortlinks --admin %[2]s   # the canary rollout (demo --rollout)
  curl -s -X POST %[1]s/ofrep/v1/evaluate/flags -d '{"context":{"targetingKey":"carol"}}'
  curl -s %[1]s/v1/shortlinks/gh/geo -H 'X-User-ID: carol'   # dark endpoint, open for carol
  curl -s %[2]s/api/v1/adoption              # which callers use which endpoints
  curl -s -X POST %[1]s/v1/checkout -H 'X-User-ID: dan' -d '{"checkout_id":"order-x","amount":990}'
  curl -s %[2]s/metrics | grep 'umbra_egress_requests_total.*[1-9]$'   # forwarded, replayed, unmatched
  umbra egress export payments --admin %[2]s  # recorded calls as a Hoverfly simulation

Press Ctrl-C to stop.
`, base, adm, v1.URL(), v2.URL())
}
