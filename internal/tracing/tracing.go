// Package tracing is umbra's OpenTelemetry tracing: the tracer provider
// built from the tracing: config key and the standard OTEL_* environment
// variables (the official SDK, OTLP over HTTP or gRPC, batched), and the
// spans of a request's path: a server span per proxied request, a client
// span per upstream attempt, and a span per shadow copy, in the live
// request's trace and linked to its server span.
//
// Tracing off costs the request path nothing: the proxy, the backends and
// the shadow set hold a nil *Tracer and check it before anything here runs.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/umbragw/umbra/internal/config"
)

// Instrumentation is the name of umbra's tracer (the instrumentation scope).
const Instrumentation = "github.com/umbragw/umbra"

// Tracer makes umbra's spans. A nil *Tracer means tracing is off.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TraceContext
}

// Enabled reports whether cfg, or the environment when cfg leaves it
// open, turns tracing on. The OpenTelemetry default exporter is otlp, but
// a gateway that exported to a collector nobody configured would only
// log errors: left out of the file, tracing needs OTEL_TRACES_EXPORTER=otlp
// said explicitly.
func Enabled(cfg *config.Tracing, getenv func(string) string) bool {
	if cfg.Enabled != nil {
		return *cfg.Enabled
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	return strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) == "otlp"
}

// Protocol is the OTLP protocol: the config's, else the environment's
// (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL),
// else http/protobuf, the specification's default.
func Protocol(cfg *config.Tracing, getenv func(string) string) (string, error) {
	if cfg.Protocol != "" {
		return cfg.Protocol, nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		switch v := strings.TrimSpace(getenv(name)); v {
		case "":
			continue
		case config.TracingHTTP, config.TracingGRPC:
			return v, nil
		default:
			return "", fmt.Errorf("%s=%q: umbra exports http/protobuf or grpc", name, v)
		}
	}
	return config.TracingHTTP, nil
}

// New builds the tracer cfg and the environment describe, or returns nil
// when tracing is off. Nothing is dialled yet: the exporter connects when
// the first batch is sent, and export errors are logged (at most one line
// per 10 s), never returned to a request.
func New(ctx context.Context, cfg *config.Tracing, version string, getenv func(string) string, log *slog.Logger) (*Tracer, error) {
	if !Enabled(cfg, getenv) {
		return nil, nil
	}
	exp, err := newExporter(ctx, cfg, getenv)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := newResource(ctx, cfg, version)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if s := sampler(cfg.Sampler); s != nil {
		opts = append(opts, sdktrace.WithSampler(s)) // else OTEL_TRACES_SAMPLER, by default parentbased_always_on
	}
	setErrorHandler(log)
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracer{provider: tp, tracer: tp.Tracer(Instrumentation, trace.WithInstrumentationVersion(version))}, nil
}

func newExporter(ctx context.Context, cfg *config.Tracing, getenv func(string) string) (sdktrace.SpanExporter, error) {
	proto, err := Protocol(cfg, getenv)
	if err != nil {
		return nil, err
	}
	// Options are given only for the keys the file sets: the exporters
	// read the OTEL_EXPORTER_OTLP_* variables for the rest, and an option
	// wins over its variable.
	if proto == config.TracingGRPC {
		var opts []otlptracegrpc.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(cfg.Headers))
		}
		if cfg.Timeout > 0 {
			opts = append(opts, otlptracegrpc.WithTimeout(cfg.Timeout.D()))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	var opts []otlptracehttp.Option
	if cfg.Endpoint != "" {
		// A bare "/" path means the default /v1/traces, as no path does.
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(cfg.Endpoint, "/")))
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	if cfg.Timeout > 0 {
		opts = append(opts, otlptracehttp.WithTimeout(cfg.Timeout.D()))
	}
	return otlptracehttp.New(ctx, opts...)
}

// newResource names the service: umbra by default, OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES over that, tracing.service_name over both.
func newResource(ctx context.Context, cfg *config.Tracing, version string) (*resource.Resource, error) {
	opts := []resource.Option{
		resource.WithAttributes(attribute.String("service.name", "umbra"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	}
	if cfg.ServiceName != "" {
		opts = append(opts, resource.WithAttributes(attribute.String("service.name", cfg.ServiceName)))
	}
	return resource.New(ctx, opts...)
}

// sampler is the configured sampler, or nil to leave it to the SDK
// (OTEL_TRACES_SAMPLER).
func sampler(s config.TracingSampler) sdktrace.Sampler {
	if s.Ratio == nil {
		if s.ParentBased != nil && !*s.ParentBased {
			return sdktrace.AlwaysSample()
		}
		return nil
	}
	ratio := sdktrace.TraceIDRatioBased(*s.Ratio)
	if s.FollowsParent() {
		return sdktrace.ParentBased(ratio)
	}
	return ratio
}

// setErrorHandler logs the SDK's errors (failed exports) through the
// gateway's log, rate-limited: a collector that is down must not turn
// into a line per batch.
func setErrorHandler(log *slog.Logger) {
	if log == nil {
		return
	}
	var mu sync.Mutex
	var last time.Time
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(last) >= 10*time.Second {
			last = now
			log.Warn("tracing: export failed", "err", err.Error())
		}
	}))
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// ForceFlush exports the spans buffered so far (for tests and shutdown).
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.ForceFlush(ctx)
}

// inject writes sc as the traceparent (and tracestate) of h.
func (t *Tracer) inject(ctx context.Context, h http.Header) {
	t.prop.Inject(ctx, propagation.HeaderCarrier(h))
}
