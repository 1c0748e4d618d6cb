package tracingtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/umbragw/umbra/test/testkit"
)

const (
	incomingTrace   = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingParent  = "00f067aa0ba902b7"
	unsampledTrace  = "0af7651916cd43dd8448eb211c80319c"
	unsampledParent = "b7ad6b7169203331"
)

const flagFile = `{"flags": {"new-ui": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}}}`

func routeConfig(t *testing.T, v1, v2, v3 *upstream) string {
	flags := filepath.Join(t.TempDir(), "flags.json")
	if err := os.WriteFile(flags, []byte(flagFile), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`flags: {file: %q}
callers: {key: "header:X-Client-ID"}
backends:
  v1: {endpoints: [%q]}
  v2: {endpoints: [%q]}
  v3: {endpoints: [%q]}
routes:
  - name: shop
    match: {path: "/shop/orders/{id}"}
    backend: v1
    forward_flags: [new-ui]
    shadow:
      - {backend: v3, percent: 100, unsafe: allow}
    canary: {backend: v2, weight: 0, override_header: X-Umbra-Version}
    adoption:
      fields:
        - {name: email, path: "$.email"}
        - {name: emails, path: "$.emails"}
`, flags, v1.URL, v2.URL, v3.URL)
}

// TestTracingOTLPHTTP: with tracing on and an OTLP/HTTP receiver, a live
// request continues its caller's trace (parent-based sampling) with a
// server span carrying route, endpoint template, role, caller, flag
// evaluations and the adoption fields its body used; a client span per
// upstream attempt whose traceparent the upstream gets; and its shadow
// copy in a span of its own, in the same trace (the copy's traceparent
// keeps the live trace id), linked to the live server span, whose own
// attempt span the shadow upstream sees. A canary request has role
// canary and no copy. An unsampled caller gets no spans but its trace
// id still travels. The access log names the trace.
func TestTracingOTLPHTTP(t *testing.T) {
	rec, endpoint := newHTTPReceiver(t)
	v1, v2, v3 := newUpstream(t, "v1"), newUpstream(t, "v2"), newUpstream(t, "v3")
	g := start(t, fmt.Sprintf(`tracing:
  enabled: true
  endpoint: %q
  protocol: http/protobuf
  service_name: umbra-test
  headers: {X-Collector-Token: secret}
  timeout: 5s
  sampler: {ratio: 1, parent_based: true}
`, endpoint)+routeConfig(t, v1, v2, v3))
	c := testkit.NewClient(t, 2, testkit.Wait.Timeout)

	// A: live, from a sampled caller trace, with a deprecated field.
	r := testkit.Do(t, c, "POST", g.URL+"/shop/orders/7", strings.NewReader(`{"email": "a@example.com"}`),
		"Content-Type", "application/json", "X-Client-ID", "acme",
		"Traceparent", "00-"+incomingTrace+"-"+incomingParent+"-01")
	if r.Status != 200 || !strings.Contains(string(r.Body), "v1") {
		t.Fatalf("live: %d %s", r.Status, r.Body)
	}
	// B: canary, a new trace.
	if r := testkit.Do(t, c, "GET", g.URL+"/shop/orders/8", nil, "X-Umbra-Version", "canary", "X-Client-ID", "acme"); r.Status != 200 || !strings.Contains(string(r.Body), "v2") {
		t.Fatalf("canary: %d %s", r.Status, r.Body)
	}
	// C: live, from an unsampled caller trace.
	if r := testkit.Do(t, c, "GET", g.URL+"/shop/orders/9", nil, "Traceparent", "00-"+unsampledTrace+"-"+unsampledParent+"-00"); r.Status != 200 {
		t.Fatalf("unsampled: %d", r.Status)
	}
	testkit.Wait.UntilTrue(t, "the shadow copies", func() bool {
		return len(v3.traceparents("/shop/orders/7")) == 1 && len(v3.traceparents("/shop/orders/9")) == 1
	})
	canaryTrace, _, _ := traceparent(t, v2.traceparents("/shop/orders/8")[0])

	spans := g.flushUntil(t, rec, "live (server, client, shadow, shadow client) and canary (server, client) spans", func(s []span) bool {
		return len(rec.trace(incomingTrace)) >= 4 && len(rec.trace(canaryTrace)) >= 2
	})
	live := rec.trace(incomingTrace)
	t.Logf("live trace:%s", describe(live))

	// The server span continues the caller's trace.
	servers := find(live, tracepb.Span_SPAN_KIND_SERVER, "")
	if len(servers) != 1 {
		t.Fatalf("%d server spans in the live trace, want 1:%s", len(servers), describe(live))
	}
	srv := servers[0]
	if srv.Parent() != incomingParent || srv.Name != "POST /shop/orders/{id}" || srv.Service != "umbra-test" {
		t.Errorf("server span %q parent %s service %q, want \"POST /shop/orders/{id}\" under the caller's %s from umbra-test", srv.Name, srv.Parent(), srv.Service, incomingParent)
	}
	for k, want := range map[string]any{
		"umbra.route": "shop", "http.route": "/shop/orders/{id}", "umbra.role": "live", "umbra.backend": "v1",
		"umbra.caller": "acme", "http.request.method": "POST", "http.response.status_code": int64(200),
		"umbra.flags": []string{"new-ui=on"}, "umbra.adoption.fields": []string{"email"},
	} {
		if got := srv.Attr(k); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("server span %s = %v, want %v", k, got, want)
		}
	}
	if id, _ := srv.Attr("umbra.request_id").(string); id == "" {
		t.Errorf("server span has no umbra.request_id")
	}
	if !slices.ContainsFunc(srv.Events, func(e *tracepb.Span_Event) bool { return e.Name == "feature_flag.evaluation" }) {
		t.Errorf("server span has no feature_flag.evaluation event: %v", srv.Events)
	}

	// The live attempt: a client span under the server span, whose
	// traceparent v1 got.
	liveTP := v1.traceparents("/shop/orders/7")
	clients := find(live, tracepb.Span_SPAN_KIND_CLIENT, "POST")
	var liveAttempt, shadowAttempt span
	for _, cs := range clients {
		switch cs.Attr("umbra.backend") {
		case "v1":
			liveAttempt = cs
		case "v3":
			shadowAttempt = cs
		}
	}
	if liveAttempt.Span == nil || liveAttempt.Parent() != srv.ID() {
		t.Fatalf("no client span for v1 under the server span:%s", describe(live))
	}
	if tr, sp, fl := traceparent(t, liveTP[0]); tr != incomingTrace || sp != liveAttempt.ID() || fl != "01" {
		t.Errorf("v1 got traceparent %s, want the live attempt's span %s in trace %s, sampled", liveTP[0], liveAttempt.ID(), incomingTrace)
	}
	if liveAttempt.Attr("http.response.status_code") != int64(200) || liveAttempt.Attr("server.address") != "127.0.0.1" {
		t.Errorf("live attempt attributes %v", liveAttempt.Attributes)
	}

	// The shadow copy: its own span in the live trace, under and linked
	// to the live server span, ended with its outcome; its attempt span
	// is the parent the shadow upstream saw.
	producers := find(live, tracepb.Span_SPAN_KIND_PRODUCER, "shadow v3")
	if len(producers) != 1 {
		t.Fatalf("%d shadow spans, want 1:%s", len(producers), describe(live))
	}
	sh := producers[0]
	if sh.Parent() != srv.ID() {
		t.Errorf("shadow span's parent %s, want the live server span %s", sh.Parent(), srv.ID())
	}
	if len(sh.Links) != 1 || fmt.Sprintf("%x", sh.Links[0].SpanId) != srv.ID() || fmt.Sprintf("%x", sh.Links[0].TraceId) != incomingTrace {
		t.Errorf("shadow span links %v, want one to the live server span %s", sh.Links, srv.ID())
	}
	for k, want := range map[string]any{"umbra.route": "shop", "umbra.role": "shadow", "umbra.shadow.target": "v3", "umbra.shadow.outcome": "ok", "http.response.status_code": int64(200)} {
		if got := sh.Attr(k); got != want {
			t.Errorf("shadow span %s = %v, want %v", k, got, want)
		}
	}
	if shadowAttempt.Span == nil || shadowAttempt.Parent() != sh.ID() {
		t.Fatalf("no client span for v3 under the shadow span:%s", describe(live))
	}
	if tr, sp, _ := traceparent(t, v3.traceparents("/shop/orders/7")[0]); tr != incomingTrace || sp != shadowAttempt.ID() {
		t.Errorf("v3 got traceparent %s, want the live trace %s and the copy's attempt span %s", v3.traceparents("/shop/orders/7")[0], incomingTrace, shadowAttempt.ID())
	}

	// The canary: role canary, backend v2, no shadow copy.
	can := rec.trace(canaryTrace)
	cs := find(can, tracepb.Span_SPAN_KIND_SERVER, "GET /shop/orders/{id}")
	if len(cs) != 1 || cs[0].Attr("umbra.role") != "canary" || cs[0].Attr("umbra.backend") != "v2" || cs[0].Parent() != "" {
		t.Errorf("canary trace:%s\nwant a root server span with role canary and backend v2", describe(can))
	}
	if len(find(can, tracepb.Span_SPAN_KIND_PRODUCER, "")) != 0 {
		t.Errorf("the canary request was copied:%s", describe(can))
	}

	// Unsampled: nothing exported, but the trace id travels to the live
	// and shadow upstreams, unsampled.
	for _, s := range spans {
		if s.TraceID() == unsampledTrace {
			t.Errorf("a span of the unsampled trace was exported: %s", s.Name)
		}
	}
	for name, u := range map[string]*upstream{"v1": v1, "v3": v3} {
		if tr, _, fl := traceparent(t, u.traceparents("/shop/orders/9")[0]); tr != unsampledTrace || fl != "00" {
			t.Errorf("%s got traceparent %s for the unsampled request, want trace %s unsampled", name, u.traceparents("/shop/orders/9")[0], unsampledTrace)
		}
	}

	// The access log line names the trace.
	if lines := g.Log.Lines("msg=access", "role=live", "path=/shop/orders/7", "trace_id="+incomingTrace); len(lines) != 1 {
		t.Errorf("no access log line with trace_id=%s:\n%s", incomingTrace, g.Log.String())
	}
	if lines := g.Log.Lines("msg=access", "role=shadow", "path=/shop/orders/7", "trace_id="+incomingTrace); len(lines) != 1 {
		t.Errorf("no shadow access log line with trace_id=%s", incomingTrace)
	}
}

