package rollouttest

import (
	"testing"

	"github.com/umbragw/umbra/internal/rollout"
	"github.com/umbragw/umbra/test/testkit"
)

// TestFleetPromotesOnEveryReplica: three replicas, each seeing a third of
// the traffic, run one rollout: one leader judges every step on the
// merged windows of all three, and every replica follows its decisions.
func TestFleetPromotesOnEveryReplica(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	gws := startFleet(t, e, 3, fleetPlan(v1, v2, stepsYAML(
		"canary: {weight: 20, min_requests: 90}",
		"canary: {weight: 50, min_requests: 90}",
		"promote: {}")))
	tr := startTrafficAll(t, urls(gws, "/checkout/cart"), "user-", 6, 3000)
	sts := waitAllPhase(t, gws, "checkout", rollout.Promoted)
	tr.Stop()
	if tr.errs.Load() != 0 || tr.failed.Load() != 0 {
		t.Errorf("%d requests failed, %d answered 5xx (last error %v)", tr.errs.Load(), tr.failed.Load(), tr.lastErr.Load())
	}
	sameDecisions(t, sts)
	mv := moves(sts[0].Decisions)
	if actions(mv) != "start,promote,complete" {
		t.Fatalf("decisions %s, want start,promote,complete:\n%s", actions(mv), dump(sts[0].Decisions))
	}
	for _, d := range mv[1:] {
		if d.Inputs["replicas"] != 3 || d.Inputs["canary_requests"] < 90 || d.Inputs["live_requests"] < 90 {
			t.Errorf("decision %s was not judged on three replicas' windows: %v", d.Action, d.Inputs)
		}
	}
	for i, g := range gws {
		got := assign(t, testkit.NewClient(t, 16, waitFor), g.URL+"/checkout/cart", users("after-", 60), 4)
		for u, by := range got {
			if by != "v2" {
				t.Fatalf("replica %d sent %s to %q after promotion", i+1, u, by)
			}
		}
	}
}
