package tracing

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys. Standard ones follow the OpenTelemetry HTTP semantic
// conventions; umbra's own are under umbra.*.
const (
	AttrRoute         = "umbra.route"           // the route's name
	AttrRole          = "umbra.role"            // live, canary or shadow
	AttrBackend       = "umbra.backend"         // the backend's name
	AttrCaller        = "umbra.caller"          // the caller's name (callers:)
	AttrRequestID     = "umbra.request_id"      // X-Request-Id
	AttrFlags         = "umbra.flags"           // flag evaluations, "key=variant"
	AttrFields        = "umbra.adoption.fields" // the adoption fields the request body used
	AttrShadowTarget  = "umbra.shadow.target"
	AttrShadowOutcome = "umbra.shadow.outcome" // the copy's final outcome, as in umbra_shadow_requests_total
	AttrShadowReason  = "umbra.shadow.reason"
	AttrLink          = "umbra.link" // on a shadow span's link: "live_request"
	AttrEgressService = "umbra.egress.service"
	AttrEgressOutcome = "umbra.egress.outcome" // forwarded, replayed, simulated, ... as in umbra_egress_requests_total

	EventFlag         = "feature_flag.evaluation"
	EventShadowSkip   = "umbra.shadow.skipped"
	attrFlagKey       = "feature_flag.key"
	attrFlagVariant   = "feature_flag.result.variant"
	attrFlagProvider  = "feature_flag.provider.name"
	flagProvider      = "flagd"
	attrMethod        = "http.request.method"
	attrStatus        = "http.response.status_code"
	attrHTTPRoute     = "http.route"
	attrURLPath       = "url.path"
	attrURLFull       = "url.full"
	attrServerAddress = "server.address"
	attrServerPort    = "server.port"
	attrClientAddress = "client.address"
	attrResend        = "http.request.resend_count"
	attrErrorType     = "error.type"
)

// StartServer starts the server span of a request: a child of the
// caller's span when the request carries a traceparent (the sampler
// follows its sampled flag), else the root of a new trace. It returns the
// request with the span in its context, which the upstream attempts and
// the shadow copies find it in.
//
// Attributes are only built for spans that are recorded: at a low
// sampling ratio most spans are not, and they should cost little more
// than the context that carries their trace id.
func (t *Tracer) StartServer(r *http.Request) (*http.Request, trace.Span) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.tracer.Start(ctx, r.Method, serverKind)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String(attrMethod, r.Method),
			attribute.String(attrURLPath, r.URL.Path),
			attribute.String(attrServerAddress, r.Host),
			attribute.String(attrClientAddress, clientAddress(r.RemoteAddr)),
		)
	}
	return r.WithContext(ctx), span
}

// Span start options, made once.
var (
	serverKind   = trace.WithSpanKind(trace.SpanKindServer)
	clientKind   = trace.WithSpanKind(trace.SpanKindClient)
	producerKind = trace.WithSpanKind(trace.SpanKindProducer)
)

// Recording reports whether span is recorded (sampled): the proxy builds
// what only a recorded span keeps (flag lists, field names) only then.
func Recording(span trace.Span) bool { return span.IsRecording() }

func clientAddress(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// Matched names the server span after the route's endpoint template
// ("GET /v1/shortlinks/{id}", as the HTTP conventions name server spans)
// and records where the request goes.
func Matched(span trace.Span, method, route, endpoint, role, backend, requestID string) {
	if endpoint != "" {
		span.SetName(method + " " + endpoint)
	}
	span.SetAttributes(
		attribute.String(AttrRoute, route),
		attribute.String(attrHTTPRoute, endpoint),
		attribute.String(AttrRole, role),
		attribute.String(AttrBackend, backend),
		attribute.String(AttrRequestID, requestID),
	)
}

// Caller records the caller's name.
func Caller(span trace.Span, caller string) {
	if caller != "" {
		span.SetAttributes(attribute.String(AttrCaller, caller))
	}
}

// Flags records flag evaluations, each "key=variant": as one attribute
// and as the feature_flag.evaluation events of the OpenTelemetry
// conventions.
func Flags(span trace.Span, evaluations []string) {
	if len(evaluations) == 0 {
		return
	}
	span.SetAttributes(attribute.StringSlice(AttrFlags, evaluations))
	for _, e := range evaluations {
		key, variant, _ := strings.Cut(e, "=")
		span.AddEvent(EventFlag, trace.WithAttributes(attribute.String(attrFlagKey, key),
			attribute.String(attrFlagVariant, variant), attribute.String(attrFlagProvider, flagProvider)))
	}
}

// Fields records the adoption fields (deprecated or new) the request
// body used.
func Fields(span trace.Span, names []string) {
	if len(names) > 0 {
		span.SetAttributes(attribute.StringSlice(AttrFields, names))
	}
}

// ShadowSkipped notes on the live request's span that a shadow target
// took no copy, and why.
func ShadowSkipped(ctx context.Context, target, reason string) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(EventShadowSkip, trace.WithAttributes(
			attribute.String(AttrShadowTarget, target), attribute.String(AttrShadowReason, reason)))
	}
}

