package rollouttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/umbragw/umbra/internal/rollout"
	"github.com/umbragw/umbra/test/testkit"
)

// hooks is a webhook receiver: each path answers the status the test sets
// and keeps the events it received.
type hooks struct {
	*httptest.Server
	mu     sync.Mutex
	status map[string]int
	events map[string][]map[string]any
	bad    atomic.Value // a request that was not a JSON POST
}

func newHooks(t *testing.T) *hooks {
	t.Helper()
	h := &hooks{status: map[string]int{}, events: map[string][]map[string]any{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev map[string]any
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &ev) != nil {
			h.bad.Store(fmt.Sprintf("%s %s %q %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"), body))
		}
		h.mu.Lock()
		h.events[r.URL.Path] = append(h.events[r.URL.Path], ev)
		code := h.status[r.URL.Path]
		h.mu.Unlock()
		if code == 0 {
			code = http.StatusOK
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hooks) set(path string, code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status[path] = code
}

func (h *hooks) received(path string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.events[path]...)
}

// TestWebhooks: before_step answering 503 holds the rollout and 410 aborts
// it; confirm_promotion holds until it answers 2xx and then lets the
// rollout promote; on_rollback is told about a rollback with the event.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	v1, v2, bad := newBackend(t, "v1"), newBackend(t, "v2"), newBackend(t, "v2-bad")
	bad.failAll()
	h := newHooks(t)
	h.set("/a/before", http.StatusServiceUnavailable)
	h.set("/a/confirm", http.StatusServiceUnavailable)
	h.set("/b/before", http.StatusGone)
	h.set("/c/rollback", http.StatusInternalServerError) // ignored
	plan := func(route string) string {
		return fmt.Sprintf(`
    rollout:
      start: auto
      interval: 100ms
      steps:
        - canary: {weight: 20, min_requests: 20}
        - canary: {weight: 40, min_requests: 20}
        - promote: {}
      analysis: {latency: {confidence: 0.999, max_p99_ratio: 5}, burst: {window: 20, min_errors: 5}}
      webhooks:
        before_step: "%[1]s/%[2]s/before"
        confirm_promotion: "%[1]s/%[2]s/confirm"
        on_rollback: "%[1]s/%[2]s/rollback"
        timeout: 2s
`, h.URL, route)
	}
	g := startGW(t, testkit.Backends("v1", v1.URL, "v2", v2.URL, "v2-bad", bad.URL)+`
routes:
  - name: a
    match: {path_prefix: /a}
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2}`+plan("a")+`
  - name: b
    match: {path_prefix: /b}
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2}`+plan("b")+`
  - name: c
    match: {path_prefix: /c}
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2-bad}`+plan("c")+`
`)

	for _, p := range []string{"/a", "/b", "/c"} {
		startTraffic(t, g.URL+p+"/x", "user-", 2, 3000)
	}

	// b: before_step answers 410 Gone: the rollout stops, everyone on live.
	st := waitPhase(t, g, "b", rollout.Aborted)
	if st.Weight != 0 || st.Step != 0 || last(st).Action != "abort" || !strings.Contains(last(st).Reason, "410") {
		t.Errorf("b:\n%s", dump(st.Decisions))
	}

	// a: before_step answers 503: the step passed but the rollout holds,
	// asking again at every evaluation.
	whileRunning(t, g, "a", "a held by its webhook", func() bool {
		return len(h.received("/a/before")) >= 3
	})
	st = status(t, g, "a")
	if st.Phase != rollout.Running || st.Step != 0 || st.Weight != 20 {
		t.Fatalf("a while before_step answers 503: phase %s step %d weight %v", st.Phase, st.Step+1, st.Weight)
	}
	if d := last(st); d.Action != "hold" || !strings.Contains(d.Reason, "webhook holds") || !strings.Contains(d.Reason, "503") {
		t.Errorf("a: latest decision %s %q, want a hold naming the webhook and its 503", d.Action, d.Reason)
	}
	ev := h.received("/a/before")[0]
	want := map[string]any{"event": "before_step", "route": "a", "step": float64(2), "step_kind": "canary", "weight": float64(20), "phase": "running"}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("before_step event %s = %v, want %v (event %v)", k, ev[k], v, ev)
		}
	}

	// Let it go on: step 2, then confirm_promotion holds it at step 2.
	h.set("/a/before", http.StatusNoContent)
	whileRunning(t, g, "a", "a asking confirm_promotion", func() bool { return len(h.received("/a/confirm")) >= 2 })
	st = status(t, g, "a")
	if st.Phase != rollout.Running || st.Step != 1 || st.Weight != 40 {
		t.Fatalf("a while confirm_promotion answers 503: phase %s step %d weight %v:\n%s", st.Phase, st.Step+1, st.Weight, dump(st.Decisions))
	}
	h.set("/a/confirm", http.StatusOK)
	st = waitPhase(t, g, "a", rollout.Promoted)
	if st.Weight != 100 || actions(moves(st.Decisions)) != "start,promote,complete" {
		t.Errorf("a:\n%s", dump(st.Decisions))
	}
	ev = h.received("/a/confirm")[0]
	if ev["event"] != "confirm_promotion" || ev["route"] != "a" || ev["step"] != float64(3) || ev["step_kind"] != "promote" {
		t.Errorf("confirm_promotion event %v", ev)
	}

	// c: a failing canary is rolled back and on_rollback is told.
	st = waitPhase(t, g, "c", rollout.RolledBack)
	testkit.Wait.UntilTrue(t, "on_rollback called", func() bool { return len(h.received("/c/rollback")) == 1 })
	ev = h.received("/c/rollback")[0]
	want = map[string]any{"event": "rollback", "route": "c", "step": float64(1), "step_kind": "canary", "weight": float64(0), "phase": "rolled_back"}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("on_rollback event %s = %v, want %v (event %v)", k, ev[k], v, ev)
		}
	}
	if len(h.received("/c/before")) != 0 || len(h.received("/c/confirm")) != 0 {
		t.Errorf("c asked to go on although it failed")
	}
	if len(h.received("/a/rollback")) != 0 || len(h.received("/b/rollback")) != 0 {
		t.Errorf("on_rollback called for a rollout that did not roll back")
	}
	if b, ok := h.bad.Load().(string); ok {
		t.Errorf("a webhook call was not a JSON POST: %s", b)
	}
}
