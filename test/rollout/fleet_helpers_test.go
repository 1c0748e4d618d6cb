package rollouttest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/umbragw/umbra/internal/cluster"
	"github.com/umbragw/umbra/internal/rollout"

	"github.com/umbragw/umbra/test/testkit"
)

// Fleet tests run three replicas (gateways on their own ports) on one
// real etcd server, each with its own data_dir.

// clusterBlock is a replica's cluster config: short publication interval
// and lease, so the tests see windows and failovers quickly.
func clusterBlock(node, etcdURL, prefix string) string {
	return fmt.Sprintf("cluster:\n  node: %s\n  etcd: {endpoints: [%q], prefix: %q, dial_timeout: 3s, request_timeout: 1s}\n"+
		"  publish_interval: 50ms\n  share_interval: 50ms\n  lease_ttl: 2s\n", node, etcdURL, prefix)
}

// fleetPlan is the routes of a fleet test: checkout on v1 with v2 as its
// canary and the given rollout steps.
func fleetPlan(v1, v2 *backend, steps string) string {
	return testkit.Backends("v1", v1.URL, "v2", v2.URL) + fmt.Sprintf(`
routes:
  - name: checkout
    match: {path_prefix: /checkout}
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2, weight: 0}
    rollout:
      start: auto
      interval: 100ms
      steps:
%s
      %s
`, steps, calm)
}

// startReplica starts replica node of a fleet on etcd with the plan.
func startReplica(t *testing.T, e *testkit.Etcd, node, plan string) *testkit.Gateway {
	t.Helper()
	return startGW(t, clusterBlock(node, e.URL, "/"+t.Name()+"/")+plan)
}

func startFleet(t *testing.T, e *testkit.Etcd, n int, plan string) []*testkit.Gateway {
	t.Helper()
	gws := make([]*testkit.Gateway, n)
	for i := range gws {
		gws[i] = startReplica(t, e, fmt.Sprintf("node%d", i+1), plan)
	}
	return gws
}

func urls(gws []*testkit.Gateway, path string) []string {
	out := make([]string, len(gws))
	for i, g := range gws {
		out[i] = g.URL + path
	}
	return out
}

// fleetStatus is a replica's rollout status with its fleet view.
func fleetStatus(t *testing.T, g *testkit.Gateway, route string) (rollout.Status, cluster.FleetView) {
	t.Helper()
	body := g.GetJSON(t, "/api/v1/rollouts/"+route, nil)
	var v struct {
		Fleet cluster.FleetView `json:"fleet"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decoding the fleet view: %v\n%s", err, body)
	}
	return decodeStatus(t, body), v.Fleet
}

// leader waits until exactly one replica leads the route and returns its
// index.
func leader(t *testing.T, gws []*testkit.Gateway, route string) int {
	t.Helper()
	who := -1
	testkit.Wait.UntilTrue(t, "one leader of "+route, func() bool {
		who = -1
		for i, g := range gws {
			if _, v := fleetStatus(t, g, route); v.Leading {
				if who >= 0 {
					return false
				}
				who = i
			}
		}
		return who >= 0
	})
	return who
}

// waitAllPhase waits until every replica shows the phase.
func waitAllPhase(t *testing.T, gws []*testkit.Gateway, route string, phase rollout.Phase) []rollout.Status {
	t.Helper()
	out := make([]rollout.Status, len(gws))
	for i, g := range gws {
		out[i] = waitPhase(t, g, route, phase)
	}
	return out
}

// sameDecisions fails unless every replica shows the same decisions (the
// leader's) at the same weight.
func sameDecisions(t *testing.T, sts []rollout.Status) {
	t.Helper()
	want := dump(moves(sts[0].Decisions))
	for i, st := range sts[1:] {
		if got := dump(moves(st.Decisions)); got != want || st.Weight != sts[0].Weight || st.Step != sts[0].Step {
			t.Errorf("replica %d differs from replica 1:\n%s (weight %v step %d)\nreplica 1:\n%s (weight %v step %d)",
				i+2, got, st.Weight, st.Step, want, sts[0].Weight, sts[0].Step)
		}
	}
}

func stepsYAML(steps ...string) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString("        - " + s + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// etcdClient is a client of the test's etcd, for writing what umbra did
// not.
func etcdClient(t *testing.T, e *testkit.Etcd) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{e.URL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// heldFleet starts n replicas whose rollout holds at its first canary
// step, at weight w (its min_requests is never reached), and waits until
// every replica serves that weight.
func heldFleet(t *testing.T, e *testkit.Etcd, n, w int, v1, v2 *backend) []*testkit.Gateway {
	t.Helper()
	gws := startFleet(t, e, n, fleetPlan(v1, v2, stepsYAML(
		fmt.Sprintf("canary: {weight: %d, min_requests: 100000000}", w), "promote: {}")))
	for _, g := range gws {
		testkit.Wait.UntilTrue(t, fmt.Sprintf("the replica at weight %d", w), func() bool {
			st := status(t, g, "checkout")
			return st.Phase == rollout.Running && st.Weight == float64(w)
		})
	}
	return gws
}