// TestTracingOTLPGRPCFromEnv: tracing configured by the standard OTEL_*
// variables alone exports over gRPC, names the service from
// OTEL_SERVICE_NAME and samples with OTEL_TRACES_SAMPLER: with
// parentbased_traceidratio at 0 a new trace is dropped while a caller's
// sampled trace is continued.
func TestTracingOTLPGRPCFromEnv(t *testing.T) {
	rec, endpoint := newGRPCReceiver(t)
	for k, v := range map[string]string{
		"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
		"OTEL_SERVICE_NAME": "umbra-env", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0",
	} {
		t.Setenv(k, v)
	}
	v1, v2, v3 := newUpstream(t, "v1"), newUpstream(t, "v2"), newUpstream(t, "v3")
	g := start(t, routeConfig(t, v1, v2, v3))
	if g.Tracer() == nil {
		t.Fatal("OTEL_TRACES_EXPORTER=otlp did not turn tracing on")
	}
	c := testkit.NewClient(t, 2, testkit.Wait.Timeout)
	testkit.Do(t, c, "GET", g.URL+"/shop/orders/1", nil) // a new trace: ratio 0 drops it
	testkit.Do(t, c, "GET", g.URL+"/shop/orders/2", nil, "Traceparent", "00-"+incomingTrace+"-"+incomingParent+"-01")
	testkit.Wait.UntilTrue(t, "both shadow copies", func() bool {
		return len(v3.traceparents("/shop/orders/1")) == 1 && len(v3.traceparents("/shop/orders/2")) == 1
	})
	dropped, _, flags := traceparent(t, v1.traceparents("/shop/orders/1")[0])
	if flags != "00" {
		t.Errorf("a new trace at ratio 0 went upstream sampled (%s)", flags)
	}
	spans := g.flushUntil(t, rec, "the sampled trace's server, client, shadow and shadow client spans", func(s []span) bool {
		return len(rec.trace(incomingTrace)) >= 4
	})
	for _, s := range spans {
		if s.TraceID() == dropped {
			t.Errorf("span %q of the unsampled new trace was exported", s.Name)
		}
		if s.Service != "umbra-env" {
			t.Errorf("span %q from service %q, want umbra-env (OTEL_SERVICE_NAME)", s.Name, s.Service)
		}
	}
	srv := find(rec.trace(incomingTrace), tracepb.Span_SPAN_KIND_SERVER, "GET /shop/orders/{id}")
	if len(srv) != 1 || srv[0].Parent() != incomingParent {
		t.Errorf("server spans %s, want one under the caller's span", describe(srv))
	}
}
