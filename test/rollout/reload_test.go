package rollouttest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/rollout"

	"github.com/umbragw/umbra/test/testkit"
)

// TestReloadKeepsRolloutWeight: a config reload while a rollout runs must
// not move callers: the rollout's weight wins over the config's
// (canary.weight 0 here), also while the controller is busy asking a
// webhook. Before the fix, the reload swapped in the new snapshot, whose
// split still had the config's weight, and then waited for the controller
// to hand it the rollout's weight: every canary caller was served by live
// until the webhook answered.
func TestReloadKeepsRolloutWeight(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	release := make(chan struct{})
	var asked atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		asked.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hook.Close)
	released := false
	doRelease := func() {
		if !released {
			released = true
			close(release)
		}
	}

	g := startGW(t, testkit.Backends("v1", v1.URL, "v2", v2.URL)+fmt.Sprintf(`
routes:
  - name: r
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2, weight: 0}
    rollout:
      start: auto
      interval: 100ms
      steps:
        - canary: {weight: 40, min_requests: 20}
        - canary: {weight: 60, min_requests: 1000000}
        - promote: {}
      webhooks: {before_step: %q, timeout: 20s}
      %s
`, hook.URL, calm))
	t.Cleanup(doRelease) // before the gateway's shutdown, which waits for the controller

	tr := startTraffic(t, g.URL+"/r", "warm-", 2, 2000)
	testkit.Wait.UntilTrue(t, "the controller asking before_step", func() bool { return asked.Load() > 0 })
	tr.Stop()

	c := testkit.NewClient(t, 64, testkit.Wait.Timeout)
	probes := users("probe-", 200)
	before := assign(t, c, g.URL+"/r", probes, 4)
	var canary []string
	for _, u := range probes {
		if before[u] == "v2" {
			canary = append(canary, u)
		}
	}
	if len(canary) < 50 {
		t.Fatalf("%d of 200 callers on the canary at weight 40", len(canary))
	}

	old := g.Config()
	reloaded := make(chan error, 1)
	go func() { reloaded <- g.Reload() }()
	// While the controller waits for the webhook, watch the callers: the
	// reload may or may not be swapped in yet, nobody may move.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		swapped := g.Config() != old
		for _, u := range canary[:20] {
			if _, by, err := get(c, g.URL+"/r", u); err != nil || by != "v2" {
				t.Fatalf("during the reload (new snapshot swapped in: %v), canary caller %s was served by %q (%v)", swapped, u, by, err)
			}
		}
	}
	doRelease()
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(testkit.Wait.Timeout):
		t.Fatal("reload did not finish")
	}
	st := waitStep(t, g, "r", 1)
	if st.Phase != rollout.Running || st.Weight != 60 {
		t.Fatalf("after the reload: %+v", st.State)
	}
	after := assign(t, c, g.URL+"/r", canary, 4)
	for _, u := range canary {
		if after[u] != "v2" {
			t.Errorf("%s left the canary when its weight rose from 40 to 60 across a reload", u)
		}
	}
}
