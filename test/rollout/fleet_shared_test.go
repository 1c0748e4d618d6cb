package rollouttest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/umbragw/umbra/internal/adoption"
	"github.com/umbragw/umbra/internal/cluster"
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/rollout"
	"github.com/umbragw/umbra/test/testkit"
)

// Shared comparison results: every replica publishes a summary of its
// comparisons; any replica's report is the fleet's.

const shopEP = "GET /shop/{id}"

// shopBackends are a live version (v1), a second instance of it (v1b)
// and a candidate (v2). Every answer carries a random "nonce" (noise: v1
// and v1b differ on it too); v2's price differs from v1's when
// priceDiffers is set (a regression), else v2 answers as v1 does.
type shopBackends struct {
	v1, v1b, v2  *httptest.Server
	priceDiffers atomic.Bool
	seq          atomic.Int64
}

func newShopBackends(t *testing.T, priceDiffers bool) *shopBackends {
	t.Helper()
	b := &shopBackends{}
	b.priceDiffers.Store(priceDiffers)
	serve := func(candidate bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			price := 10
			if candidate && b.priceDiffers.Load() {
				price = 11
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":%q,"price":%d,"nonce":%d}`, strings.TrimPrefix(r.URL.Path, "/shop/"), price, b.seq.Add(1))
		}
	}
	b.v1, b.v1b, b.v2 = httptest.NewServer(serve(false)), httptest.NewServer(serve(false)), httptest.NewServer(serve(true))
	t.Cleanup(func() { b.v1.Close(); b.v1b.Close(); b.v2.Close() })
	return b
}

// routes is the shop route comparing v2 with v1 (v1b for noise), with the
// given rollout block ("" for none).
func (b *shopBackends) routes(rolloutBlock string) string {
	return fmt.Sprintf(`
callers: {key: "header:X-User-ID"}
backends:
  v1: {endpoints: [%q]}
  v1b: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: shop
    match: {path: "/shop/{id}"}
    backend: v1
    key: "header:X-User-ID"
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1b}
    canary: {backend: v2, weight: 0}
%s`, b.v1.URL, b.v1b.URL, b.v2.URL, rolloutBlock)
}

// sendShop sends n requests to a replica, every one answered 200.
func sendShop(t *testing.T, url string, n int) {
	t.Helper()
	c := testkit.NewClient(t, 4, testkit.Wait.Timeout)
	for i := range n {
		status, _, err := get(c, fmt.Sprintf("%s/shop/%d", url, i), fmt.Sprintf("u%d", i))
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET %s/shop/%d: %d %v", url, i, status, err)
		}
	}
}

// shopReport is a replica's GET /api/v1/diffs/shop endpoint (zero when
// there is none yet).
func shopReport(t *testing.T, g *testkit.Gateway) diffs.EndpointReport {
	t.Helper()
	var rep diffs.Report
	g.GetJSON(t, "/api/v1/diffs/shop", &rep)
	e, _ := testkit.Endpoint(rep, shopEP)
	return e
}

// waitCompared waits until the replica's report shows want answers
// compared, and returns it.
func waitCompared(t *testing.T, g *testkit.Gateway, want int64) diffs.EndpointReport {
	t.Helper()
	var e diffs.EndpointReport
	testkit.Wait.Until(t, fmt.Sprintf("%d comparisons in %s's report", want, g.AdminURL), func() (bool, string) {
		e = shopReport(t, g)
		if e.Compared > want {
			t.Fatalf("%s shows %d comparisons, more than the %d made:\n%+v", g.AdminURL, e.Compared, want, e)
		}
		return e.Compared == want, fmt.Sprintf("%d compared: %+v", e.Compared, e.Replicas)
	})
	return e
}

func field(e diffs.EndpointReport, name string) (diffs.FieldReport, bool) {
	return testkit.Field(name, e.Regressions, e.Noise)
}

