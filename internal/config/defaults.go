package config

import (
	"reflect"
	"time"
)

// The defaults, declared once, as docs/config.md documents them (its
// tables are checked against these values by TestDocsDefaultsMatchCode).
// Each block of the file takes every key it leaves out, or writes as its
// zero value (docs/config.md: "writing the zero value is the same as
// leaving the key out"), from its DefaultX (applyDefaults).
// Defaults that depend on other values (a canary's cookie on the route's
// name, the egress key file on data_dir, a compare target on the route's
// shadow targets, a cluster node on the host name) are set by validation.
var (
	// DefaultConfig holds the top-level defaults.
	DefaultConfig = Config{
		Listen:  "127.0.0.1:8080",
		Admin:   Admin{Listen: "127.0.0.1:9901"},
		DataDir: "./umbra-data",
		Store:   Store{OnCorruption: "recover", CheckTimeout: Duration(30 * time.Second)},
		Log:     Log{Format: "text", Level: "info"},
		Server: Server{
			ReadHeaderTimeout: Duration(10 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			BodyReadTimeout:   Duration(60 * time.Second), // nginx's client_body_timeout
			MaxHeaderBytes:    1 << 20,
			MaxHeaderCount:    100,
			ShutdownGrace:     Duration(15 * time.Second),
		},
		Comparison: Comparison{Workers: 2, QueueSize: 1024, SamplesPerField: 5, MaxEndpoints: 200, MaxFields: 200,
			FlushInterval: Duration(time.Second)},
		Callers: Callers{MaxCallers: 100},
	}
	// DefaultBackend holds the defaults of backends.NAME.
	DefaultBackend = Backend{Balance: "round_robin", Host: "keep"}
	// DefaultRoute holds the defaults of routes[].
	DefaultRoute = Route{Upgrades: []string{"websocket"}}
	// DefaultShadow holds the defaults of routes[].shadow[].
	DefaultShadow = Shadow{Unsafe: "skip", MaxBody: 1 << 20, Timeout: Duration(5 * time.Second), MaxInFlight: 64, QueueSize: 256,
		Breaker: Breaker{Failures: 5, OpenFor: Duration(10 * time.Second)}}
	// DefaultCompare holds the defaults of routes[].compare.
	DefaultCompare = Compare{MaxBody: 1 << 20, Thresholds: Thresholds{Relative: 0.20, Absolute: 0.0003}}
	// DefaultRollout holds the defaults of routes[].rollout.
	DefaultRollout = Rollout{
		Start:    "manual",
		Interval: Duration(10 * time.Second),
		Analysis: Analysis{
			MaxErrorRateIncrease: 0.005,
			Confidence:           0.98,
			Latency:              LatencyAnalysis{Confidence: 0.98, MaxIncrease: 1.2, MaxP99Ratio: 1.5},
			// A burst needs min_errors failures among the canary's last
			// window requests and a recent rate min_increase above live's:
			// with 20 and 0.2, five straight failures decide.
			Burst:   BurstAnalysis{Window: 20, MinErrors: 5, MinIncrease: 0.2},
			Samples: 2000,
		},
		Webhooks: Webhooks{Timeout: Duration(5 * time.Second)},
	}
	// DefaultShadowStep holds the defaults of a rollout's shadow step.
	DefaultShadowStep = ShadowStep{MaxDiffRate: 0.01, MaxErrorRate: 0.01}
	// DefaultCluster holds the defaults of fleet mode.
	DefaultCluster = Cluster{
		Etcd:            ClusterEtcd{Prefix: "/umbra/", DialTimeout: Duration(5 * time.Second), RequestTimeout: Duration(2 * time.Second)},
		PublishInterval: Duration(time.Second),
		ShareInterval:   Duration(5 * time.Second),
		LeaseTTL:        Duration(5 * time.Second),
	}
	// DefaultEgress holds the defaults of the egress sandbox.
	DefaultEgress = Egress{Record: EgressRecord{TTL: Duration(10 * time.Minute), MaxBytes: 64 << 20, MaxBody: 1 << 20,
		Wait: Duration(2 * time.Second)}}
	// DefaultEgressService holds the defaults of egress.services.NAME.
	DefaultEgressService = EgressService{Unknown: "forward", Unmatched: EgressAnswer{Status: 502}, Timeout: Duration(30 * time.Second)}
	// DefaultFlags holds the defaults of flags.
	DefaultFlags = Flags{OFREP: OFREP{PathPrefix: "/ofrep"}}
	// DefaultAdoption holds the defaults of routes[].adoption.
	DefaultAdoption = Adoption{MaxBody: 64 << 10}
)

// DefaultCanaryCookie prefixes the affinity cookie; the route name follows.
const DefaultCanaryCookie = "umbra_canary_"

// applyDefaults fills every block of a decoded file from its DefaultX.
// It runs right after decoding, rather than in an UnmarshalYAML per type
// as Prometheus does: yaml.v3 drops a list element or map entry whose
// UnmarshalYAML reports an error (an unknown key, a wrong type), and with
// it every other problem validation would have found in that block.
func applyDefaults(c *Config) {
	withDefaults(c, &DefaultConfig)
	for _, b := range c.Backends {
		withDefaults(b, &DefaultBackend)
	}
	for _, r := range c.Routes {
		if r == nil {
			continue
		}
		withDefaults(r, &DefaultRoute)
		for _, s := range r.Shadow {
			withDefaults(s, &DefaultShadow)
		}
		withDefaults(r.Compare, &DefaultCompare)
		withDefaults(r.Adoption, &DefaultAdoption)
		if ro := r.Rollout; ro != nil {
			withDefaults(ro, &DefaultRollout)
			for _, st := range ro.Steps {
				if st != nil {
					withDefaults(st.Shadow, &DefaultShadowStep)
				}
			}
		}
	}
	withDefaults(c.Flags, &DefaultFlags)
	withDefaults(c.Cluster, &DefaultCluster)
	if e := c.Egress; e != nil {
		withDefaults(e, &DefaultEgress)
		for _, s := range e.Services {
			withDefaults(s, &DefaultEgressService)
		}
	}
}

// withDefaults fills the zero fields of *v (when v is not nil) from def.
func withDefaults[T any](v, def *T) {
	if v != nil {
		fillZero(reflect.ValueOf(v).Elem(), reflect.ValueOf(def).Elem())
	}
}

// fillZero sets every zero field of the struct v to def's, and fills the
// struct fields v has from def's in turn. Slices are copied, so a config
// never shares one with the defaults.
func fillZero(v, def reflect.Value) {
	for i := range v.NumField() {
		f, d := v.Field(i), def.Field(i)
		if !f.CanSet() || d.IsZero() {
			continue
		}
		switch {
		case f.IsZero() && d.Kind() == reflect.Slice:
			f.Set(reflect.AppendSlice(reflect.MakeSlice(d.Type(), 0, d.Len()), d))
		case f.IsZero():
			f.Set(d)
		case f.Kind() == reflect.Struct:
			fillZero(f, d)
		}
	}
}
