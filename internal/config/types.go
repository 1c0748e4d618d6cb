// Package config defines umbra's configuration file: its types, strict
// loading with file:line:col errors, defaults and semantic validation.
//
// The YAML keys are a contract with users (see docs/config.md): keys are
// added freely but never renamed without a recorded reason.
package config

import "go.yaml.in/yaml/v3"

// Config is one loaded, validated configuration file. It is immutable once
// Load returns: the gateway compiles it into a runtime snapshot.
type Config struct {
	// File is the path the config was loaded from (empty for in-memory configs).
	File string `yaml:"-" json:"-"`

	Listen     string              `yaml:"listen" json:"listen"`
	TLS        *TLS                `yaml:"tls" json:"tls,omitempty"`
	Admin      Admin               `yaml:"admin" json:"admin"`
	DataDir    string              `yaml:"data_dir" json:"data_dir"`
	Store      Store               `yaml:"store" json:"store"` // the embedded store in data_dir
	Log        Log                 `yaml:"log" json:"log"`
	Server     Server              `yaml:"server" json:"server"`
	Comparison Comparison          `yaml:"comparison" json:"comparison"`
	Backends   map[string]*Backend `yaml:"backends" json:"backends"`
	Routes     []*Route            `yaml:"routes" json:"routes"`
	Flags      *Flags              `yaml:"flags" json:"flags,omitempty"`     // feature flags, OFREP (flags.go)
	Callers    Callers             `yaml:"callers" json:"callers"`           // caller identity for adoption (flags.go)
	Egress     *Egress             `yaml:"egress" json:"egress,omitempty"`   // egress sandbox (egress.go)
	Tracing    Tracing             `yaml:"tracing" json:"tracing"`           // OpenTelemetry tracing (tracing.go)
	Cluster    *Cluster            `yaml:"cluster" json:"cluster,omitempty"` // fleet mode on etcd (cluster.go)

	// root is the parsed document, for the positions of values (Position).
	root *yaml.Node
}

// TLS enables HTTPS (and with it HTTP/2) on the main listener.
type TLS struct {
	CertFile string `yaml:"cert_file" json:"cert_file"`
	KeyFile  string `yaml:"key_file" json:"key_file"`
}

// Admin is the separate listener for health, metrics and the admin API.
type Admin struct {
	Listen    string `yaml:"listen" json:"listen"`
	TokenFile string `yaml:"token_file" json:"token_file,omitempty"`
}

// Store says how umbra treats its embedded store in data_dir.
type Store struct {
	// OnCorruption is what a damaged or empty store file does at start-up:
	// "recover" (move it aside, start empty, hold rollouts) or "fail".
	OnCorruption string `yaml:"on_corruption" json:"on_corruption"`
	// CheckTimeout bounds the consistency check of the file at start-up.
	CheckTimeout Duration `yaml:"check_timeout" json:"check_timeout"`
}

// Log configures structured logging.
type Log struct {
	Format string `yaml:"format" json:"format"` // text | json
	Level  string `yaml:"level" json:"level"`   // debug | info | warn | error
	Access *bool  `yaml:"access" json:"access"` // one line per request; default true
}

// AccessEnabled reports whether access logging is on (default true).
func (l Log) AccessEnabled() bool { return l.Access == nil || *l.Access }

// Server holds the main listener's protocol limits and shutdown behaviour.
type Server struct {
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// BodyReadTimeout bounds each wait for more of a request body (plain listener).
	BodyReadTimeout Duration `yaml:"body_read_timeout" json:"body_read_timeout"`
	MaxHeaderBytes  ByteSize `yaml:"max_header_bytes" json:"max_header_bytes"`
	// MaxHeaderCount caps the field lines of a request head (plain listener).
	MaxHeaderCount int `yaml:"max_header_count" json:"max_header_count"`
	// MaxConnections caps the main listener's open client connections;
	// more wait in the kernel's accept queue. 0: no limit.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// ShutdownGrace bounds how long SIGTERM waits for in-flight requests.
	ShutdownGrace Duration `yaml:"shutdown_grace" json:"shutdown_grace"`
}

