package config

import "testing"

func TestTracingErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"protocol", "tracing: {protocol: http/json}\n", []string{`1:21 tracing protocol "http/json": use http/protobuf or grpc`}},
		{"endpoint not a URL", "tracing:\n  endpoint: collector:4318\n", []string{`2:13 tracing endpoint "collector:4318": want a URL`}},
		{"endpoint scheme", "tracing: {endpoint: \"grpc://c:4317\"}\n", []string{`1:21 tracing endpoint "grpc://c:4317"`}},
		{"grpc endpoint path", "tracing: {protocol: grpc, endpoint: \"http://c:4317/v1/traces\"}\n", []string{`1:37 a grpc endpoint has no path`}},
		{"header name", "tracing:\n  headers: {\"bad name\": x}\n", []string{`2:25 invalid header name "bad name"`}},
		{"ratio above 1", "tracing:\n  sampler: {ratio: 5}\n", []string{`2:20 sampler ratio 5: want a number from 0 to 1`}},
		{"ratio negative", "tracing:\n  sampler: {ratio: -0.1}\n", []string{`2:20 sampler ratio -0.1`}},
		{"ratio a percent", "tracing:\n  sampler: {ratio: 1%}\n", []string{"2:20 cannot unmarshal !!str `1%` into float64"}},
		{"enabled", "tracing: {enabled: maybe}\n", []string{"1:20 cannot unmarshal !!str `maybe` into bool"}},
		{"timeout", "tracing: {timeout: 5}\n", []string{`1:20 invalid duration "5"`}},
		{"unknown key", "tracing: {sample: 1}\n", []string{`1:11 unknown key "sample"`}},
	})
}

func TestTracingAccepted(t *testing.T) {
	c := mustParse(t, bk+"routes: [{name: r, backend: v1}]\ntracing:\n  enabled: true\n  endpoint: \"https://c.example:4318/\"\n  sampler: {ratio: 0.25}\n")
	if tr := c.Tracing; tr.Enabled == nil || !*tr.Enabled || tr.Endpoint != "https://c.example:4318/" || *tr.Sampler.Ratio != 0.25 || !tr.Sampler.FollowsParent() || c.Position("tracing").Line != 6 {
		t.Errorf("tracing = %+v", tr)
	}
	if c := mustParse(t, bk+"routes: [{name: r, backend: v1}]\n"); c.Tracing.Enabled != nil {
		t.Errorf("no tracing key: %+v", c.Tracing)
	}
}
