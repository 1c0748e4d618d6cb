package comparetest

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/test/testkit"
)

// umbra builds cmd/umbra once per test binary (plain build: the CLI is a
// client of the gateway under test, not the code under test for races).
func umbra(t *testing.T) string {
	t.Helper()
	return testkit.Umbra(t, testkit.Build{})
}

func TestMain(m *testing.M) { testkit.Main(m) }

// run runs the CLI and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return testkit.Run(t, umbra(t), args...)
}

// 13. `umbra diff` prints the report as a table or JSON, and says clearly
// when the admin API cannot be reached.
func TestDiffCLI(t *testing.T) {
	t.Parallel()
	umbra(t) // build while nothing else is measured
	tr := newTrio(t, item("10"), item("12"))
	g := start(t, "", tr.expand(itemsRoute))
	sendItems(t, g, 0, 4)
	g.wait(t, "items", getEP, 4)

	out, stderr, code := run(t, "diff", "--admin", g.AdminURL)
	if code != 0 {
		t.Fatalf("umbra diff: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"route items", "candidate v2", "secondary v1b", getEP, "REGRESSION $.price", "value:4"} {
		if !strings.Contains(out, want) {
			t.Errorf("umbra diff output lacks %q:\n%s", want, out)
		}
	}
	// The address may be given without a scheme.
	if out2, _, code := run(t, "diff", "--admin", strings.TrimPrefix(g.AdminURL, "http://"), "--route", "items"); code != 0 || !strings.Contains(out2, "REGRESSION $.price") {
		t.Errorf("umbra diff --admin host:port --route items: exit %d\n%s", code, out2)
	}

	out, stderr, code = run(t, "diff", "--admin", g.AdminURL, "--json")
	if code != 0 {
		t.Fatalf("umbra diff --json: exit %d\n%s", code, stderr)
	}
	var rep diffs.Report
	if !json.Valid([]byte(out)) || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("umbra diff --json printed invalid JSON:\n%s", out)
	}
	if len(rep.Routes) != 1 || rep.Routes[0].Route != "items" || len(rep.Routes[0].Endpoints) != 1 ||
		len(rep.Routes[0].Endpoints[0].Regressions) != 1 || rep.Routes[0].Endpoints[0].Regressions[0].Field != "$.price" {
		t.Errorf("umbra diff --json: %+v", rep)
	}

	// Nothing listens on a port we just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	out, stderr, code = run(t, "diff", "--admin", "http://"+dead)
	if code == 0 {
		t.Errorf("umbra diff against a dead admin address exited 0:\n%s", out)
	}
	if !strings.Contains(stderr, dead) || !strings.Contains(stderr, "is umbra running") {
		t.Errorf("umbra diff against a dead admin address: stderr %q, want the address and a hint", stderr)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("umbra diff printed a report for a dead address:\n%s", out)
	}
}

// `umbra diff --samples` prints a regression's sample pairs (statuses,
// latencies and differing values side by side) and `--reset` forgets an
// endpoint's or a route's results; bad flag combinations exit 2.
func TestDiffCLISamplesAndReset(t *testing.T) {
	t.Parallel()
	umbra(t)
	tr := newTrio(t, item("10"), item("12"))
	g := start(t, "", tr.expand(itemsRoute))
	sendItems(t, g, 0, 3)
	g.wait(t, "items", getEP, 3)

	out, stderr, code := run(t, "diff", "--admin", g.AdminURL, "--samples")
	if code != 0 {
		t.Fatalf("umbra diff --samples: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"route items", "field $.price: REGRESSION", "sample 1:", "LIVE", "CANDIDATE", "SECONDARY", "status", "* $.price", "10", "12"} {
		if !strings.Contains(out, want) {
			t.Errorf("umbra diff --samples lacks %q:\n%s", want, out)
		}
	}
	out, _, code = run(t, "diff", "--admin", g.AdminURL, "--samples", "--route", "items", "--endpoint", getEP, "--field", "$.price", "--json")
	var sets []struct {
		Field   string         `json:"field"`
		Samples []diffs.Sample `json:"samples"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &sets) != nil || len(sets) != 1 || sets[0].Field != "$.price" || len(sets[0].Samples) == 0 {
		t.Errorf("umbra diff --samples --field $.price --json: exit %d\n%s", code, out)
	}
	if _, stderr, code := run(t, "diff", "--admin", g.AdminURL, "--samples", "--route", "items", "--field", "$.nope"); code != 1 || !strings.Contains(stderr, "$.nope") {
		t.Errorf("unknown field: exit %d, stderr %q", code, stderr)
	}
	for _, args := range [][]string{{"--field", "$.price"}, {"--samples", "--reset"}, {"--samples", "--field", "$.price"},
		{"--reset", "--route", "items", "--field", "$.price"}, {"--reset", "--endpoint", getEP}} {
		if _, stderr, code := run(t, append([]string{"diff", "--admin", g.AdminURL}, args...)...); code != 2 {
			t.Errorf("umbra diff %v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}

	out, stderr, code = run(t, "diff", "--admin", g.AdminURL, "--reset", "--route", "items", "--endpoint", getEP)
	if code != 0 || !strings.Contains(out, "Reset route items endpoint "+getEP+": 1 endpoints forgotten") {
		t.Fatalf("umbra diff --reset --route items --endpoint %q: exit %d\n%s%s", getEP, code, out, stderr)
	}
	if _, ok := g.endpoint(t, "items", getEP); ok {
		t.Errorf("%s still has results after its reset", getEP)
	}
	if _, stderr, code := run(t, "diff", "--admin", g.AdminURL, "--reset", "--route", "items", "--endpoint", "GET /nope"); code != 1 || !strings.Contains(stderr, "404") {
		t.Errorf("resetting an unknown endpoint: exit %d, stderr %q; want 1 and the API's 404", code, stderr)
	}

	sendItems(t, g, 3, 2)
	g.wait(t, "items", getEP, 2)
	out, stderr, code = run(t, "diff", "--admin", g.AdminURL, "--reset", "--route", "items")
	if code != 0 || !strings.Contains(out, "Reset route items: 1 endpoints forgotten") {
		t.Fatalf("umbra diff --reset --route items: exit %d\n%s%s", code, out, stderr)
	}
	if rep := g.report(t, "items"); len(rep.Routes) != 1 || len(rep.Routes[0].Endpoints) != 0 {
		t.Errorf("after the reset the report still has %+v", rep.Routes)
	}
}
