// Package tracingtest runs a real gateway with tracing on against OTLP
// receivers in the test (HTTP and gRPC, decoding the protobuf with the
// OpenTelemetry proto types) and checks the spans, links and attributes
// of live, canary and shadow requests.
package tracingtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/umbragw/umbra/test/testkit"
)

// span is one received span with the service that sent it.
type span struct {
	*tracepb.Span
	Service string
}

func (s span) TraceID() string { return hex.EncodeToString(s.Span.TraceId) }
func (s span) ID() string      { return hex.EncodeToString(s.SpanId) }
func (s span) Parent() string  { return hex.EncodeToString(s.ParentSpanId) }

// Attr returns an attribute's value: string, int64, bool, float64 or
// []string, nil when absent.
func (s span) Attr(key string) any {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return value(kv.Value)
		}
	}
	return nil
}

func value(v *commonpb.AnyValue) any {
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_ArrayValue:
		var out []string
		for _, e := range x.ArrayValue.Values {
			out = append(out, fmt.Sprint(value(e)))
		}
		return out
	}
	return nil
}

// collector stores what an OTLP receiver got.
type collector struct {
	mu       sync.Mutex
	spans    []span
	requests int
}

func (c *collector) add(req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, span{Span: s, Service: service})
			}
		}
	}
}

// trace returns the spans of one trace.
func (c *collector) trace(id string) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, s := range c.spans {
		if s.TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

func (c *collector) all() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]span(nil), c.spans...)
}

// newHTTPReceiver is an OTLP/HTTP receiver (POST /v1/traces, binary
// protobuf, optionally gzip).
func newHTTPReceiver(t *testing.T) (*collector, string) {
	c := &collector{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("receiver: %s %s (%s), want POST /v1/traces of application/x-protobuf", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(data, req); err != nil {
			t.Errorf("receiver: undecodable export: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.add(req)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

// grpcReceiver is an OTLP/gRPC trace service.
type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	c *collector
}

func (g *grpcReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.c.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func newGRPCReceiver(t *testing.T) (*collector, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	s := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s, &grpcReceiver{c: c})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return c, "http://" + ln.Addr().String()
}

// upstream records every request; its answers name it.
type upstream struct{ *testkit.Upstream }

func newUpstream(t *testing.T, name string) *upstream {
	return &upstream{testkit.NewUpstream(t, name, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"from":"`+name+`"}`)
	})}
}

// traceparents is the traceparent of each request for path, in order.
func (u *upstream) traceparents(path string) []string {
	var out []string
	for _, s := range u.Seen() {
		if s.Path == path {
			out = append(out, s.Header.Get("Traceparent"))
		}
	}
	return out
}

// gw is a running gateway.
type gw struct{ *testkit.Gateway }

// start starts a gateway on body after the standard top, access logs on
// unless the body has a log block. The OTEL_* variables of the process
// apply (tests set them with Setenv).
func start(t *testing.T, body string) *gw {
	t.Helper()
	own := strings.HasPrefix(body, "log:") || strings.Contains(body, "\nlog:")
	return &gw{testkit.Launch(t, "tracingtest", testkit.Top{Access: true, NoLog: own}, body)}
}

// flushUntil flushes the gateway's spans until cond holds for the
// collector's spans.
func (g *gw) flushUntil(t *testing.T, c *collector, what string, cond func([]span) bool) []span {
	t.Helper()
	var got []span
	testkit.Wait.Until(t, what, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = g.Tracer().ForceFlush(ctx)
		got = c.all()
		return cond(got), describe(got)
	})
	return got
}

func describe(spans []span) string {
	var b bytes.Buffer
	for _, s := range spans {
		fmt.Fprintf(&b, "\n  %s %s trace %s id %s parent %s links %d attrs %v", s.Kind, s.Name, s.TraceID(), s.ID(), s.Parent(), len(s.Links), s.Attributes)
	}
	return b.String()
}

// find returns the spans matching a kind and a name prefix.
func find(spans []span, kind tracepb.Span_SpanKind, name string) []span {
	var out []span
	for _, s := range spans {
		if s.Kind == kind && strings.HasPrefix(s.Name, name) {
			out = append(out, s)
		}
	}
	return out
}

// traceparent parses "00-trace-span-flags".
func traceparent(t *testing.T, v string) (trace, span, flags string) {
	t.Helper()
	p := strings.Split(v, "-")
	if len(p) != 4 || len(p[1]) != 32 || len(p[2]) != 16 {
		t.Fatalf("traceparent %q is not W3C", v)
	}
	return p[1], p[2], p[3]
}
