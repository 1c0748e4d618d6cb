package rollouttest

import (
	"fmt"
	"testing"

	"github.com/umbragw/umbra/internal/rollout"

	"github.com/umbragw/umbra/test/testkit"
)

// TestRestartResumes: a gateway stopped in the middle of its second canary
// step comes back, on the same data_dir, at the same phase, step and
// weight with its decisions; the same callers are on the canary before and
// after; and the rollout goes on to promotion.
func TestRestartResumes(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	g := startGW(t, testkit.Backends("v1", v1.URL, "v2", v2.URL)+fmt.Sprintf(`
routes:
  - name: svc
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2}
    rollout:
      start: auto
      interval: 100ms
      steps:
        - canary: {weight: 10, min_requests: 30}
        # Step 2 needs more than the probes below send, so it is still
        # under way when the gateway stops.
        - canary: {weight: 30, min_requests: 400}
        - promote: {}
      %s
`, calm))

	tr := startTraffic(t, g.URL+"/svc", "warm-", 4, 5000)
	waitStep(t, g, "svc", 1)
	tr.Stop()

	probes := users("probe-", 300)
	c := testkit.NewClient(t, 64, testkit.Wait.Timeout)
	before := assign(t, c, g.URL+"/svc", probes, 4)
	onCanary := 0
	for _, by := range before {
		if by == "v2" {
			onCanary++
		}
	}
	// 30% of 300: a binomial with σ ≈ 8; 4σ either side.
	if onCanary < 58 || onCanary > 122 {
		t.Fatalf("%d of 300 probes on the canary at weight 30", onCanary)
	}
	st1 := status(t, g, "svc")
	if st1.Phase != rollout.Running || st1.Step != 1 || st1.Weight != 30 {
		t.Fatalf("before the restart: phase %s step %d weight %v:\n%s", st1.Phase, st1.Step+1, st1.Weight, dump(st1.Decisions))
	}
	if err := g.Stop(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	g2 := g.Restart(t)
	st2 := status(t, g2, "svc")
	if st2.Phase != rollout.Running || st2.Step != 1 || st2.Weight != 30 || st2.StepKind != "canary" {
		t.Fatalf("after the restart: phase %s step %d (%s) weight %v, want running at step 2 (canary) weight 30",
			st2.Phase, st2.Step+1, st2.StepKind, st2.Weight)
	}
	if !st2.StartedAt.Equal(st1.StartedAt) || !st2.StepStartedAt.Equal(st1.StepStartedAt) {
		t.Errorf("start times changed: %v/%v, then %v/%v", st1.StartedAt, st1.StepStartedAt, st2.StartedAt, st2.StepStartedAt)
	}
	if len(st2.Decisions) < len(moves(st1.Decisions)) || actions(moves(st2.Decisions)) != actions(moves(st1.Decisions)) {
		t.Errorf("decisions before:\n%safter:\n%s", dump(st1.Decisions), dump(st2.Decisions))
	}
	for i, d := range moves(st2.Decisions) {
		if b := moves(st1.Decisions)[i]; !d.At.Equal(b.At) || d.Reason != b.Reason {
			t.Errorf("decision %d changed: %+v, was %+v", i, d, b)
		}
	}
	if v, _ := g2.Scrape(t).Sum("umbra_rollout_weight_percent", map[string]string{"route": "svc"}); v != 30 {
		t.Errorf("umbra_rollout_weight_percent after the restart = %v", v)
	}

	after := assign(t, testkit.NewClient(t, 64, testkit.Wait.Timeout), g2.URL+"/svc", probes, 4)
	moved := 0
	for _, u := range probes {
		if before[u] != after[u] {
			moved++
			if moved <= 5 {
				t.Errorf("%s was served by %s before the restart and by %s after", u, before[u], after[u])
			}
		}
	}
	if moved > 0 {
		t.Errorf("%d of %d callers changed version across the restart", moved, len(probes))
	}

	tr2 := startTraffic(t, g2.URL+"/svc", "more-", 4, 5000)
	st := waitPhase(t, g2, "svc", rollout.Promoted)
	tr2.Stop()
	if actions(moves(st.Decisions)) != "start,promote,complete" || st.Weight != 100 {
		t.Errorf("after the restart the rollout ended:\n%s", dump(st.Decisions))
	}
	if d := last(st); d.Inputs["canary_requests"] < 400 {
		t.Errorf("step 2 passed on %v canary requests", d.Inputs["canary_requests"])
	}
}
