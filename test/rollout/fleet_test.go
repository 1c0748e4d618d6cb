package rollouttest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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
		got := assign(t, testkit.NewClient(t, 16, testkit.Wait.Timeout), g.URL+"/checkout/cart", users("after-", 60), 4)
		for u, by := range got {
			if by != "v2" {
				t.Fatalf("replica %d sent %s to %q after promotion", i+1, u, by)
			}
		}
	}
}

// TestFleetRollsBackOnEveryReplica: a failing v2 is rolled back by the
// fleet: every replica shows the leader's rollback and none of them sends
// anyone to the canary afterwards.
func TestFleetRollsBackOnEveryReplica(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	v2.failEvery.Store(2) // half of v2's answers are 500s
	gws := startFleet(t, e, 3, fleetPlan(v1, v2, stepsYAML(
		"canary: {weight: 30, min_requests: 100000}",
		"promote: {}")))
	tr := startTrafficAll(t, urls(gws, "/checkout/cart"), "user-", 6, 3000)
	sts := waitAllPhase(t, gws, "checkout", rollout.RolledBack)
	tr.Stop()
	sameDecisions(t, sts)
	mv := moves(sts[0].Decisions)
	if actions(mv) != "start,rollback" || sts[0].Weight != 0 {
		t.Fatalf("decisions %s at weight %v, want start,rollback at 0:\n%s", actions(mv), sts[0].Weight, dump(sts[0].Decisions))
	}
	if v2.hits.Load() == 0 {
		t.Fatal("v2 got no request before the rollback")
	}
	before := v2.hits.Load()
	for i, g := range gws {
		got := assign(t, testkit.NewClient(t, 16, testkit.Wait.Timeout), g.URL+"/checkout/cart", users("user-", 300), 4)
		for u, by := range got {
			if by != "v1" {
				t.Fatalf("replica %d sent %s to %q after the rollback", i+1, u, by)
			}
		}
	}
	if n := v2.hits.Load() - before; n != 0 {
		t.Errorf("v2 got %d requests after the rollback", n)
	}
}

// TestFleetUserKeepsVersionOnEveryReplica: during a canary step, a user
// gets the same version from whichever replica serves the request.
func TestFleetUserKeepsVersionOnEveryReplica(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	gws := heldFleet(t, e, 3, 30, v1, v2)
	us := users("sticky-", 400)
	first := assign(t, testkit.NewClient(t, 16, testkit.Wait.Timeout), gws[0].URL+"/checkout/cart", us, 4)
	canary := 0
	for _, by := range first {
		if by == "v2" {
			canary++
		}
	}
	if canary < 60 || canary > 180 {
		t.Errorf("%d of 400 users on the canary at weight 30", canary)
	}
	for i, g := range gws[1:] {
		got := assign(t, testkit.NewClient(t, 16, testkit.Wait.Timeout), g.URL+"/checkout/cart", us, 4)
		for _, u := range us {
			if got[u] != first[u] {
				t.Fatalf("%s: replica 1 serves %s, replica %d serves %s", u, first[u], i+2, got[u])
			}
		}
	}
}

// TestFleetLateJoinerServesCurrentWeights: a replica started while the
// rollout runs serves the fleet's weight from its first request.
func TestFleetLateJoinerServesCurrentWeights(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	plan := fleetPlan(v1, v2, stepsYAML(
		"canary: {weight: 40, min_requests: 100000}",
		"promote: {}"))
	gws := startFleet(t, e, 2, plan)
	testkit.Wait.UntilTrue(t, "weight 40", func() bool { return status(t, gws[0], "checkout").Weight == 40 })
	late := startReplica(t, e, "late", plan)
	// In process, right after Start: no poll, the first requests count.
	us := users("late-", 300)
	got := assignHandler(t, late, "/checkout/cart", us, 4)
	want := assign(t, testkit.NewClient(t, 16, testkit.Wait.Timeout), gws[0].URL+"/checkout/cart", us, 4)
	for _, u := range us {
		if got[u] != want[u] {
			t.Fatalf("%s: the late replica served %s first, the fleet serves %s", u, got[u], want[u])
		}
	}
	if st := status(t, late, "checkout"); st.Weight != 40 || st.Phase != rollout.Running {
		t.Errorf("late replica at %s weight %v", st.Phase, st.Weight)
	}
}