// TestFleetDiffsAddUp: three replicas each compare the answers of the
// traffic they see (7, 11 and 13 requests); every replica's report shows
// the fleet's 31 comparisons, with each replica's share; a noise mark made
// on one replica shows on the others, its removal too; a reset on one
// replica empties every replica's report, and counting starts again.
func TestFleetDiffsAddUp(t *testing.T) {
	e := testkit.StartEtcd(t)
	b := newShopBackends(t, true)
	gws := startFleet(t, e, 3, b.routes(""))
	sends := []int{7, 11, 13}
	for i, g := range gws {
		sendShop(t, g.URL, sends[i])
	}
	for _, g := range gws {
		rep := waitCompared(t, g, 31)
		if rep.Differing != 31 {
			t.Errorf("%s: %d differing, want 31", g.AdminURL, rep.Differing)
		}
		for i, n := range sends {
			node := fmt.Sprintf("node%d", i+1)
			if got := rep.Replicas[node].Compared; got != int64(n) {
				t.Errorf("%s shows %s with %d comparisons, want %d: %+v", g.AdminURL, node, got, n, rep.Replicas)
			}
		}
		price, ok := field(rep, "$.price")
		if !ok || price.Raw != 31 || !price.Regression {
			t.Errorf("%s: price %+v, want 31 raw differences and a regression", g.AdminURL, price)
		}
		if nonce, ok := field(rep, "$.nonce"); !ok || nonce.Raw != 31 || nonce.Noise != 31 || nonce.Regression {
			t.Errorf("%s: nonce %+v, want 31 raw and 31 noise differences, not a regression", g.AdminURL, nonce)
		}
	}

	// umbra diff --replicas shows each replica's share.
	out, code := runCLI(t, umbraBinary(t), "diff", "--replicas", "--admin", gws[1].AdminURL)
	for i, n := range sends {
		if re := regexp.MustCompile(fmt.Sprintf(`replica node%d +%d +%d`, i+1, n, n)); code != 0 || !re.MatchString(out) {
			t.Errorf("umbra diff --replicas (exit %d) does not show node%d with %d comparisons:\n%s", code, i+1, n, out)
		}
	}

	// Adoption counts add up too: u0 called each replica once.
	for _, g := range gws {
		testkit.Wait.Until(t, "the fleet's adoption counts on "+g.AdminURL, func() (bool, string) {
			r := shopAdoption(t, g)
			if r.Requests > 31 {
				t.Fatalf("%s counts %d requests, more than the 31 sent", g.AdminURL, r.Requests)
			}
			u0 := uint64(0)
			for _, e := range r.Endpoints {
				for _, c := range e.Callers {
					if e.Endpoint == "/shop/{id}" && c.Caller == "u0" {
						u0 = c.Requests
					}
				}
			}
			return r.Requests == 31 && u0 == 3, fmt.Sprintf("%d requests, u0 %d", r.Requests, u0)
		})
	}

	// A noise mark on node1 applies on node2 and node3; its removal on
	// node3 applies on node1.
	markNoise(t, gws[0], "$.price", true)
	for _, g := range gws {
		testkit.Wait.UntilTrue(t, "price marked as noise on "+g.AdminURL, func() bool {
			f, _ := field(shopReport(t, g), "$.price")
			return f.MarkedNoise && !f.Regression
		})
	}
	markNoise(t, gws[2], "$.price", false)
	for _, g := range gws {
		testkit.Wait.UntilTrue(t, "price a regression again on "+g.AdminURL, func() bool {
			f, _ := field(shopReport(t, g), "$.price")
			return !f.MarkedNoise && f.Regression
		})
	}

	// A reset on node2 empties every report; new comparisons add up again.
	gws[1].Admin(t, http.MethodDelete, "/api/v1/diffs/shop", nil, http.StatusOK, nil)
	for _, g := range gws {
		testkit.Wait.UntilTrue(t, "an empty report on "+g.AdminURL, func() bool { return shopReport(t, g).Compared == 0 })
	}
	sendShop(t, gws[0].URL, 2)
	sendShop(t, gws[2].URL, 3)
	for _, g := range gws {
		if rep := waitCompared(t, g, 5); rep.Replicas["node2"].Compared != 0 {
			t.Errorf("%s: node2 shows %d comparisons after the reset", g.AdminURL, rep.Replicas["node2"].Compared)
		}
	}
	// An endpoint's reset on node3 too.
	gws[2].Admin(t, http.MethodDelete, "/api/v1/diffs/shop?endpoint="+url.QueryEscape(shopEP), nil, http.StatusOK, nil)
	for _, g := range gws {
		testkit.Wait.UntilTrue(t, "the endpoint reset on "+g.AdminURL, func() bool { return shopReport(t, g).Compared == 0 })
	}
}

