package rollouttest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/umbragw/umbra/internal/rollout"
	"github.com/umbragw/umbra/test/testkit"
)

// TestShadowStepRetryAfterFix: a v2 whose answers differ rolls the shadow
// step back; once v2 is fixed, `umbra rollout start` runs the step again
// and it passes, judged only on the comparisons made during it. (The field
// rates were cumulative since the counters began, so the broken answers
// rolled the retried step back again.)
func TestShadowStepRetryAfterFix(t *testing.T) {
	t.Parallel()
	v1, v1b := newBackend(t, "v1"), newBackend(t, "v1-secondary")
	var broken atomic.Bool
	broken.Store(true)
	var v2hits atomic.Int64
	v2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v2hits.Add(1)
		w.Header().Set(servedBy, "v2")
		w.Header().Set("Content-Type", "application/json")
		// The same body as the test backends', but "ok" is wrong while broken.
		fmt.Fprintf(w, `{"user":%q,"path":%q,"ok":%t}`, r.Header.Get("X-User-ID"), r.URL.Path, !broken.Load())
	}))
	t.Cleanup(v2.Close)
	g := startGW(t, testkit.Backends("v1", v1.URL, "v1-secondary", v1b.URL, "v2", v2.URL)+`
routes:
  - name: checkout
    match: {path_prefix: /checkout}
    backend: v1
    key: "header:X-User-ID"
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1-secondary, ignore_headers: [X-Served-By]}
    canary: {backend: v2, weight: 0}
    rollout:
      interval: 100ms
      steps:
        - shadow: {min_requests: 60, max_diff_rate: 0.01}
        - promote: {}
`)

	mustCommand(t, g, "checkout", "start")
	tr := startTraffic(t, g.URL+"/checkout/cart", "user-", 4, 5000)
	st := waitPhase(t, g, "checkout", rollout.RolledBack)
	tr.Stop()
	if d := last(st); d.Action != "rollback" || !strings.Contains(d.Reason, "$.ok") {
		t.Fatalf("broken v2: %s", dump(st.Decisions))
	}
	// Every copy sent so far is compared before the fix, so the broken
	// answers all count before the new step's baseline.
	testkit.Wait.UntilTrue(t, "every copy compared", func() bool {
		var n int64
		for _, rr := range g.Diffs().Report("checkout").Routes {
			for _, e := range rr.Endpoints {
				n += e.Compared + e.Skipped["candidate_error"]
			}
		}
		return n == v2hits.Load()
	})
	brokenCompared := v2hits.Load()

	broken.Store(false)
	mustCommand(t, g, "checkout", "start")
	tr = startTraffic(t, g.URL+"/checkout/cart", "again-", 4, 5000)
	st = waitPhase(t, g, "checkout", rollout.Promoted)
	tr.Stop()
	mv := moves(st.Decisions)
	if actions(mv) != "start,complete" {
		t.Fatalf("after the fix: decisions %s:\n%s", actions(mv), dump(st.Decisions))
	}
	in := mv[1].Inputs
	if in["worst_diff_rate"] != 0 || in["compared"] < 60 {
		t.Errorf("the retried step was judged on %v", in)
	}
	// The broken answers are still in the report (evidence), only not in
	// the step's judgement.
	if brokenCompared < 60 || len(g.Diffs().Report("checkout").Routes[0].Endpoints[0].Regressions) == 0 {
		t.Errorf("%d broken answers compared; report %+v", brokenCompared, g.Diffs().Report("checkout"))
	}
}
