package rollout

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/split"
	"github.com/umbragw/umbra/internal/store"
)

// parsePlan loads a one-route config through the real loader, so the plan
// carries the defaults users get, and returns the route with its rollout.
// rollout is the YAML of the route's rollout mapping, indented by 6.
func parsePlan(t *testing.T, rollout string) *config.Route {
	t.Helper()
	yaml := `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
backends:
  v1: {endpoints: ["http://127.0.0.1:1"]}
  v2: {endpoints: ["http://127.0.0.1:2"]}
routes:
  - name: svc
    backend: v1
    key: "header:X-User-ID"
    shadow: [{backend: v2, percent: 100}]
    compare: {}
    canary: {backend: v2, weight: 0}
    rollout:
` + rollout
	cfg, err := config.Parse("unit.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	return cfg.Routes[0]
}

// fakeSources is a Sources whose shadow counters the test sets.
type fakeSources struct {
	mu sync.Mutex
	s  ShadowStatus
}

func (f *fakeSources) DiffCounts(string) diffs.Counts { return nil }

func (f *fakeSources) Shadow(string, diffs.Counts) ShadowStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s
}

func (f *fakeSources) set(s ShadowStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s = s
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// unit is a controller configured with a parsed plan, driven by hand (no
// run goroutine): the test calls Command and evaluate itself.
type unit struct {
	c     *Controller
	split *split.Split
	reg   *prometheus.Registry
	src   *fakeSources
}

func newUnit(t *testing.T, rolloutYAML string, st *store.Store) *unit {
	t.Helper()
	r := parsePlan(t, rolloutYAML)
	reg := prometheus.NewRegistry()
	src := &fakeSources{}
	c := newController("svc", st, src, nil, NewMetrics(reg), discardLog())
	sp := split.New(r)
	c.configure(r.Rollout, sp)
	return &unit{c: c, split: sp, reg: reg, src: src}
}

func (u *unit) state() State { return u.c.Status().State }

// counter reads umbra_rollout_decisions_total{route="svc",action=action}.
func (u *unit) counter(t *testing.T, action string) float64 {
	t.Helper()
	return gathered(t, u.reg, "umbra_rollout_decisions_total", map[string]string{"route": "svc", "action": action})
}

// gathered reads one series' value from reg (0 when absent).
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// actions lists the decisions' actions, for messages and comparisons.
func actions(ds []Decision) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Action)
	}
	return strings.Join(out, ",")
}

func dump(ds []Decision) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "  step %d %g%% %s: %s %v\n", d.Step+1, d.Weight, d.Action, d.Reason, d.Inputs)
	}
	return b.String()
}

// ms builds latency samples: n values base + spread·(i mod 10)/10, a
// deterministic, tied-free-enough distribution.
func ms(n int, base, spread float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = base + spread*float64(i%10)/10 + float64(i%7)*0.001
	}
	return out
}
