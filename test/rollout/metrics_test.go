package rollouttest

import (
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

// TestRolloutMetrics: the rollout gauges follow the rollout through idle,
// running steps and promotion, decisions are counted by action, and
// requests served by the canary are labelled role="canary".
func TestRolloutMetrics(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	g := startGW(t, testkit.Backends("v1", v1.URL, "v2", v2.URL)+`
routes:
  - name: m
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2}
    rollout:
      interval: 100ms
      steps:
        - canary: {weight: 10, min_requests: 1000000}
        - canary: {weight: 50, min_requests: 1000000}
        - promote: {}
`)

	type want struct {
		step, weight float64
		phase        string
		decisions    map[string]float64
	}
	check := func(when string, w want) {
		t.Helper()
		ms := g.Scrape(t)
		route := map[string]string{"route": "m"}
		if v, ok := ms.Sum("umbra_rollout_step", route); !ok || v != w.step {
			t.Errorf("%s: umbra_rollout_step = %v (%v), want %v", when, v, ok, w.step)
		}
		if v, ok := ms.Sum("umbra_rollout_weight_percent", route); !ok || v != w.weight {
			t.Errorf("%s: umbra_rollout_weight_percent = %v (%v), want %v", when, v, ok, w.weight)
		}
		for _, p := range []string{"idle", "running", "paused", "promoted", "rolled_back", "aborted"} {
			wantV := 0.0
			if p == w.phase {
				wantV = 1
			}
			if v, ok := ms.Sum("umbra_rollout_phase", map[string]string{"route": "m", "phase": p}); !ok || v != wantV {
				t.Errorf("%s: umbra_rollout_phase{phase=%q} = %v (%v), want %v", when, p, v, ok, wantV)
			}
		}
		for action, n := range w.decisions {
			v, _ := ms.Sum("umbra_rollout_decisions_total", map[string]string{"route": "m", "action": action})
			if action == "hold" {
				if v < n {
					t.Errorf("%s: umbra_rollout_decisions_total{action=hold} = %v, want at least %v", when, v, n)
				}
				continue
			}
			if v != n {
				t.Errorf("%s: umbra_rollout_decisions_total{action=%q} = %v, want %v", when, action, v, n)
			}
		}
	}

	check("idle", want{0, 0, "idle", map[string]float64{"start": 0}})
	mustCommand(t, g, "m", "start")
	check("started", want{1, 10, "running", map[string]float64{"start": 1}})
	testkit.Wait.UntilTrue(t, "a few holds", func() bool {
		v, _ := g.Scrape(t).Sum("umbra_rollout_decisions_total", map[string]string{"route": "m", "action": "hold"})
		return v >= 3
	})
	mustCommand(t, g, "m", "pause")
	check("paused", want{1, 10, "paused", map[string]float64{"start": 1, "pause": 1, "hold": 3}})
	mustCommand(t, g, "m", "promote")
	check("step 2", want{2, 50, "running", map[string]float64{"start": 1, "pause": 1, "promote": 1}})

	assign(t, testkit.NewClient(t, 64, testkit.Wait.Timeout), g.URL+"/m", users("u-", 400), 4)
	ms := g.Scrape(t)
	canary, _ := ms.Sum("umbra_requests_total", map[string]string{"route": "m", "backend": "v2", "role": "canary", "code": "200"})
	live, _ := ms.Sum("umbra_requests_total", map[string]string{"route": "m", "backend": "v1", "role": "live", "code": "200"})
	if canary+live != 400 || canary != float64(v2.hits.Load()) || live != float64(v1.hits.Load()) {
		t.Errorf("umbra_requests_total: canary %v (v2 served %d), live %v (v1 served %d), want 400 in all", canary, v2.hits.Load(), live, v1.hits.Load())
	}
	if canary < 140 || canary > 260 {
		t.Errorf("%v of 400 requests on the canary at weight 50", canary)
	}

	mustCommand(t, g, "m", "promote")
	check("promoted", want{3, 100, "promoted", map[string]float64{"start": 1, "pause": 1, "promote": 1, "complete": 1, "rollback": 0}})
}