func markNoise(t *testing.T, g *testkit.Gateway, field string, noise bool) {
	t.Helper()
	g.Admin(t, http.MethodPost, "/api/v1/diffs/shop/noise", diffs.NoiseRequest{Endpoint: shopEP, Field: field, Noise: &noise}, http.StatusOK, nil)
}

// TestFleetDeadReplicaCountsStay: a replica killed (SIGKILL) loses its
// lease and its summary with it; a survivor keeps its last summary as a
// departed record, so the fleet's counts stay. The replica restarted on
// the same data takes its counts back (no double count) and counts on.
func TestFleetDeadReplicaCountsStay(t *testing.T) {
	e := testkit.StartEtcd(t)
	bin := umbraBinary(t)
	b := newShopBackends(t, true)
	gws := startFleet(t, e, 2, b.routes(""))
	dir := t.TempDir()
	p3 := startReplicaProcIn(t, bin, dir, e, "node3", b.routes(""))
	sendShop(t, gws[0].URL, 5)
	sendShop(t, gws[1].URL, 6)
	sendShop(t, p3.URL, 9)
	for _, g := range []*testkit.Gateway{gws[0], gws[1], p3.Gateway} {
		waitCompared(t, g, 20)
	}

	p3.Kill()
	c := etcdClient(t, e)
	prefix := "/" + t.Name() + "/compare/"
	testkit.Wait.UntilTrue(t, "node3's summary gone with its lease and kept as a departed record", func() bool {
		live, err1 := c.Get(t.Context(), prefix+"summaries/node3")
		gone, err2 := c.Get(t.Context(), prefix+"departed/", clientv3.WithPrefix())
		if err1 != nil || err2 != nil {
			return false
		}
		return live.Count == 0 && gone.Count == 1
	})
	for _, g := range gws {
		rep := shopReport(t, g)
		if rep.Compared != 20 || rep.Replicas["node3"].Compared != 9 {
			t.Errorf("%s after node3 died: %d compared, node3 %d; want 20 and 9", g.AdminURL, rep.Compared, rep.Replicas["node3"].Compared)
		}
	}

	p3 = startReplicaProcIn(t, bin, dir, e, "node3", b.routes(""))
	testkit.Wait.UntilTrue(t, "node3 back: its summary live, its departed record gone", func() bool {
		live, err1 := c.Get(t.Context(), prefix+"summaries/node3")
		gone, err2 := c.Get(t.Context(), prefix+"departed/", clientv3.WithPrefix())
		return err1 == nil && err2 == nil && live.Count == 1 && gone.Count == 0
	})
	sendShop(t, p3.URL, 1)
	for _, g := range []*testkit.Gateway{gws[0], gws[1], p3.Gateway} {
		if rep := waitCompared(t, g, 21); rep.Replicas["node3"].Compared != 10 {
			t.Errorf("%s: node3 shows %d comparisons, want 10", g.AdminURL, rep.Replicas["node3"].Compared)
		}
	}
}

