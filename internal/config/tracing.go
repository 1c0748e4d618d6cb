package config

import (
	"net/url"
	"strings"
)

// Tracing configures OpenTelemetry tracing: spans exported over OTLP.
// Every key left out falls back to the standard OTEL_* environment
// variable, then to the OpenTelemetry default (see docs/config.md,
// "Tracing"); a key written in the file wins over the environment, as
// with the OpenTelemetry SDK's own options.
type Tracing struct {
	// Enabled turns tracing on or off. Left out, tracing is on when
	// OTEL_TRACES_EXPORTER is otlp (and OTEL_SDK_DISABLED is not true).
	Enabled *bool `yaml:"enabled" json:"enabled,omitempty"`
	// Endpoint is the collector's URL: scheme http (plain) or https,
	// host, port, and for http/protobuf an optional path (default
	// /v1/traces).
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
	// Protocol is http/protobuf or grpc.
	Protocol string `yaml:"protocol" json:"protocol,omitempty"`
	// Headers are sent with every export (for example a collector's
	// token); never shown by the admin API.
	Headers map[string]string `yaml:"headers" json:"-"`
	// Timeout bounds one export.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// The service.name of umbra's spans.
	ServiceName string `yaml:"service_name" json:"service_name,omitempty"`
	// Which traces are recorded.
	Sampler TracingSampler `yaml:"sampler" json:"sampler"`
}

// TracingSampler chooses which traces are recorded.
type TracingSampler struct {
	// Ratio is the share of new traces recorded, from 0 to 1. Left out,
	// OTEL_TRACES_SAMPLER (and _ARG) decide; by default every trace.
	Ratio *float64 `yaml:"ratio" json:"ratio,omitempty"`
	// ParentBased follows the caller's decision (the sampled flag of an
	// incoming traceparent) and applies Ratio only to new traces.
	// Default true.
	ParentBased *bool `yaml:"parent_based" json:"parent_based,omitempty"`
}

// Tracing protocols (config key tracing.protocol, OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	TracingHTTP = "http/protobuf"
	TracingGRPC = "grpc"
)

// FollowsParent reports whether the sampler honours an incoming sampled
// flag (default true).
func (s TracingSampler) FollowsParent() bool { return s.ParentBased == nil || *s.ParentBased }

func (p *parser) validateTracing(t *Tracing) {
	if !p.has("tracing") {
		return
	}
	if t.Protocol != "" && t.Protocol != TracingHTTP && t.Protocol != TracingGRPC {
		p.errorf(at("tracing", "protocol"), "tracing protocol %q: use http/protobuf or grpc", t.Protocol)
	}
	if t.Endpoint != "" {
		u, err := url.Parse(t.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			p.errorf(at("tracing", "endpoint"), "tracing endpoint %q: want a URL such as http://127.0.0.1:4318", t.Endpoint)
		case t.Protocol == TracingGRPC && strings.Trim(u.Path, "/") != "":
			p.errorf(at("tracing", "endpoint"), "tracing endpoint %q: a grpc endpoint has no path", t.Endpoint)
		}
	}
	for name := range t.Headers {
		if !headerRe.MatchString(name) {
			p.errorf(at("tracing", "headers", name), "invalid header name %q", name)
		}
	}
	if r := t.Sampler.Ratio; r != nil && !(*r >= 0 && *r <= 1) {
		p.errorf(at("tracing", "sampler", "ratio"), "sampler ratio %v: want a number from 0 to 1", *r)
	}
}