// Backend is a named group of endpoints serving the same version of a service.
type Backend struct {
	Name      string   `yaml:"-" json:"-"`
	Endpoints []string `yaml:"endpoints" json:"endpoints"`
	// Balance picks an endpoint per request: round_robin (default) | least_request.
	Balance string `yaml:"balance" json:"balance"`
	// Host is the Host header sent upstream: "keep" (default, the client's),
	// "endpoint" (the endpoint URL's host:port) or any literal host name.
	Host string `yaml:"host" json:"host"`
	// Timeout bounds the wait for the response headers after the request is sent.
	Timeout        Duration `yaml:"timeout" json:"timeout"`
	ConnectTimeout Duration `yaml:"connect_timeout" json:"connect_timeout"`
	// IdleTimeout closes pooled keep-alive connections unused this long.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// MaxIdlePerEndpoint is the keep-alive pool size per endpoint.
	MaxIdlePerEndpoint int `yaml:"max_idle_per_endpoint" json:"max_idle_per_endpoint"`
	// MaxConnsPerEndpoint caps connections per endpoint (0: unlimited).
	MaxConnsPerEndpoint int          `yaml:"max_conns_per_endpoint" json:"max_conns_per_endpoint"`
	Health              HealthCheck  `yaml:"health" json:"health"`
	Retry               Retry        `yaml:"retry" json:"retry"`
	TLS                 *UpstreamTLS `yaml:"tls" json:"tls,omitempty"`
}

// UpstreamTLS configures https endpoints.
type UpstreamTLS struct {
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
	CAFile             string `yaml:"ca_file" json:"ca_file,omitempty"`
	ServerName         string `yaml:"server_name" json:"server_name,omitempty"`
}

// HealthCheck is passive health: an endpoint is ejected after MaxFails
// consecutive connection failures and readmitted after EjectFor.
type HealthCheck struct {
	MaxFails int      `yaml:"max_fails" json:"max_fails"`
	EjectFor Duration `yaml:"eject_for" json:"eject_for"`
}

// Retry governs retrying a request on another endpoint. Only idempotent
// bodyless requests that got no byte of an answer (the dial failed, or the
// connection died before the answer began) are retried.
type Retry struct {
	Attempts int  `yaml:"attempts" json:"attempts"` // extra attempts; default 1, 0 disables via Disable
	Disable  bool `yaml:"disable" json:"disable"`
}

// Route maps matching requests to a backend.
type Route struct {
	Name    string    `yaml:"name" json:"name"`
	Match   Match     `yaml:"match" json:"match"`
	Backend string    `yaml:"backend" json:"backend"`
	Key     string    `yaml:"key" json:"key,omitempty"`
	Shadow  []*Shadow `yaml:"shadow" json:"shadow,omitempty"`
	Compare *Compare  `yaml:"compare" json:"compare,omitempty"`
	Canary  *Canary   `yaml:"canary" json:"canary,omitempty"`
	Rollout *Rollout  `yaml:"rollout" json:"rollout,omitempty"`
	// Upgrades lists the protocols a client may switch to with Upgrade
	// (lower case, names without versions); validation fills in
	// DefaultUpgrades when the key is absent.
	Upgrades []string `yaml:"upgrades" json:"upgrades"`

	// Flag-gated matching, flag forwarding and adoption rules (flags.go).
	Dark         bool              `yaml:"dark" json:"dark,omitempty"`
	FlagContext  map[string]string `yaml:"flag_context" json:"flag_context,omitempty"`
	ForwardFlags []string          `yaml:"forward_flags" json:"forward_flags,omitempty"`
	Adoption     *Adoption         `yaml:"adoption" json:"adoption,omitempty"`
	FlagAttrs    []ContextAttr     `yaml:"-" json:"-"` // FlagContext parsed, sorted by name

	// KeySource is Key parsed (filled by validation).
	KeySource KeySource `yaml:"-" json:"-"`
}