// shopAdoption is the shop route of a replica's GET /api/v1/adoption.
func shopAdoption(t *testing.T, g *testkit.Gateway) adoption.RouteReport {
	t.Helper()
	var rep adoption.Report
	g.GetJSON(t, "/api/v1/adoption?window=0", &rep)
	for _, r := range rep.Routes {
		if r.Route == "shop" {
			return r
		}
	}
	return adoption.RouteReport{}
}

// TestFleetShadowStepOnMergedComparisons: a shadow step that needs 30
// compared answers, with 12 compared on each of three replicas: no
// replica has enough alone, the fleet has 36. The leader judges the step
// on the fleet's comparisons: a candidate whose price differs is rolled
// back, one that differs only by noise passes to the next step.
func TestFleetShadowStepOnMergedComparisons(t *testing.T) {
	for _, differs := range []bool{true, false} {
		t.Run(fmt.Sprintf("price differs %v", differs), func(t *testing.T) {
			e := testkit.StartEtcd(t)
			b := newShopBackends(t, differs)
			gws := startFleet(t, e, 3, b.routes(`    rollout:
      start: auto
      interval: 100ms
      steps:
        - shadow: {min_requests: 30, max_diff_rate: 0.01}
        - canary: {weight: 10, min_requests: 100000000}
        - promote: {}
`))
			leader(t, gws, "shop")
			for _, g := range gws {
				sendShop(t, g.URL, 12)
			}
			var sts []rollout.Status
			if differs {
				sts = waitAllPhase(t, gws, "shop", rollout.RolledBack)
			} else {
				for _, g := range gws {
					sts = append(sts, waitStep(t, g, "shop", 1))
				}
			}
			sameDecisions(t, sts)
			d := moves(sts[0].Decisions)[1]
			if want := map[bool]rollout.Action{true: "rollback", false: "promote"}[differs]; d.Action != want || d.Inputs["compared"] < 30 {
				t.Fatalf("decision %s on %v, want %s on at least 30 comparisons:\n%s", d.Action, d.Inputs, want, dump(sts[0].Decisions))
			}
			for _, g := range gws {
				if own := shopReport(t, g).Replicas; len(own) != 3 {
					t.Errorf("%s: %d replicas' comparisons, want 3: %v", g.AdminURL, len(own), own)
				}
			}
		})
	}
}

// TestFleetStatusPerReplica: the rollout's status on any replica (API and
// umbra rollout status) shows each replica's window of the current step,
// with its requests, errors and latency, and which replica decided.
func TestFleetStatusPerReplica(t *testing.T) {
	e := testkit.StartEtcd(t)
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	gws := heldFleet(t, e, 3, 50, v1, v2)
	lead := leader(t, gws, "checkout")
	tr := startTrafficAll(t, urls(gws, "/checkout/cart"), "user-", 3, 300)
	var v cluster.FleetView
	var st rollout.Status
	testkit.Wait.Until(t, "three replicas' windows of the step, with latencies", func() (bool, string) {
		st, v = fleetStatus(t, gws[(lead+1)%3], "checkout")
		n := 0
		for _, w := range v.Windows {
			if w.Epoch == st.Window && w.LiveRequests > 0 && w.CanaryRequest > 0 && w.LiveP99 > 0 && w.CanaryP99 > 0 {
				n++
			}
		}
		return n == 3, fmt.Sprintf("%+v", v.Windows)
	})
	tr.Stop()
	leaderNode := fmt.Sprintf("node%d", lead+1)
	if v.Leader != leaderNode {
		t.Errorf("the status names %q as leader, want %s", v.Leader, leaderNode)
	}
	for _, d := range st.Decisions {
		if d.Node != leaderNode {
			t.Errorf("decision %s was made by %q, want the leader %s", d.Action, d.Node, leaderNode)
		}
	}
	out, code := runCLI(t, umbraBinary(t), "rollout", "status", "checkout", "--admin", gws[(lead+2)%3].AdminURL)
	for _, want := range []string{"leader " + leaderNode, "by " + leaderNode, "node1", "node2", "node3", "CANARY REQUESTS"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("umbra rollout status (exit %d) does not show %q:\n%s", code, want, out)
		}
	}
}