// TestFleetCommandsOnAnyReplica: operator commands sent to followers are
// run by the leader, and every replica shows their effect.
func TestFleetCommandsOnAnyReplica(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	gws := startFleet(t, e, 3, fleetPlan(v1, v2, stepsYAML(
		"canary: {weight: 10, min_requests: 100000}",
		"canary: {weight: 60, min_requests: 100000}",
		"promote: {}")))
	ad := gws
	lead := leader(t, ad, "checkout")
	f1, f2 := gws[(lead+1)%3], gws[(lead+2)%3]
	testkit.Wait.UntilTrue(t, "running", func() bool { return status(t, f1, "checkout").Phase == rollout.Running })

	if st := mustCommand(t, f1, "checkout", "pause"); st.Phase != rollout.Paused {
		t.Fatalf("pause via a follower answered phase %s", st.Phase)
	}
	for _, g := range gws {
		testkit.Wait.UntilTrue(t, "paused everywhere", func() bool { return status(t, g, "checkout").Phase == rollout.Paused })
	}
	if st := mustCommand(t, f2, "checkout", "promote"); st.Step != 1 || st.Weight != 60 {
		t.Fatalf("promote via a follower: step %d weight %v", st.Step+1, st.Weight)
	}
	if code, body := command(t, f2, "checkout", "resume"); code != 409 {
		t.Errorf("resume of a running rollout via a follower: %d %s, want 409", code, body)
	}
	if code, body := command(t, f1, "checkout", "fly"); code != 400 {
		t.Errorf("unknown command via a follower: %d %s, want 400", code, body)
	}
	if st := mustCommand(t, f1, "checkout", "abort"); st.Phase != rollout.Aborted || st.Weight != 0 {
		t.Fatalf("abort via a follower: %s weight %v", st.Phase, st.Weight)
	}
	sts := waitAllPhase(t, gws, "checkout", rollout.Aborted)
	sameDecisions(t, sts)
	if actions(moves(sts[0].Decisions)) != "start,pause,promote,abort" {
		t.Errorf("decisions %s", actions(moves(sts[0].Decisions)))
	}
}

// TestFleetEtcdRestartUnderLoad: etcd stops for longer than the lease
// while three replicas serve: no request fails, the replicas keep the
// last weights, the rollout holds and says why, and once etcd is back
// the rollout goes on to the end.
func TestFleetEtcdRestartUnderLoad(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	gws := startFleet(t, e, 3, fleetPlan(v1, v2, stepsYAML(
		"canary: {weight: 30, min_requests: 150, min_duration: 5s}",
		"promote: {}")))
	for _, g := range gws {
		testkit.Wait.UntilTrue(t, "weight 30", func() bool { return status(t, g, "checkout").Weight == 30 })
	}
	tr := startTrafficAll(t, urls(gws, "/checkout/cart"), "user-", 6, 3000)
	e.Stop()
	// Beyond the 2 s lease: sessions and leaderships are lost.
	for _, g := range gws {
		testkit.Wait.UntilTrue(t, "the outage reported", func() bool {
			_, v := fleetStatus(t, g, "checkout")
			return !v.Healthy && v.Problem != ""
		})
	}
	time.Sleep(3 * time.Second)
	for i, g := range gws {
		st, v := fleetStatus(t, g, "checkout")
		if st.Phase != rollout.Running || st.Weight != 30 {
			t.Errorf("replica %d during the outage: %s at weight %v", i+1, st.Phase, st.Weight)
		}
		if v.Leading && st.Phase == rollout.Running && last(st).Action == "promote" {
			t.Errorf("replica %d decided during the outage: %+v", i+1, last(st))
		}
	}
	ms := gws[0].Scrape(t)
	if v, _ := ms.Sum("umbra_cluster_etcd_up", nil); v != 0 {
		t.Errorf("umbra_cluster_etcd_up %v during the outage", v)
	}
	e.Start()
	sts := waitAllPhase(t, gws, "checkout", rollout.Promoted)
	tr.Stop()
	if tr.errs.Load() != 0 || tr.failed.Load() != 0 {
		t.Errorf("%d requests failed, %d answered 5xx (last error %v)", tr.errs.Load(), tr.failed.Load(), tr.lastErr.Load())
	}
	if tr.sent.Load() < 500 {
		t.Errorf("only %d requests were sent", tr.sent.Load())
	}
	sameDecisions(t, sts)
	if a := actions(moves(sts[0].Decisions)); a != "start,complete" {
		t.Errorf("decisions %s, want start,complete:\n%s", a, dump(sts[0].Decisions))
	}
	if v, _ := gws[0].Scrape(t).Sum("umbra_cluster_etcd_up", nil); v != 1 {
		t.Errorf("umbra_cluster_etcd_up %v after the outage", v)
	}
}

