package egresstest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/test/testkit"
)

// The core promise: with v2 shadowed at 100% and writes allowed, the
// provider sees each live checkout exactly once, over thousands of
// concurrent checkouts whose calls (two to one endpoint, then a read)
// interleave; every copy, v2's and the secondary's, gets the answers its
// own live checkout got; v2's extra call is never forwarded and is
// reported, its changed currency is a regression and the timestamp noise.
func TestShadowedCheckoutsChargeOnce(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	s := start(t, options{})
	answers := s.run(t, "co", n, 64)

	defer func() {
		if t.Failed() {
			for i := range 3 {
				id := fmt.Sprintf("co-%05d", i)
				a, _ := s.v1b.answerOf(id)
				b, _ := s.v2.answerOf(id)
				t.Logf("%s live %s v1b %s v2 %s", id, answers[id], a, b)
			}
			m := movedMetrics(t, s)
			t.Logf("metrics:\n%s", m)
		}
	}()
	testkit.Slow.Until(t, "every copy answered", func() (bool, string) {
		return s.v2.count() == n && s.v1b.count() == n, fmt.Sprintf("v2 %d, v1b %d of %d", s.v2.count(), s.v1b.count(), n)
	})
	charges, gets, fraud := s.prov.snapshot()
	for id, a := range answers {
		if !strings.HasPrefix(a, "200 ") {
			t.Fatalf("live checkout %s answered %s", id, a)
		}
		for _, kind := range []string{"charge", "fee"} {
			if c := charges[id+"/"+kind]; c != 1 {
				t.Errorf("provider saw %d %s charges for %s, want exactly 1", c, kind, id)
			}
		}
		var live struct {
			ChargeID string `json:"charge_id"`
		}
		json.Unmarshal([]byte(strings.TrimPrefix(a, "200 ")), &live)
		if g := gets[live.ChargeID]; g != 1 {
			t.Errorf("provider saw %d reads of %s's charge, want 1", g, id)
		}
		// Each copy got its own live checkout's answers, no other's.
		for name, c := range map[string]*checkout{"v2": s.v2, "v1b": s.v1b} {
			got, _ := c.answerOf(id)
			if got != strings.TrimPrefix(a, "200 ") {
				t.Errorf("%s's answer to %s = %s, live %s", name, id, got, a)
			}
		}
	}
	if len(charges) != 2*n || s.prov.total.Load() != int64(3*n) {
		t.Errorf("provider got %d requests (%d charge keys), want %d (%d)", s.prov.total.Load(), len(charges), 3*n, 2*n)
	}
	if len(fraud) != 0 {
		t.Errorf("v2's fraud check reached the provider %d times", len(fraud))
	}
	if v := s.gw.Metric(t, "umbra_egress_shadow_leaked_total"); v != 0 {
		t.Errorf("umbra_egress_shadow_leaked_total = %v", v)
	}
	if v := s.gw.Metric(t, "umbra_egress_requests_total", "service", "payments", "role", "live", "outcome", "forwarded"); v != float64(3*n) {
		t.Errorf("live forwarded = %v, want %d", v, 3*n)
	}
	// v2: 3 replayed + the fraud check unmatched; v1b: 3 replayed.
	if v := s.gw.Metric(t, "umbra_egress_requests_total", "service", "payments", "role", "shadow", "outcome", "replayed"); v != float64(6*n) {
		t.Errorf("shadow replayed = %v, want %d", v, 6*n)
	}
	if v := s.gw.Metric(t, "umbra_egress_requests_total", "service", "payments", "role", "shadow", "outcome", "unmatched"); v != float64(n) {
		t.Errorf("shadow unmatched = %v, want %d", v, n)
	}

	var rep diffs.Report
	testkit.Slow.Until(t, "outbound calls compared", func() (bool, string) {
		s.gw.GetJSON(t, "/api/v1/diffs", &rep)
		ep, ok := testkit.Endpoint(rep, "egress payments POST /v1/charges")
		return ok && ep.Compared == int64(2*n), fmt.Sprintf("%+v", ep)
	})
	charge, _ := testkit.Endpoint(rep, "egress payments POST /v1/charges")
	if f, ok := testkit.Field("$.currency", charge.Regressions); !ok || f.Raw != int64(2*n) {
		t.Errorf("$.currency is not a regression of every charge: %+v", charge)
	}
	if _, ok := testkit.Field("$.ts", charge.Noise); !ok {
		t.Errorf("$.ts (a timestamp) is not noise: %+v", charge)
	}
	if f, ok := testkit.Field("$.ts", charge.Regressions); ok {
		t.Errorf("$.ts reported as a regression: %+v", f)
	}
	if f, ok := testkit.Field("header:Authorization", charge.Regressions); ok {
		t.Errorf("redacted Authorization differs: %+v", f)
	}
	get, ok := testkit.Endpoint(rep, "egress payments GET /v1/charges/{id}")
	if !ok || get.Compared != int64(n) || get.Differing != 0 {
		t.Errorf("the charge read (same in v1 and v2) = %+v", get)
	}
	extra, ok := testkit.Endpoint(rep, "egress payments POST /v1/fraud-check")
	if !ok {
		t.Fatalf("the extra call is not reported: %+v", rep)
	}
	if f, ok := testkit.Field(diffs.FieldCall, extra.Regressions); !ok || f.Kinds["extra"] != int64(n) {
		t.Errorf("the extra call is not a regression of kind extra: %+v", extra)
	}
	// The answers themselves are equal: v2 got v1's recorded answers.
	var ans *diffs.EndpointReport
	for _, r := range rep.Routes {
		for i, ep := range r.Endpoints {
			if !strings.HasPrefix(ep.Endpoint, "egress ") {
				ans = &r.Endpoints[i]
			}
		}
	}
	if ans == nil || ans.Compared != int64(n) || ans.Differing != 0 {
		t.Errorf("answers differ though v2 was replayed v1's calls: %+v", ans)
	}
}
