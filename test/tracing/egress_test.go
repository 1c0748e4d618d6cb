package tracingtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/umbragw/umbra/test/testkit"
)

// TestTracingEgressCalls: with the egress sandbox, each outbound call is a
// server span of the sandbox in the trace its traceparent carries: the
// live request's call, forwarded to the provider, in the live trace under
// the live attempt the service got; the shadow copy's call, replayed and
// never forwarded, in the copy's own trace under the copy's attempt, with
// outcome, role, service and status as attributes.
func TestTracingEgressCalls(t *testing.T) {
	rec, endpoint := newHTTPReceiver(t)
	var providerCalls atomic.Int64
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		providerCalls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"ch_1","status":"paid"}`)
	}))
	t.Cleanup(provider.Close)
	// A service that makes one outbound call through the egress listener
	// per request, passing its traceparent on, as an instrumented service
	// does.
	var egressAddr atomic.Pointer[string]
	service := func(name string) *upstream {
		return &upstream{testkit.NewUpstream(t, name, func(w http.ResponseWriter, r *http.Request, _ []byte) {
			req, _ := http.NewRequest("GET", "http://"+*egressAddr.Load()+"/payments/v1/charges/ch_1", nil)
			req.Header.Set("Traceparent", r.Header.Get("Traceparent"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"from":%q,"charge":%s}`, name, body)
		})}
	}
	v1, v2 := service("v1"), service("v2")
	g := start(t, fmt.Sprintf(`tracing: {enabled: true, endpoint: %q, sampler: {ratio: 1}}
backends:
  v1: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: shop
    match: {path: "/shop/orders/{id}"}
    backend: v1
    shadow:
      - {backend: v2, percent: 100}
egress:
  listen: 127.0.0.1:0
  services:
    payments:
      upstream: %q
      endpoints: ["/v1/charges/{id}"]
`, endpoint, v1.URL, v2.URL, provider.URL))
	addr := g.EgressAddr()
	egressAddr.Store(&addr)

	c := testkit.NewClient(t, 2, testkit.Wait.Timeout)
	if r := testkit.Do(t, c, "GET", g.URL+"/shop/orders/7", nil, "Traceparent", "00-"+incomingTrace+"-"+incomingParent+"-01"); r.Status != 200 {
		t.Fatalf("live request: %d %s", r.Status, r.Body)
	}
	testkit.Wait.Until(t, "the copy's call", func() (bool, string) {
		return len(v2.traceparents("/shop/orders/7")) == 1, ""
	})
	spans := g.flushUntil(t, rec, "two egress spans", func(s []span) bool { return len(find(s, tracepb.Span_SPAN_KIND_SERVER, "egress ")) == 2 })
	if n := providerCalls.Load(); n != 1 {
		t.Errorf("the provider got %d calls, want the live one only", n)
	}

	byOutcome := map[string]span{}
	for _, s := range find(spans, tracepb.Span_SPAN_KIND_SERVER, "egress ") {
		byOutcome[fmt.Sprint(s.Attr("umbra.egress.outcome"))] = s
		if s.Name != "egress payments" || s.Attr("umbra.egress.service") != "payments" || s.Attr("http.request.method") != "GET" ||
			s.Attr("url.path") != "/v1/charges/ch_1" || s.Attr("http.response.status_code") != int64(200) {
			t.Errorf("egress span:%s\nwant egress payments, GET /v1/charges/ch_1, status 200", describe([]span{s}))
		}
	}
	live, ok := byOutcome["forwarded"]
	_, liveAttempt, _ := traceparent(t, v1.traceparents("/shop/orders/7")[0])
	if !ok || live.TraceID() != incomingTrace || live.Parent() != liveAttempt || live.Attr("umbra.role") != "live" {
		t.Errorf("the live call's span:%s\nwant outcome forwarded, role live, in trace %s under the live attempt %s", describe([]span{live}), incomingTrace, liveAttempt)
	}
	copyTrace, copyAttempt, _ := traceparent(t, v2.traceparents("/shop/orders/7")[0])
	cp, ok := byOutcome["replayed"]
	if !ok || cp.TraceID() != copyTrace || cp.Parent() != copyAttempt || cp.Attr("umbra.role") != "shadow" {
		t.Errorf("the copy's call's span:%s\nwant outcome replayed, role shadow, in the copy's trace %s under its attempt %s", describe([]span{cp}), copyTrace, copyAttempt)
	}
	if copyTrace == incomingTrace {
		t.Errorf("the copy kept the live trace id: with the sandbox it gets its own")
	}
}