// TestFleetIgnoresGarbage: values in etcd that are not what umbra wrote
// (garbage, another format version, a state that does not fit the plan)
// are logged, counted and ignored; the rollout goes on.
func TestFleetIgnoresGarbage(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	gws := heldFleet(t, e, 2, 25, v1, v2)
	c := etcdClient(t, e)
	p := "/" + t.Name() + "/rollouts/checkout/"
	for _, kv := range [][2]string{
		{p + "state", "not json"},
		{p + "state", `{"v":99,"state":{"route":"checkout","phase":"promoted","weight":100}}`},
		{p + "state", `{"v":1,"state":{"route":"checkout","phase":"running","step":7,"weight":100}}`},
		{p + "state", `{"v":1,"state":{"route":"checkout","phase":"sideways","weight":100}}`},
		{p + "windows/intruder", `{"v":1,"window":{"node":"intruder","epoch":1,"live":{"n":-5}}}`},
		{p + "windows/intruder2", "\x00\xff"},
		{"/" + t.Name() + "/members/ghost", "[]"},
		{"/" + t.Name() + "/rollouts/checkout/commands/x", "{"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := c.Put(ctx, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	for i, g := range gws {
		testkit.Wait.UntilTrue(t, "bad values counted", func() bool {
			v, _ := g.Scrape(t).Sum("umbra_cluster_bad_values_total", nil)
			return v >= 7
		})
		st := status(t, g, "checkout")
		if st.Phase != rollout.Running || st.Weight != 25 {
			t.Errorf("replica %d after garbage: %s weight %v", i+1, st.Phase, st.Weight)
		}
		if !strings.Contains(g.Log.String(), "ignoring a value in etcd") {
			t.Errorf("replica %d logged nothing about the garbage", i+1)
		}
	}
	// The leader still decides and writes: a pause goes through.
	mustCommand(t, gws[1], "checkout", "pause")
	waitAllPhase(t, gws, "checkout", rollout.Paused)
}

// TestFleetNoEtcdCallPerRequest: requests never reach etcd; what a replica
// writes is bounded by time (publication interval), not by traffic.
func TestFleetNoEtcdCallPerRequest(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	gws := heldFleet(t, e, 3, 30, v1, v2)
	calls := func() float64 { return e.Metric("grpc_server_started_total", "grpc_type", "unary") }
	before, start := calls(), time.Now()
	us := users("load-", 1500)
	for _, g := range gws {
		assignHandler(t, g, "/checkout/cart", us, 4)
	}
	elapsed := time.Since(start)
	got := calls() - before
	// Each replica may publish its window every 50 ms, plus a few
	// housekeeping calls; 4500 requests must not add to that.
	bound := 3*(elapsed.Seconds()/0.05+5) + 20
	t.Logf("%d requests in %v: %v unary etcd calls (bound %.0f)", 3*len(us), elapsed, got, bound)
	if got > bound {
		t.Errorf("%v etcd calls for %d requests in %v; the bound by time is %.0f", got, 3*len(us), elapsed, bound)
	}
}

// TestFleetLeaderKilledMidStep: three replicas as processes; the leader
// is killed (SIGKILL: no resignation, its lease simply stops being kept
// alive) in the middle of a canary step. A survivor takes over within the
// lease TTL, continues the same step from the state in etcd, and the
// survivors finish the rollout.
func TestFleetLeaderKilledMidStep(t *testing.T) {
	e := testkit.StartEtcd(t)
	bin := umbraBinary(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	plan := fleetPlan(v1, v2, stepsYAML(
		"canary: {weight: 20, min_requests: 300}",
		"canary: {weight: 50, min_requests: 150}",
		"promote: {}"))
	procs := make([]*replicaProc, 3)
	for i := range procs {
		procs[i] = startReplicaProc(t, bin, e, fmt.Sprintf("node%d", i+1), plan)
	}
	ad := make([]*testkit.Gateway, 3)
	for i, p := range procs {
		ad[i] = p.Gateway
	}
	lead := leader(t, ad, "checkout")
	tr := startTrafficAll(t, []string{procs[0].URL + "/checkout/cart", procs[1].URL + "/checkout/cart", procs[2].URL + "/checkout/cart"}, "user-", 3, 3000)
	// Mid-step: every replica has published a window of step 1.
	testkit.Wait.UntilTrue(t, "windows of step 1 from three replicas", func() bool {
		st, v := fleetStatus(t, ad[lead], "checkout")
		n := 0
		for _, w := range v.Windows {
			if w.CanaryRequest > 0 {
				n++
			}
		}
		return st.Step == 0 && n == 3
	})
	before, _ := fleetStatus(t, ad[lead], "checkout")
	tr.Stop()
	procs[lead].Proc.Kill()
	killed := time.Now()
	var survivors []string
	var surv []int
	for i := range procs {
		if i != lead {
			survivors, surv = append(survivors, procs[i].URL+"/checkout/cart"), append(surv, i)
		}
	}
	tr = startTrafficAll(t, survivors, "user-", 3, 3000)
	next := leader(t, []*testkit.Gateway{ad[surv[0]], ad[surv[1]]}, "checkout")
	took := time.Since(killed)
	if took > 5*time.Second {
		t.Errorf("a survivor took over after %v, want within 5 s (lease TTL 2 s)", took)
	}
	st, _ := fleetStatus(t, ad[surv[next]], "checkout")
	if st.Step < before.Step || st.Window < before.Window || st.StartedAt != before.StartedAt {
		t.Errorf("the new leader is at step %d window %d of the rollout started %v; the step was %d window %d of %v",
			st.Step+1, st.Window, st.StartedAt, before.Step+1, before.Window, before.StartedAt)
	}
	var sts []rollout.Status
	for _, i := range surv {
		var s rollout.Status
		testkit.Wait.UntilTrue(t, "promoted", func() bool {
			s, _ = fleetStatus(t, ad[i], "checkout")
			if s.Phase != rollout.Running && s.Phase != rollout.Promoted {
				t.Fatalf("replica %d: %s\n%s", i+1, s.Phase, dump(s.Decisions))
			}
			return s.Phase == rollout.Promoted
		})
		sts = append(sts, s)
	}
	tr.Stop()
	sameDecisions(t, sts)
	if a := actions(moves(sts[0].Decisions)); a != "start,promote,complete" {
		t.Errorf("decisions %s, want start,promote,complete (one start: the step went on):\n%s", a, dump(sts[0].Decisions))
	}
	if tr.errs.Load() != 0 || tr.failed.Load() != 0 {
		t.Errorf("%d requests to the survivors failed, %d answered 5xx", tr.errs.Load(), tr.failed.Load())
	}
}

// replicaProc is umbra serve in its own process.
type replicaProc struct {
	*testkit.Proc
	*testkit.Gateway // its addresses, for the admin helpers
}

func startReplicaProc(t *testing.T, bin string, e *testkit.Etcd, node, plan string) *replicaProc {
	t.Helper()
	return startReplicaProcIn(t, bin, t.TempDir(), e, node, plan)
}

// startReplicaProcIn starts a replica process with its config and data
// in dir (a restart: the same dir as before).
func startReplicaProcIn(t *testing.T, bin, dir string, e *testkit.Etcd, node, plan string) *replicaProc {
	t.Helper()
	listen, adm := testkit.FreeAddr(t), testkit.FreeAddr(t)
	path := filepath.Join(dir, "umbra.yaml")
	top := testkit.Top{Listen: listen, AdminAt: adm, DataDir: filepath.Join(dir, "data")}
	testkit.WriteFile(t, path, top.YAML()+clusterBlock(node, e.URL, "/"+t.Name()+"/")+plan)
	p := &replicaProc{testkit.StartProc(t, bin, "serve", "--config", path), testkit.Remote(t, "http://"+listen, "http://"+adm)}
	testkit.Wait.UntilTrue(t, node+" ready", func() bool {
		resp, err := http.Get(p.AdminURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// TestFleetWatchSurvivesCompaction: a compaction under a live watch costs
// nothing; a replica whose watch was cut while the history it would
// resume from was compacted reads the fleet's keys once and is current
// again, without re-applying what did not change (APISIX reloads
// everything on every compaction: apache/apisix#12167).
func TestFleetWatchSurvivesCompaction(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	plan := fleetPlan(v1, v2, stepsYAML(
		"canary: {weight: 10, min_requests: 1000000}",
		"canary: {weight: 60, min_requests: 1000000}",
		"promote: {}"))
	a := startReplica(t, e, "node1", plan)
	leader(t, []*testkit.Gateway{a}, "checkout")
	proxy := testkit.StartTCPProxy(t, strings.TrimPrefix(e.URL, "http://"))
	b := startGW(t, clusterBlock("node2", "http://"+proxy.Addr, "/"+t.Name()+"/")+plan)
	testkit.Wait.UntilTrue(t, "b at weight 10", func() bool { return status(t, b, "checkout").Weight == 10 })
	c := etcdClient(t, e)
	compact := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.Get(ctx, "any")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
	}
	resyncs := func() float64 {
		v, _ := b.Scrape(t).Sum("umbra_cluster_resyncs_total", nil)
		return v
	}
	phaseOf := func(g *testkit.Gateway, phase rollout.Phase) {
		testkit.Wait.UntilTrue(t, "phase "+string(phase), func() bool { return status(t, g, "checkout").Phase == phase })
	}

	before := resyncs()
	mustCommand(t, a, "checkout", "pause")
	phaseOf(b, rollout.Paused)
	compact()
	mustCommand(t, a, "checkout", "resume")
	phaseOf(b, rollout.Running)
	if got := resyncs(); got != before {
		t.Errorf("a compaction under a live watch made %v full reads", got-before)
	}

	proxy.Cut()
	mustCommand(t, a, "checkout", "promote") // to weight 60
	mustCommand(t, a, "checkout", "pause")
	compact()
	proxy.Restore()
	testkit.Wait.UntilTrue(t, "b current again", func() bool {
		st := status(t, b, "checkout")
		return st.Phase == rollout.Paused && st.Weight == 60
	})
	if got := resyncs() - before; got != 1 {
		t.Errorf("%v full reads after a compacted resume, want 1", got)
	}
	if !strings.Contains(b.Log.String(), "watch revision compacted") {
		t.Error("the compacted resume was not logged")
	}
	if v, _ := b.Scrape(t).Sum("umbra_cluster_bad_values_total", nil); v != 0 {
		t.Errorf("%v values ignored", v)
	}
}

// TestFleetMetricsDocumented: every umbra_cluster_* family a replica
// exports is in docs/fleet.md's metrics table with its labels, and every
// family documented there is exported.
func TestFleetMetricsDocumented(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	gws := heldFleet(t, e, 2, 10, v1, v2)
	leader(t, gws, "checkout")
	b, err := os.ReadFile("../../docs/fleet.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(umbra_cluster_[a-z_]+)(\\{([a-z, ]+)\\})?` \\|")
	docs := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		docs[m[1]] = strings.ReplaceAll(m[3], " ", "")
	}
	if len(docs) < 8 {
		t.Fatalf("docs/fleet.md lists %d umbra_cluster_* metrics", len(docs))
	}
	exported := map[string]string{}
	body := gws[1].ScrapeText(t)
	series := regexp.MustCompile(`(?m)^(umbra_cluster_[a-z_]+?)(_bucket|_sum|_count)?(\{([^}]*)\})? `)
	for _, m := range series.FindAllStringSubmatch(string(body), -1) {
		var labels []string
		for _, kv := range strings.Split(m[4], ",") {
			if k, _, ok := strings.Cut(kv, "="); ok && k != "le" {
				labels = append(labels, k)
			}
		}
		exported[m[1]] = strings.Join(labels, ",")
	}
	for name, labels := range exported {
		if want, ok := docs[name]; !ok {
			t.Errorf("%s is exported but not in docs/fleet.md", name)
		} else if want != labels {
			t.Errorf("%s has labels %q, docs/fleet.md says %q", name, labels, want)
		}
	}
	for name := range docs {
		if _, ok := exported[name]; !ok {
			t.Errorf("docs/fleet.md lists %s, which a replica does not export", name)
		}
	}
}
