package rollouttest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/rollout"

	"github.com/umbragw/umbra/test/testkit"
)

// TestHealthyRolloutPromotes: a v2 that answers like v1 goes through the
// whole plan on its own (shadow with compare and a secondary, canary 10,
// canary 50, promote), every move explained, and then serves everyone.
func TestHealthyRolloutPromotes(t *testing.T) {
	t.Parallel()
	v1, v1b, v2 := newBackend(t, "v1"), newBackend(t, "v1-secondary"), newBackend(t, "v2")
	g := startGW(t, testkit.Backends("v1", v1.URL, "v1-secondary", v1b.URL, "v2", v2.URL)+fmt.Sprintf(`
routes:
  - name: checkout
    match: {path_prefix: /checkout}
    backend: v1
    key: "header:X-User-ID"
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1-secondary, ignore_headers: [X-Served-By]}
    canary: {backend: v2, weight: 0, override_header: X-Umbra-Version}
    rollout:
      start: auto
      interval: 100ms
      steps:
        - shadow: {min_requests: 60}
        - canary: {weight: 10, min_requests: 40}
        - canary: {weight: 50, min_requests: 40}
        - promote: {}
      %s
`, calm))

	tr := startTraffic(t, g.URL+"/checkout/cart", "user-", 4, 5000)
	st := waitPhase(t, g, "checkout", rollout.Promoted)
	tr.Stop()

	if st.Weight != 100 || st.Step != 3 || st.StepKind != "promote" {
		t.Errorf("promoted at step %d (%s) weight %v, want step 4 (promote) at 100", st.Step+1, st.StepKind, st.Weight)
	}
	mv := moves(st.Decisions)
	if actions(mv) != "start,promote,promote,complete" {
		t.Fatalf("decisions %s, want start,promote,promote,complete:\n%s", actions(mv), dump(st.Decisions))
	}
	wantWeights := []float64{0, 10, 50, 100}
	for i, d := range mv {
		if d.Reason == "" {
			t.Errorf("decision %d (%s) has no reason", i, d.Action)
		}
		if d.Weight != wantWeights[i] || d.Step != i {
			t.Errorf("decision %d (%s) at step %d weight %v, want step %d weight %v", i, d.Action, d.Step+1, d.Weight, i+1, wantWeights[i])
		}
		if d.Action == "start" {
			continue // nothing was measured yet
		}
		if len(d.Inputs) == 0 {
			t.Errorf("decision %d (%s) has no inputs", i, d.Action)
		}
	}
	// The shadow step passed on compared answers, the canary steps on the
	// observed requests of both versions.
	if in := mv[1].Inputs; in["compared"] < 60 || in["worst_diff_rate"] != 0 || !strings.Contains(mv[1].Reason, "answers compared") {
		t.Errorf("shadow step decision %q %v", mv[1].Reason, in)
	}
	for _, d := range mv[2:] {
		in := d.Inputs
		if in["canary_requests"] < 40 || in["live_requests"] < 40 || in["canary_error_rate"] != 0 {
			t.Errorf("canary decision %q %v", d.Reason, in)
		}
		for _, k := range []string{"error_p_value", "latency_p_value", "latency_shift_ratio"} {
			if _, ok := in[k]; !ok {
				t.Errorf("canary decision lacks %s: %v", k, in)
			}
		}
		if !strings.Contains(d.Reason, "canary no worse than live") {
			t.Errorf("canary decision reason %q", d.Reason)
		}
	}
	if !strings.Contains(mv[3].Reason, "the canary now serves everyone") {
		t.Errorf("complete reason %q", mv[3].Reason)
	}
	if n := tr.served("v2"); n == 0 {
		t.Error("no request was served by v2 during the canary steps")
	}
	if v1b.hits.Load() == 0 {
		t.Error("the secondary got no copies")
	}

	// Everyone is on v2 now, callers never seen before included.
	got := assign(t, testkit.NewClient(t, 64, testkit.Wait.Timeout), g.URL+"/checkout/cart", users("after-", 300), 4)
	for u, by := range got {
		if by != "v2" {
			t.Fatalf("after promotion %s was served by %q", u, by)
		}
	}
	ms := g.Scrape(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"umbra_rollout_weight_percent", map[string]string{"route": "checkout"}, 100},
		{"umbra_rollout_step", map[string]string{"route": "checkout"}, 4},
		{"umbra_rollout_phase", map[string]string{"route": "checkout", "phase": "promoted"}, 1},
		{"umbra_rollout_phase", map[string]string{"route": "checkout", "phase": "running"}, 0},
		{"umbra_rollout_decisions_total", map[string]string{"route": "checkout", "action": "promote"}, 2},
		{"umbra_rollout_decisions_total", map[string]string{"route": "checkout", "action": "complete"}, 1},
	} {
		if v, ok := ms.Sum(c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
}

// TestErrorRateRollsBack: a v2 failing 5% of its requests is rolled back
// at its first canary step by the error-rate analysis (the burst rule is
// out of reach here), and everyone is back on v1.
func TestErrorRateRollsBack(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	v2.failEvery.Store(20)
	g := startGW(t, testkit.Backends("v1", v1.URL, "v2", v2.URL)+`
routes:
  - name: api
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2}
    rollout:
      start: auto
      interval: 100ms
      steps:
        - canary: {weight: 20, min_requests: 200}
        - canary: {weight: 50, min_requests: 200}
        - promote: {}
      analysis: {burst: {min_errors: 1000}}
`)

	tr := startTraffic(t, g.URL+"/api/orders", "user-", 4, 5000)
	st := waitPhase(t, g, "api", rollout.RolledBack)
	if st.Weight != 0 || st.Step != 0 {
		t.Errorf("rolled back at step %d weight %v, want step 1 weight 0", st.Step+1, st.Weight)
	}
	if actions(moves(st.Decisions)) != "start,rollback" {
		t.Fatalf("decisions:\n%s", dump(st.Decisions))
	}
	d := last(st)
	if !strings.Contains(d.Reason, "error rate") || strings.Contains(d.Reason, "burst") {
		t.Errorf("rollback reason %q, want the error-rate analysis", d.Reason)
	}
	in := d.Inputs
	if cr := in["canary_error_rate"]; cr < 0.04 || cr > 0.06 {
		t.Errorf("canary_error_rate %v, want about 0.05 (inputs %v)", cr, in)
	}
	if lr, ok := in["live_error_rate"]; !ok || lr != 0 {
		t.Errorf("live_error_rate %v (%v)", lr, ok)
	}
	if p, ok := in["error_p_value"]; !ok || p >= 0.02 {
		t.Errorf("error_p_value %v (%v), want significant", p, ok)
	}
	if in["canary_requests"] < 200 || in["live_requests"] < 200 {
		t.Errorf("judged before min_requests: %v", in)
	}
	// Once the rollback is recorded, nobody is sent to v2 any more, the
	// callers that were on the canary included.
	tr.Stop()
	before := v2.hits.Load()
	got := assign(t, testkit.NewClient(t, 64, testkit.Wait.Timeout), g.URL+"/api/orders", users("user-", 500), 4)
	for u, by := range got {
		if by != "v1" {
			t.Fatalf("after the rollback %s was served by %q", u, by)
		}
	}
	if after := v2.hits.Load(); after != before {
		t.Errorf("v2 got %d requests after the rollback", after-before)
	}
	ms := g.Scrape(t)
	if v, _ := ms.Sum("umbra_rollout_phase", map[string]string{"route": "api", "phase": "rolled_back"}); v != 1 {
		t.Errorf("umbra_rollout_phase{rolled_back} = %v", v)
	}
	if v, _ := ms.Sum("umbra_rollout_decisions_total", map[string]string{"route": "api", "action": "rollback"}); v != 1 {
		t.Errorf("umbra_rollout_decisions_total{rollback} = %v", v)
	}
	if v, _ := ms.Sum("umbra_rollout_weight_percent", map[string]string{"route": "api"}); v != 0 {
		t.Errorf("umbra_rollout_weight_percent = %v", v)
	}
}

// TestLatencyRollsBack: a v2 30% slower than v1 (200 ms against 260 ms,
// with jitter) and otherwise healthy is rolled back on the latency shift.
//
// Not parallel: umbra measures latency at the gateway, so the gateway's own
// time o is part of both versions' samples and dilutes the ratio
// ((260+o)/(200+o) must stay above 1.2). Run alone, o is a millisecond or
// two even under -race; beside the other tests' traffic on two cores it
// reached 20 ms, which broke 40 ms against 52 ms ((52+20)/(40+20) = 1.2).
// At these delays o would have to reach 100 ms for the ratio to fall to 1.2.
func TestLatencyRollsBack(t *testing.T) {
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	v1.delay.Store(int64(200 * time.Millisecond))
	v2.delay.Store(int64(260 * time.Millisecond))
	v1.jitter.Store(int64(20 * time.Millisecond))
	v2.jitter.Store(int64(20 * time.Millisecond))
	g := startGW(t, testkit.Backends("v1", v1.URL, "v2", v2.URL)+`
routes:
  - name: api
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2}
    rollout:
      start: auto
      interval: 100ms
      steps:
        - canary: {weight: 50, min_requests: 100}
        - promote: {}
      # max_increase stays at its default 1.2; the p99 rule is set out of
      # reach so that the reason is the median shift.
      analysis: {latency: {max_p99_ratio: 10}, burst: {min_errors: 1000}}
`)

	tr := startTraffic(t, g.URL+"/api/slow", "user-", 24, 5000) // ~100 requests/s: mostly waiting
	st := waitPhase(t, g, "api", rollout.RolledBack)
	tr.Stop()
	d := last(st)
	if d.Action != "rollback" || st.Weight != 0 {
		t.Fatalf("decisions:\n%s", dump(st.Decisions))
	}
	for _, want := range []string{"latency", "Hodges-Lehmann", "Mann-Whitney"} {
		if !strings.Contains(d.Reason, want) {
			t.Errorf("rollback reason %q lacks %q", d.Reason, want)
		}
	}
	if r := d.Inputs["latency_shift_ratio"]; r < 1.2 || r > 1.4 {
		t.Errorf("latency_shift_ratio %v, want about 1.3", r)
	}
	if p, ok := d.Inputs["latency_p_value"]; !ok || p >= 0.02 {
		t.Errorf("latency_p_value %v (%v)", p, ok)
	}
	if d.Inputs["canary_error_rate"] != 0 {
		t.Errorf("canary errors: %v", d.Inputs)
	}
}

// TestQuietServiceHolds: with too little traffic the step holds, says
// what it still needs, stays running, and repeating the same hold does
// not fill the decision history.
func TestQuietServiceHolds(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	g := startGW(t, testkit.Backends("v1", v1.URL, "v2", v2.URL)+`
routes:
  - name: quiet
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2}
    rollout:
      start: auto
      interval: 100ms
      steps:
        - canary: {weight: 10, min_requests: 100}
        - promote: {}
`)

	got := assign(t, testkit.NewClient(t, 64, testkit.Wait.Timeout), g.URL+"/q", users("quiet-", 40), 1)
	var canaryN, liveN int
	for _, by := range got {
		if by == "v2" {
			canaryN++
		} else {
			liveN++
		}
	}
	want := fmt.Sprintf("waiting for %d more canary requests and %d more live requests", 100-canaryN, 100-liveN)
	// The hold reflecting the final counts appears, then the controller
	// keeps evaluating without adding to the history.
	var st rollout.Status
	testkit.Wait.UntilTrue(t, "a hold with the final counts", func() bool {
		st = status(t, g, "quiet")
		return last(st).Action == "hold" && last(st).Reason == want
	})
	n := len(st.Decisions)
	at := last(st).At
	holds := func() float64 {
		v, _ := g.Scrape(t).Sum("umbra_rollout_decisions_total", map[string]string{"route": "quiet", "action": "hold"})
		return v
	}
	h0 := holds()
	testkit.Wait.UntilTrue(t, "five more evaluations", func() bool { return holds() >= h0+5 })
	st = status(t, g, "quiet")
	if st.Phase != rollout.Running || st.Step != 0 || st.Weight != 10 {
		t.Errorf("quiet rollout: phase %s step %d weight %v", st.Phase, st.Step+1, st.Weight)
	}
	d := last(st)
	if d.Action != "hold" || d.Reason != want {
		t.Errorf("latest decision %s %q, want hold %q", d.Action, d.Reason, want)
	}
	if d.Inputs["canary_requests"] != float64(canaryN) || d.Inputs["live_requests"] != float64(liveN) {
		t.Errorf("hold inputs %v, want %d canary and %d live requests", d.Inputs, canaryN, liveN)
	}
	if !d.At.After(at) {
		t.Errorf("the kept hold is not refreshed: %v then %v", at, d.At)
	}
	if len(st.Decisions) != n {
		t.Errorf("identical holds piled up: %d decisions, then %d:\n%s", n, len(st.Decisions), dump(st.Decisions))
	}
	for i := 1; i < len(st.Decisions); i++ {
		a, b := st.Decisions[i-1], st.Decisions[i]
		if a.Action == "hold" && b.Action == "hold" && a.Reason == b.Reason {
			t.Errorf("decisions %d and %d are the same hold %q", i, i+1, a.Reason)
		}
	}
}

// TestErrorBurstRollsBackAtOnce: v2 starts failing every request in the
// middle of a step. The burst rule takes the canary's weight to 0 on the
// request that completes the burst, so v2 answers at most min_errors
// failing requests plus the ones already in flight, and the rollback is
// recorded long before the next evaluation is due.
func TestErrorBurstRollsBackAtOnce(t *testing.T) {
	t.Parallel()
	const minErrors, workers = 10, 4
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	g := startGW(t, testkit.Backends("v1", v1.URL, "v2", v2.URL)+fmt.Sprintf(`
routes:
  - name: burst
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2}
    rollout:
      start: auto
      interval: 5s     # the burst must not wait for it
      steps:
        - canary: {weight: 50, min_requests: 1000000}
        - promote: {}
      # window 40: 10 failures are a rate of 0.25, above min_increase, so
      # min_errors is what decides.
      analysis: {burst: {window: 40, min_errors: %d, min_increase: 0.2}}
`, minErrors))

	tr := startTraffic(t, g.URL+"/b", "user-", workers, 5000)
	testkit.Wait.UntilTrue(t, "v2 serving its share", func() bool { return v2.hits.Load() >= 60 })
	if st := status(t, g, "burst"); st.Phase != rollout.Running || st.Weight != 50 {
		t.Fatalf("before the burst: %+v", st.State)
	}
	v2.failAll()
	st := waitPhase(t, g, "burst", rollout.RolledBack)
	// Let traffic flow on: nothing more may reach v2.
	n := tr.sent.Load()
	testkit.Wait.UntilTrue(t, "200 more requests", func() bool { return tr.sent.Load() >= n+200 })
	tr.Stop()

	if f := v2.fails.Load(); f < minErrors || f > minErrors+workers {
		t.Errorf("v2 answered %d failing requests, want between %d and min_errors+concurrency = %d", f, minErrors, minErrors+workers)
	}
	if v2.hits.Load()-v2.fails.Load() < 60 {
		t.Errorf("hits %d fails %d", v2.hits.Load(), v2.fails.Load())
	}
	d := last(st)
	if d.Action != "rollback" || !strings.HasPrefix(d.Reason, "error burst: ") || st.Weight != 0 {
		t.Fatalf("decisions:\n%s", dump(st.Decisions))
	}
	if r := d.Inputs["canary_recent_error_rate"]; r < 0.25 {
		t.Errorf("canary_recent_error_rate %v (inputs %v)", r, d.Inputs)
	}
	if _, ok := d.Inputs["live_recent_error_rate"]; !ok {
		t.Errorf("inputs %v", d.Inputs)
	}
	first := time.Unix(0, v2.firstFail.Load())
	if delay := d.At.Sub(first); delay > 2*time.Second {
		t.Errorf("rollback recorded %v after the first failure; the interval is 5s, the burst must not wait for it", delay)
	}
}
