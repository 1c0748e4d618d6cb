package egresstest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/egress"
	"github.com/umbragw/umbra/internal/rollout"
	"github.com/umbragw/umbra/test/testkit"
)

// fraudSimulation is a hand-written Hoverfly v5 file for the call only v2
// makes: glob path, jsonpath body, exact method.
const fraudSimulation = `{
  "data": {"pairs": [{
    "request": {"method": [{"matcher": "exact", "value": "POST"}],
                "path": [{"matcher": "glob", "value": "/v1/fraud*"}],
                "body": [{"matcher": "jsonpath", "value": "$.checkout_id"}]},
    "response": {"status": 200, "body": "{\"risk\":\"simulated\"}", "headers": {"Content-Type": ["application/json"]}}
  }]},
  "meta": {"schemaVersion": "v5", "hoverflyVersion": "v1.5.0"}
}`

// Live calls are exported as a Hoverfly v5 simulation; a second umbra
// imports that file and a hand-written one: v2's extra call is simulated,
// and shadow calls repeating the exported requests get the exported
// answers, with nothing forwarded.
func TestHoverflyImportExportReimport(t *testing.T) {
	const n = 10
	a := start(t, options{route: "    key: \"header:X-User-ID\"\n"})
	a.run(t, "h", n, 4)
	resp, err := a.client.Get(a.gw.AdminURL + "/api/v1/egress/payments/simulation")
	if err != nil {
		t.Fatal(err)
	}
	exported, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sim, err := egress.ParseSimulation(exported)
	if err != nil || len(sim.Data.Pairs) != 3*n {
		t.Fatalf("export: %v, %d pairs, want %d:\n%.600s", err, len(sim.Data.Pairs), 3*n, exported)
	}
	for _, p := range sim.Data.Pairs {
		for _, v := range p.Request.Headers {
			t.Fatalf("exported pair matches on headers %v", v)
		}
	}
	if bytes.Contains(exported, []byte("sk_live_secret")) {
		t.Error("the export holds the Authorization secret")
	}
	dir := t.TempDir()
	exportFile, fraudFile := filepath.Join(dir, "export.json"), filepath.Join(dir, "fraud.json")
	os.WriteFile(exportFile, exported, 0o600)
	os.WriteFile(fraudFile, []byte(fraudSimulation), 0o600)

	// The same third party (the exported pairs match on its host).
	b := start(t, options{upstream: a.prov.URL, svc: "      simulations: [" + strconv.Quote(exportFile) + ", " + strconv.Quote(fraudFile) + "]\n"})
	answers := b.run(t, "i", n, 4)
	testkit.Slow.UntilTrue(t, "v2 answered every copy", func() bool { return b.v2.count() == n && b.v1b.count() == n })
	for id, live := range answers {
		if got, _ := b.v2.answerOf(id); "200 "+got != live {
			t.Errorf("v2's answer to %s = %s, live %s", id, got, live)
		}
	}
	if v := b.gw.Metric(t, "umbra_egress_requests_total", "role", "shadow", "outcome", "simulated"); v != n {
		t.Errorf("simulated = %v, want %d (v2's fraud checks)", v, n)
	}
	// Re-import: shadow calls (X-Umbra-Shadow, no trace umbra knows)
	// repeating the exported requests get the exported answers.
	before := a.prov.total.Load()
	for i, p := range sim.Data.Pairs {
		method := p.Request.Method[0].Value.(string)
		path := p.Request.Path[0].Value.(string)
		var body string
		if len(p.Request.Body) > 0 {
			body = p.Request.Body[0].Value.(string)
		}
		req, _ := http.NewRequest(method, "http://"+b.gw.EgressAddr()+"/payments"+path, strings.NewReader(body))
		req.Header.Set("X-Umbra-Shadow", "1")
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != p.Response.Status || string(got) != p.Response.Body {
			t.Errorf("pair %d (%s %s): got %d %s, exported %d %s", i, method, path, resp.StatusCode, got, p.Response.Status, p.Response.Body)
		}
	}
	if a.prov.total.Load() != before {
		t.Errorf("re-imported shadow calls reached the provider")
	}
}

// A regression in the outbound calls fails a rollout's shadow step, as a
// regression in the answers does: v2's answers equal v1's (it is replayed
// v1's calls), but it sends the currency in upper case.
func TestOutboundRegressionRollsBack(t *testing.T) {
	route := shadowRoute + `    canary: {backend: v2, weight: 0}
    rollout:
      start: auto
      interval: 100ms
      steps:
        - shadow: {min_requests: 40, max_diff_rate: 0.05}
        - promote: {}
`
	s := start(t, options{route: route})
	s.run(t, "r", 60, 8)
	var st rollout.Status
	testkit.Slow.Until(t, "the rollout to roll back", func() (bool, string) {
		s.gw.GetJSON(t, "/api/v1/rollouts/checkout", &st)
		return st.Phase == rollout.RolledBack, string(st.Phase)
	})
	last := st.Decisions[len(st.Decisions)-1]
	if last.Action != "rollback" || !strings.Contains(last.Reason, "egress payments") {
		b, _ := json.Marshal(st.Decisions)
		t.Errorf("decisions: %s", b)
	}
}