// Match selects requests. All given conditions must hold.
type Match struct {
	Host       string       `yaml:"host" json:"host,omitempty"`
	Path       string       `yaml:"path" json:"path,omitempty"` // exact, or a template with {name} segments
	PathPrefix string       `yaml:"path_prefix" json:"path_prefix,omitempty"`
	Methods    []string     `yaml:"methods" json:"methods,omitempty"`
	Headers    []ValueMatch `yaml:"headers" json:"headers,omitempty"`
	Query      []ValueMatch `yaml:"query" json:"query,omitempty"`
	Flag       *FlagMatch   `yaml:"flag" json:"flag,omitempty"` // flags.go
}

// ValueMatch matches one request header or query parameter by exact
// value, regular expression, or presence (neither value nor regex given).
// internal/match compiles it, for routes and shadow targets alike.
type ValueMatch struct {
	Name    string `yaml:"name" json:"name"`
	Value   string `yaml:"value" json:"value,omitempty"`
	Regex   string `yaml:"regex" json:"regex,omitempty"`
	Present *bool  `yaml:"present" json:"present,omitempty"`
}

// Shadow copies a share of a route's requests to another backend.
type Shadow struct {
	Backend string  `yaml:"backend" json:"backend"`
	Percent Percent `yaml:"percent" json:"percent"`
	// Unsafe is the policy for POST/PUT/PATCH/DELETE: skip (default) | mark | allow.
	Unsafe  string      `yaml:"unsafe" json:"unsafe"`
	MaxBody ByteSize    `yaml:"max_body" json:"max_body"`
	Match   ShadowMatch `yaml:"match" json:"match,omitempty"`
	Headers HeaderRules `yaml:"headers" json:"headers,omitempty"`
	// HostSuffix appended to the Host of copies (for example "-shadow"); off by default.
	HostSuffix  string   `yaml:"host_suffix" json:"host_suffix,omitempty"`
	Timeout     Duration `yaml:"timeout" json:"timeout"`
	MaxInFlight int      `yaml:"max_in_flight" json:"max_in_flight"`
	QueueSize   int      `yaml:"queue_size" json:"queue_size"`
	Breaker     Breaker  `yaml:"breaker" json:"breaker"`
}

// ShadowMatch narrows which of the route's requests a shadow target gets.
type ShadowMatch struct {
	Methods    []string     `yaml:"methods" json:"methods,omitempty"`
	PathPrefix string       `yaml:"path_prefix" json:"path_prefix,omitempty"`
	Headers    []ValueMatch `yaml:"headers" json:"headers,omitempty"`
}

// HeaderRules edit the headers of a copy.
type HeaderRules struct {
	Set    map[string]string `yaml:"set" json:"set,omitempty"`
	Remove []string          `yaml:"remove" json:"remove,omitempty"`
}

// Breaker is a consecutive-failure circuit breaker.
type Breaker struct {
	Failures int      `yaml:"failures" json:"failures"`
	OpenFor  Duration `yaml:"open_for" json:"open_for"`
}

// KeySource names where a caller's identity is read from.
type KeySource struct {
	Kind string // "" (none) | header | cookie | query | client_ip
	Name string
}

// Canary sends a sticky share of a route's callers to another backend.
type Canary struct {
	Backend string  `yaml:"backend" json:"backend"`
	Weight  Percent `yaml:"weight" json:"weight"`
	// OverrideHeader, when set, lets a request pick its version with the
	// values "canary" or "live" (for testers and smoke tests).
	OverrideHeader string `yaml:"override_header" json:"override_header,omitempty"`
	// Cookie remembers the assignment of callers without a key.
	Cookie string `yaml:"cookie" json:"cookie"`
}
