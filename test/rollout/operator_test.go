package rollouttest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/rollout"

	"github.com/umbragw/umbra/test/testkit"
)

// TestOperatorCommands: pause keeps the weight and stops evaluating,
// resume goes on, promote passes a step now, abort sends everyone back to
// live; bad commands are refused with 400, 409 and 404; the CLI shows
// the rollout and refuses a command without its route.
func TestOperatorCommands(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	g := startGW(t, testkit.Backends("v1", v1.URL, "v2", v2.URL)+fmt.Sprintf(`
routes:
  - name: ops
    match: {path_prefix: /ops}
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2}
    rollout:
      interval: 100ms
      steps:
        - canary: {weight: 10, min_requests: 20}
        - canary: {weight: 30, min_requests: 1000000}
        - canary: {weight: 60, min_requests: 1000000}
        - promote: {}
      %s
  - name: plain
    match: {path_prefix: /plain}
    backend: v1
`, calm))
	cli := umbraBinary(t)

	// Idle: a manual rollout waits for start; commands of a running
	// rollout are refused with 409.
	st := status(t, g, "ops")
	if st.Phase != rollout.Idle || st.Weight != 0 || len(st.Decisions) != 0 {
		t.Fatalf("before start: %+v", st.State)
	}
	for _, cmd := range []string{"pause", "resume", "promote", "abort"} {
		if code, body := command(t, g, "ops", cmd); code != http.StatusConflict {
			t.Errorf("%s while idle: %d %s, want 409", cmd, code, body)
		}
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/api/v1/rollouts/ops/explode", http.StatusBadRequest},
		{http.MethodPost, "/api/v1/rollouts/nope/start", http.StatusNotFound},
		{http.MethodGet, "/api/v1/rollouts/nope", http.StatusNotFound},
		{http.MethodPost, "/api/v1/rollouts/plain/start", http.StatusNotFound}, // a route without a plan
		{http.MethodGet, "/api/v1/rollouts/plain", http.StatusNotFound},
	} {
		code, body := g.AdminDo(t, c.method, c.path, nil)
		if code != c.want || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s %s: %d %s, want %d with an error body", c.method, c.path, code, body, c.want)
		}
	}

	// The CLI: a command without its route is a usage error.
	if out, code := runCLI(t, cli, "rollout", "start", "--admin", g.AdminURL); code != 2 {
		t.Errorf("umbra rollout start without a route: exit %d, want 2\n%s", code, out)
	}
	if out, code := runCLI(t, cli, "rollout", "start", "ops", "--admin", g.AdminURL); code != 0 || !strings.Contains(out, "route ops: running, step 1 of 4") {
		t.Fatalf("umbra rollout start ops: exit %d\n%s", code, out)
	}
	if out, code := runCLI(t, cli, "rollout", "start", "ops", "--admin", g.AdminURL); code == 0 || !strings.Contains(out, "409") {
		t.Errorf("starting a running rollout: exit %d\n%s", code, out)
	}

	// Pause at once: with traffic flowing, the step would pass in a few
	// evaluations; paused, it must not, and the weight stays 10.
	st = mustCommand(t, g, "ops", "pause")
	if st.Phase != rollout.Paused || st.Weight != 10 || last(st).Action != "pause" {
		t.Fatalf("pause: %+v", st.State)
	}
	nDecisions := len(st.Decisions)
	tr := startTraffic(t, g.URL+"/ops", "user-", 4, 2000)
	pausedAt := time.Now()
	testkit.Wait.UntilTrue(t, "enough traffic for the step and 5 intervals", func() bool {
		return v2.hits.Load() >= 60 && v1.hits.Load() >= 60 && time.Since(pausedAt) > 500*time.Millisecond
	})
	st = status(t, g, "ops")
	if st.Phase != rollout.Paused || st.Step != 0 || st.Weight != 10 || len(st.Decisions) != nDecisions {
		t.Fatalf("paused rollout moved:\n%s", dump(st.Decisions))
	}
	if share := float64(tr.served("v2")) / float64(tr.sent.Load()); share < 0.05 || share > 0.15 {
		t.Errorf("paused at weight 10, v2 served %.1f%% of %d requests", 100*share, tr.sent.Load())
	}

	// Resume: evaluated again, the step passes on the traffic.
	st = mustCommand(t, g, "ops", "resume")
	if st.Phase != rollout.Running || last(st).Action != "resume" {
		t.Fatalf("resume: %+v", st.State)
	}
	st = waitStep(t, g, "ops", 1)
	tr.Stop()
	if st.Weight != 30 || actions(moves(st.Decisions)) != "start,pause,resume,promote" {
		t.Fatalf("after resume:\n%s", dump(st.Decisions))
	}

	// Promote: step 2 cannot pass on its own (min_requests 1e6); the
	// operator passes it.
	st = mustCommand(t, g, "ops", "promote")
	if st.Step != 2 || st.Weight != 60 || st.Phase != rollout.Running || last(st).Action != "promote" ||
		!strings.HasPrefix(last(st).Reason, "step passed by operator") {
		t.Fatalf("promote:\n%s", dump(st.Decisions))
	}
	got := assign(t, testkit.NewClient(t, 64, testkit.Wait.Timeout), g.URL+"/ops", users("probe-", 400), 4)
	onCanary := 0
	for _, by := range got {
		if by == "v2" {
			onCanary++
		}
	}
	if onCanary < 200 || onCanary > 280 { // 60% of 400, σ ≈ 10
		t.Errorf("%d of 400 callers on the canary at weight 60", onCanary)
	}

	// The CLI shows the phase, the plan and the decisions with reasons.
	out, code := runCLI(t, cli, "rollout", "status", "ops", "--admin", g.AdminURL)
	if code != 0 {
		t.Fatalf("umbra rollout status ops: exit %d\n%s", code, out)
	}
	for _, want := range []string{"route ops: running, step 3 of 4 (canary), canary weight 60%", "decisions:",
		"started by operator", "paused by operator", "step passed by operator", "> 3. canary"} {
		if !strings.Contains(out, want) {
			t.Errorf("umbra rollout status ops lacks %q:\n%s", want, out)
		}
	}
	if out, code := runCLI(t, cli, "rollout", "status", "--admin", g.AdminURL); code != 0 || !strings.Contains(out, "route ops: running") {
		t.Errorf("umbra rollout status: exit %d\n%s", code, out)
	}
	if out, code := runCLI(t, cli, "rollout", "status", "nope", "--admin", g.AdminURL); code == 0 || !strings.Contains(out, "404") {
		t.Errorf("umbra rollout status nope: exit %d\n%s", code, out)
	}

	// Abort: everyone back on live, at once.
	st = mustCommand(t, g, "ops", "abort")
	if st.Phase != rollout.Aborted || st.Weight != 0 || last(st).Action != "abort" {
		t.Fatalf("abort: %+v", st.State)
	}
	got = assign(t, testkit.NewClient(t, 64, testkit.Wait.Timeout), g.URL+"/ops", users("probe-", 400), 4)
	for u, by := range got {
		if by != "v1" {
			t.Fatalf("after abort %s was served by %q", u, by)
		}
	}
	for _, cmd := range []string{"pause", "resume", "promote", "abort"} {
		if code, body := command(t, g, "ops", cmd); code != http.StatusConflict {
			t.Errorf("%s after abort: %d %s, want 409", cmd, code, body)
		}
	}
	if v, _ := g.Scrape(t).Sum("umbra_rollout_phase", map[string]string{"route": "ops", "phase": "aborted"}); v != 1 {
		t.Errorf("umbra_rollout_phase{aborted} = %v", v)
	}
}

// umbraBinary builds cmd/umbra once per test run.
func umbraBinary(t *testing.T) string {
	t.Helper()
	return testkit.Umbra(t, testkit.Build{})
}

// runCLI runs the binary and returns its output (stdout, then stderr)
// and exit code.
func runCLI(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	stdout, stderr, code := testkit.Run(t, bin, args...)
	return stdout + stderr, code
}

func TestMain(m *testing.M) { testkit.Main(m) }
