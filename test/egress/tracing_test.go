package egresstest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

// TestShadowedCheckoutsWithTracing: with OpenTelemetry tracing on (every
// trace recorded), the copies' outbound calls are still paired with their
// live checkout and never reach the provider: the copy's span keeps the
// trace id the sandbox gave the copy, and the live request's span the one
// the sandbox registered. Callers that send a traceparent of their own and
// callers that send none are both paired.
func TestShadowedCheckoutsWithTracing(t *testing.T) {
	var mu sync.Mutex
	exports := 0
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		exports++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	s := start(t, options{top: fmt.Sprintf("tracing: {enabled: true, endpoint: %q, sampler: {ratio: 1}}\n", collector.URL)})
	const n = 100
	answers := s.run(t, "plain", n, 8)
	for i := range n { // each caller's request in a trace of its own
		id := fmt.Sprintf("traced-%05d", i)
		code, body := s.checkout(t, id, "Traceparent", fmt.Sprintf("00-4bf92f3577b34da6a3ce929d0e%06x-00f067aa0ba902b7-01", i))
		answers[id] = fmt.Sprint(code, " ", body)
	}
	testkit.Slow.Until(t, "every copy answered", func() (bool, string) {
		return s.v2.count() == 2*n && s.v1b.count() == 2*n, fmt.Sprintf("v2 %d, v1b %d of %d", s.v2.count(), s.v1b.count(), 2*n)
	})
	charges, _, fraud := s.prov.snapshot()
	for id, a := range answers {
		if !strings.HasPrefix(a, "200 ") {
			t.Fatalf("live checkout %s answered %s", id, a)
		}
		for _, kind := range []string{"charge", "fee"} {
			if c := charges[id+"/"+kind]; c != 1 {
				t.Errorf("provider saw %d %s charges for %s, want exactly 1", c, kind, id)
			}
		}
		for name, c := range map[string]*checkout{"v2": s.v2, "v1b": s.v1b} {
			if got, _ := c.answerOf(id); got != strings.TrimPrefix(a, "200 ") {
				t.Errorf("%s's answer to %s = %s, live %s", name, id, got, a)
			}
		}
	}
	if len(fraud) != 0 {
		t.Errorf("v2's fraud check reached the provider %d times", len(fraud))
	}
	if v := s.gw.Metric(t, "umbra_egress_shadow_leaked_total"); v != 0 {
		t.Errorf("umbra_egress_shadow_leaked_total = %v", v)
	}
	if v := s.gw.Metric(t, "umbra_egress_requests_total", "service", "payments", "role", "shadow", "outcome", "replayed"); v != float64(6*2*n) {
		t.Errorf("shadow replayed = %v, want %d", v, 6*2*n)
	}
	if err := s.gw.Tracer().ForceFlush(t.Context()); err != nil {
		t.Errorf("flushing spans: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if exports == 0 {
		t.Error("no spans were exported")
	}
}
