package tracing

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/umbragw/umbra/internal/config"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestEnabled(t *testing.T) {
	on, off := true, false
	cases := []struct {
		name string
		cfg  config.Tracing
		env  func(string) string
		want bool
	}{
		{"nothing", config.Tracing{}, env(), false},
		{"exporter otlp", config.Tracing{}, env("OTEL_TRACES_EXPORTER", "otlp"), true},
		{"exporter none", config.Tracing{}, env("OTEL_TRACES_EXPORTER", "none"), false},
		{"sdk disabled", config.Tracing{}, env("OTEL_TRACES_EXPORTER", "otlp", "OTEL_SDK_DISABLED", "TRUE"), false},
		{"file on", config.Tracing{Enabled: &on}, env("OTEL_SDK_DISABLED", "true"), true},
		{"file off", config.Tracing{Enabled: &off}, env("OTEL_TRACES_EXPORTER", "otlp"), false},
	}
	for _, c := range cases {
		if got := Enabled(&c.cfg, c.env); got != c.want {
			t.Errorf("%s: Enabled = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestProtocol(t *testing.T) {
	cases := []struct {
		cfg  string
		env  func(string) string
		want string
		err  string
	}{
		{"", env(), config.TracingHTTP, ""},
		{"", env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), config.TracingGRPC, ""},
		{"", env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"), config.TracingHTTP, ""},
		{config.TracingHTTP, env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), config.TracingHTTP, ""},
		{"", env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), "", `OTEL_EXPORTER_OTLP_PROTOCOL="http/json"`},
	}
	for _, c := range cases {
		got, err := Protocol(&config.Tracing{Protocol: c.cfg}, c.env)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("Protocol(%q) = %q, %v; want %q, %q", c.cfg, got, err, c.want, c.err)
		}
	}
	on := true
	if _, err := New(context.Background(), &config.Tracing{Enabled: &on}, "t", env("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"), nil); err == nil {
		t.Error("New accepted an unknown protocol from the environment")
	}
	if tr, err := New(context.Background(), &config.Tracing{}, "t", env(), nil); tr != nil || err != nil {
		t.Errorf("New with tracing off = %v, %v; want nil, nil", tr, err)
	}
}

func TestSampler(t *testing.T) {
	half, yes, no := 0.5, true, false
	cases := []struct {
		s    config.TracingSampler
		want string // the SDK's description; "" for the environment's
	}{
		{config.TracingSampler{}, ""},
		{config.TracingSampler{ParentBased: &yes}, ""},
		{config.TracingSampler{ParentBased: &no}, sdktrace.AlwaysSample().Description()},
		{config.TracingSampler{Ratio: &half}, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.5)).Description()},
		{config.TracingSampler{Ratio: &half, ParentBased: &no}, sdktrace.TraceIDRatioBased(0.5).Description()},
	}
	for _, c := range cases {
		got := ""
		if s := sampler(c.s); s != nil {
			got = s.Description()
		}
		if got != c.want {
			t.Errorf("sampler(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}
