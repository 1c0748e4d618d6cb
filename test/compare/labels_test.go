package comparetest

import (
	"testing"

	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/test/testkit"
)

// TestCompareMetricEndpointsBounded: invented methods share the OTHER label,
// so clients cannot create metric series at will.
func TestCompareMetricEndpointsBounded(t *testing.T) {
	tr := newTrio(t, item("10"), item("12"))
	g := start(t, "", "comparison: {max_endpoints: 2}\n"+tr.expand(`routes:
  - name: items
    match: {path: "/v1/items/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100, unsafe: allow}]
    compare: {}
`))
	for _, m := range []string{"GET", "M1", "M2", "M3", "M4", "M5"} {
		g.do(t, m, "/v1/items/1", nil)
	}
	testkit.Wait.UntilTrue(t, "6 counted", func() bool { return g.compareTotal(t, "items", "", "") == 6 })
	eps := map[string]bool{}
	for _, s := range g.Scrape(t).Named("umbra_compare_total") {
		eps[s.Labels["endpoint"]] = true
	}
	if len(eps) != 2 || !eps["GET /v1/items/{id}"] || !eps["OTHER /v1/items/{id}"] {
		t.Errorf("endpoint label values %v, want GET and OTHER only", eps)
	}
}

// TestLiveFailureIsNotBlamedOnTheCandidate: when the live upstream fails,
// umbra's own 502 is not compared with the candidate's answer.
func TestLiveFailureIsNotBlamedOnTheCandidate(t *testing.T) {
	tr := newTrio(t, item("10"), item("10"))
	dead := tr.v1.URL
	tr.v1.Close() // the live version is down
	g := start(t, "", tr.expand(`routes:
  - name: items
    match: {path: "/v1/items/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {}
`))
	for i := 0; i < 3; i++ {
		if r := g.do(t, "GET", "/v1/items/1", nil); r.Status != 502 {
			t.Fatalf("live down (%s): status %d, want 502", dead, r.Status)
		}
	}
	testkit.Wait.UntilTrue(t, "3 live_error", func() bool { return g.compareTotal(t, "items", "", diffs.ResultLiveError) == 3 })
	if n := g.compareTotal(t, "items", "", diffs.ResultDifferent); n != 0 {
		t.Errorf("%v exchanges with a failed live answer were compared as different", n)
	}
}