// EndServer ends a server span with the status sent to the client; 0
// means the response was aborted half way. 5xx answers are errors, 4xx
// are the client's business (the HTTP conventions for server spans).
func EndServer(span trace.Span, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if status == 0 {
		span.SetStatus(codes.Error, "response aborted")
	} else {
		span.SetAttributes(attribute.Int(attrStatus, status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// InjectRequest writes the traceparent of the span in r's context into
// r's own header, for code that reads the live request's trace id from it
// (the egress sandbox registers live requests by it).
func (t *Tracer) InjectRequest(r *http.Request) { t.inject(r.Context(), r.Header) }

// TraceID is the span's trace id in hex, for the access log.
func TraceID(span trace.Span) string { return span.SpanContext().TraceID().String() }

// StartAttempt starts the client span of one upstream attempt, a child
// of the span in ctx, and writes its traceparent into req's header so the
// upstream continues the trace. resend is 0 for the first attempt.
func (t *Tracer) StartAttempt(ctx context.Context, backend string, endpoint *url.URL, req *http.Request, resend int) trace.Span {
	ctx, span := t.tracer.Start(ctx, req.Method, clientKind)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String(attrMethod, req.Method),
			attribute.String(attrServerAddress, endpoint.Hostname()),
			attribute.String(attrURLFull, endpoint.Scheme+"://"+endpoint.Host+req.URL.Path),
			attribute.String(AttrBackend, backend),
		)
		if p, err := strconv.Atoi(endpoint.Port()); err == nil {
			span.SetAttributes(attribute.Int(attrServerPort, p))
		}
		if resend > 0 {
			span.SetAttributes(attribute.Int(attrResend, resend))
		}
	}
	t.inject(ctx, req.Header) // recorded or not: the trace id travels on
	return span
}

// EndAttempt ends an attempt span: with the answer's status, or with the
// error kind (connect, timeout, ...) when there was none.
func EndAttempt(span trace.Span, status int, errKind string) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if errKind != "" {
		span.SetAttributes(attribute.String(attrErrorType, errKind))
		span.SetStatus(codes.Error, errKind)
	} else {
		span.SetAttributes(attribute.Int(attrStatus, status))
		if status >= 400 {
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// EndAttemptWithBody ends an attempt span when resp's body is closed (its
// whole answer read), or at once for a bodyless answer or an upgrade.
func EndAttemptWithBody(span trace.Span, resp *http.Response) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusSwitchingProtocols {
		EndAttempt(span, resp.StatusCode, "")
		return
	}
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span, status: resp.StatusCode}
}

// spanBody ends its span on the first Close.
type spanBody struct {
	io.ReadCloser
	span   trace.Span
	status int
	done   atomic.Bool
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	if b.done.CompareAndSwap(false, true) {
		EndAttempt(b.span, b.status, "")
	}
	return err
}

// StartShadow starts the span of one shadow copy, linked to the live
// server span in ctx, and writes the copy's traceparent into h. The span
// ends with the copy's final outcome (EndShadow).
//
// Without the egress sandbox the copy stays in the live request's trace
// (its traceparent keeps the live trace id, as without tracing), as a
// child of the live server span. With it (ownTrace), the copy's
// traceparent in h already holds the trace id the sandbox minted for the
// copy and maps to the live request: the span starts in that trace, so
// the copy's outbound calls still carry it, with the live request's
// sampling decision, and the link leads to the live request.
func (t *Tracer) StartShadow(ctx context.Context, route, target string, h http.Header, ownTrace bool) (context.Context, trace.Span) {
	live := trace.SpanContextFromContext(ctx)
	if ownTrace {
		own := trace.SpanContextFromContext(t.prop.Extract(context.Background(), propagation.HeaderCarrier(h)))
		ctx = trace.ContextWithRemoteSpanContext(ctx, own.WithTraceFlags(live.TraceFlags()))
	}
	ctx, span := t.tracer.Start(ctx, "shadow "+target, producerKind)
	if span.IsRecording() {
		span.AddLink(trace.Link{SpanContext: live, Attributes: []attribute.KeyValue{attribute.String(AttrLink, "live_request")}})
		span.SetAttributes(
			attribute.String(AttrRoute, route),
			attribute.String(AttrRole, "shadow"),
			attribute.String(AttrShadowTarget, target),
		)
	}
	t.inject(ctx, h)
	return ctx, span
}

// EndShadow ends a shadow copy's span with its final outcome and, when it
// was answered, the status.
func EndShadow(span trace.Span, outcome string, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(attribute.String(AttrShadowOutcome, outcome))
	if status > 0 {
		span.SetAttributes(attribute.Int(attrStatus, status))
	}
	if outcome != "ok" {
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}

// StartEgress starts the span of one outbound call through the egress
// sandbox, which serves it (a server span) on behalf of a service umbra
// proxies: in the trace the call's traceparent carries, so a live
// request's calls are in its trace and a shadow copy's calls in the
// copy's. role is what the sandbox knows of the call's origin (live,
// canary, shadow, unknown). EndEgress ends it.
func (t *Tracer) StartEgress(r *http.Request, service, role, path string) trace.Span {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	_, span := t.tracer.Start(ctx, "egress "+service, serverKind)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String(AttrEgressService, service),
			attribute.String(AttrRole, role),
			attribute.String(attrMethod, r.Method),
			attribute.String(attrURLPath, path),
		)
	}
	return span
}

// EndEgress ends an outbound call's span with the sandbox's outcome and,
// when the call was answered, the status it got.
func EndEgress(span trace.Span, outcome string, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(attribute.String(AttrEgressOutcome, outcome))
	if status > 0 {
		span.SetAttributes(attribute.Int(attrStatus, status))
	}
	switch {
	case outcome == "" || strings.HasPrefix(outcome, "error_") || outcome == "denied" || outcome == "bad_request":
		span.SetStatus(codes.Error, outcome)
	case status >= 500:
		span.SetStatus(codes.Error, "")
	}
	span.End()
}
