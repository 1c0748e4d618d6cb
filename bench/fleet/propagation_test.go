// Package fleetbench measures fleet mode (docs/fleet.md): how long a
// rollout's weight change, or a canary error burst seen by one replica,
// takes to reach every replica of a fleet on one etcd. Run it with
// bench/fleet.sh propagation; it needs an etcd binary (Debian's
// etcd-server).
package fleetbench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/cluster"
	"github.com/umbragw/umbra/internal/rollout"
	"github.com/umbragw/umbra/test/testkit"
)

const replicas = 3

// steps is a plan of many canary steps that never pass on their own
// (the benchmark moves them with commands).
func plan(upstream string) string {
	var b strings.Builder
	for w := 2; w < 100; w += 2 {
		fmt.Fprintf(&b, "        - canary: {weight: %d, min_requests: 100000000}\n", w)
	}
	return fmt.Sprintf(`backends:
  v1: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: app
    match: {path_prefix: /}
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2, weight: 0}
    rollout:
      start: auto
      interval: 1h
      steps:
%s        - promote: {}
`, upstream, upstream, b.String())
}

type fleet struct {
	ctrls  []*rollout.Controller
	leader int
}

func startFleet(b *testing.B) *fleet {
	e := testkit.StartEtcd(b)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	b.Cleanup(up.Close)
	f := &fleet{leader: -1}
	for i := range replicas {
		dir := b.TempDir()
		yaml := fmt.Sprintf("listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\ndata_dir: %q\nlog: {level: warn, access: false}\n"+
			"cluster:\n  node: node%d\n  etcd: {endpoints: [%q], prefix: /bench/}\n  publish_interval: 1s\n  lease_ttl: 5s\n",
			filepath.Join(dir, "data"), i+1, e.URL) + plan(up.URL)
		g := testkit.Start(b, "fleetbench", filepath.Join(dir, "umbra.yaml"), yaml)
		c, ok := g.Rollouts().Get("app")
		if !ok {
			b.Fatal("no rollout")
		}
		f.ctrls = append(f.ctrls, c)
	}
	deadline := time.Now().Add(30 * time.Second)
	for f.leader < 0 || !f.all(func(c *rollout.Controller) bool { return c.Weight() == 2 }) {
		for i, c := range f.ctrls {
			if v, ok := c.Status().Fleet.(cluster.FleetView); ok && v.Leading {
				f.leader = i
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("the fleet did not start its rollout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return f
}

func (f *fleet) all(ok func(*rollout.Controller) bool) bool {
	for _, c := range f.ctrls {
		if !ok(c) {
			return false
		}
	}
	return true
}

// until waits for every replica to satisfy ok and returns how long it took
// from start; it polls every 100 µs.
func (f *fleet) until(b *testing.B, start time.Time, ok func(*rollout.Controller) bool) time.Duration {
	for !f.all(ok) {
		if time.Since(start) > 10*time.Second {
			b.Fatal("a change did not reach every replica within 10 s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	return time.Since(start)
}

func report(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.Logf("%d changes: p50 %.2f ms, p99 %.2f ms, max %.2f ms", len(ds), q(0.5), q(0.99), q(1))
}

// BenchmarkFleetWeightPropagation: the leader passes a step (operator
// promote); timed until every replica serves the new weight.
func BenchmarkFleetWeightPropagation(b *testing.B) {
	f := startFleet(b)
	lead := f.ctrls[f.leader]
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		cur := lead.Weight()
		cmd := rollout.Promote
		if cur >= 98 {
			cmd = rollout.Abort
		} else if cur == 0 {
			cmd = rollout.Start
		}
		start := time.Now()
		if err := lead.Command(cmd); err != nil {
			b.Fatal(err)
		}
		want := lead.Weight()
		ds = append(ds, f.until(b, start, func(c *rollout.Controller) bool { return c.Weight() == want }))
	}
	b.StopTimer()
	report(b, ds)
}

// BenchmarkFleetBurstPropagation: a follower sees an error burst on the
// canary; timed until every replica shows the leader's rollback.
func BenchmarkFleetBurstPropagation(b *testing.B) {
	f := startFleet(b)
	lead, follower := f.ctrls[f.leader], f.ctrls[(f.leader+1)%replicas]
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		// Four errors, then the fifth makes the burst (defaults: 5 of 20).
		for range 4 {
			follower.Observe(true, 500, time.Millisecond)
		}
		start := time.Now()
		follower.Observe(true, 500, time.Millisecond)
		ds = append(ds, f.until(b, start, func(c *rollout.Controller) bool { return c.Status().Phase == rollout.RolledBack }))
		b.StopTimer()
		if err := lead.Command("start"); err != nil {
			b.Fatal(err)
		}
		f.until(b, time.Now(), func(c *rollout.Controller) bool {
			return c.Status().Phase == rollout.Running && c.Weight() == 2
		})
		b.StartTimer()
	}
	b.StopTimer()
	report(b, ds)
}