// TestFleetWriteRate: with traffic on every replica (a running canary
// step, comparisons, adoption counts), each replica writes to etcd at
// most once per publish_interval (its window) and twice per
// share_interval (its two summaries), whatever the traffic: it logs the
// puts per second per replica and the bytes etcd received.
func TestFleetWriteRate(t *testing.T) {
	const interval = 250 * time.Millisecond
	e := testkit.StartEtcd(t)
	b := newShopBackends(t, true)
	gws := make([]*testkit.Gateway, 3)
	for i := range gws {
		gws[i] = startGW(t, fmt.Sprintf("cluster:\n  node: node%d\n  etcd: {endpoints: [%q], prefix: %q, dial_timeout: 3s, request_timeout: 1s}\n"+
			"  publish_interval: %v\n  share_interval: %v\n  lease_ttl: 2s\n", i+1, e.URL, "/"+t.Name()+"/", interval, interval)+
			b.routes(`    rollout:
      start: auto
      interval: 100ms
      steps:
        - canary: {weight: 50, min_requests: 100000000}
        - promote: {}
`))
	}
	for _, g := range gws {
		testkit.Wait.UntilTrue(t, "the canary step running", func() bool { return status(t, g, "shop").Weight == 50 })
	}
	tr := startTrafficAll(t, urls(gws, "/shop/1"), "user-", 6, 500)
	testkit.Wait.UntilTrue(t, "traffic", func() bool { return tr.sent.Load() > 300 })
	puts := func() float64 { return e.Metric("etcd_mvcc_put_total") }
	bytesIn := func() float64 { return e.Metric("etcd_network_client_grpc_received_bytes_total") }
	summaries := func() (n float64) {
		for _, g := range gws {
			n += g.Metric(t, "umbra_cluster_summaries_published_total")
		}
		return n
	}
	p0, b0, s0, r0, start := puts(), bytesIn(), summaries(), tr.sent.Load(), time.Now()
	time.Sleep(4 * time.Second)
	p1, b1, s1, r1, elapsed := puts(), bytesIn(), summaries(), tr.sent.Load(), time.Since(start)
	tr.Stop()
	perReplica := (p1 - p0) / 3 / elapsed.Seconds()
	// Per replica: a window and two summaries per interval; the leader
	// also writes the state at each evaluation that holds (every 100 ms),
	// a third of that per replica.
	bound := 3/interval.Seconds() + 10.0/3 + 1
	var sizes []string
	for _, kind := range []string{"compare", "adoption"} {
		sizes = append(sizes, fmt.Sprintf("%s %.0f B", kind, gws[0].Metric(t, "umbra_cluster_summary_bytes", "kind", kind)))
	}
	t.Logf("%d requests in %v (%.0f/s): %.2f etcd puts per second per replica (bound %.1f), of which %.2f summaries; %.0f bytes per second per replica; summary sizes %s",
		r1-r0, elapsed.Round(time.Millisecond), float64(r1-r0)/elapsed.Seconds(), perReplica, bound,
		(s1-s0)/3/elapsed.Seconds(), (b1-b0)/3/elapsed.Seconds(), strings.Join(sizes, ", "))
	if summaryRate := (s1 - s0) / 3 / elapsed.Seconds(); summaryRate > 2/interval.Seconds()+0.5 {
		t.Errorf("%.2f summaries per second per replica, more than two per share_interval", summaryRate)
	}
	if perReplica > bound {
		t.Errorf("%.2f etcd puts per second per replica; the bound by time is %.1f", perReplica, bound)
	}
	if tr.errs.Load() != 0 || tr.failed.Load() != 0 {
		t.Errorf("%d requests failed, %d answered 5xx", tr.errs.Load(), tr.failed.Load())
	}
}
