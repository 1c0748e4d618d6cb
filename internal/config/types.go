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

	// Address of the main listener, which proxies the traffic.
	Listen string `yaml:"listen" json:"listen"`
	// Serve HTTPS (and HTTP/2) on Listen.
	TLS *TLS `yaml:"tls" json:"tls,omitempty"`
	// The admin listener: probes, metrics, the admin API and the dashboard.
	Admin Admin `yaml:"admin" json:"admin"`
	// Directory of umbra's embedded store (diff samples, rollout state).
	DataDir string `yaml:"data_dir" json:"data_dir"`
	Store   Store  `yaml:"store" json:"store"` // the embedded store in data_dir
	// Structured logging.
	Log Log `yaml:"log" json:"log"`
	// The main listener's protocol limits and shutdown.
	Server Server `yaml:"server" json:"server"`
	// The comparison engine's workers, queue and bounds.
	Comparison Comparison `yaml:"comparison" json:"comparison"`
	// The upstream services, by name.
	Backends map[string]*Backend `yaml:"backends" json:"backends"`
	// Which requests go where, in match order.
	Routes  []*Route `yaml:"routes" json:"routes"`
	Flags   *Flags   `yaml:"flags" json:"flags,omitempty"`     // feature flags, OFREP (flags.go)
	Callers Callers  `yaml:"callers" json:"callers"`           // caller identity for adoption (flags.go)
	Egress  *Egress  `yaml:"egress" json:"egress,omitempty"`   // egress sandbox (egress.go)
	Tracing Tracing  `yaml:"tracing" json:"tracing"`           // OpenTelemetry tracing (tracing.go)
	Cluster *Cluster `yaml:"cluster" json:"cluster,omitempty"` // fleet mode on etcd (cluster.go)

	// root is the parsed document, for the positions of values (Position).
	root *yaml.Node
}

// TLS enables HTTPS (and with it HTTP/2) on the main listener.
type TLS struct {
	// PEM certificate chain, leaf first.
	CertFile string `yaml:"cert_file" json:"cert_file"`
	// PEM private key of the certificate.
	KeyFile string `yaml:"key_file" json:"key_file"`
}

// Admin is the separate listener for health, metrics and the admin API.
type Admin struct {
	// Address of the admin listener.
	Listen string `yaml:"listen" json:"listen"`
	// File holding the admin bearer token; required off loopback.
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
	// Longest time a client may take to send the request line and headers.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout"`
	// A keep-alive client connection idle this long is closed.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// BodyReadTimeout bounds each wait for more of a request body (plain listener).
	BodyReadTimeout Duration `yaml:"body_read_timeout" json:"body_read_timeout"`
	// Largest request header block accepted (431 beyond).
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes" json:"max_header_bytes"`
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
	// The backend's name (its key under backends), set by validation.
	Name string `yaml:"-" json:"-"`
	// At least one http://host[:port] or https://host[:port].
	Endpoints []string `yaml:"endpoints" json:"endpoints"`
	// Balance picks an endpoint per request: round_robin (default) | least_request.
	Balance string `yaml:"balance" json:"balance"`
	// Host is the Host header sent upstream: "keep" (default, the client's),
	// "endpoint" (the endpoint URL's host:port) or any literal host name.
	Host string `yaml:"host" json:"host"`
	// Timeout bounds the wait for the response headers after the request is sent.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Longest time to open a connection to an endpoint, TLS handshake included.
	ConnectTimeout Duration `yaml:"connect_timeout" json:"connect_timeout"`
	// IdleTimeout closes pooled keep-alive connections unused this long.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// MaxIdlePerEndpoint is the keep-alive pool size per endpoint.
	MaxIdlePerEndpoint int `yaml:"max_idle_per_endpoint" json:"max_idle_per_endpoint"`
	// MaxConnsPerEndpoint caps connections per endpoint (0: unlimited).
	MaxConnsPerEndpoint int `yaml:"max_conns_per_endpoint" json:"max_conns_per_endpoint"`
	// Passive health: when an endpoint is ejected.
	Health HealthCheck `yaml:"health" json:"health"`
	// Which failed requests are tried again on another endpoint.
	Retry Retry `yaml:"retry" json:"retry"`
	// Settings for https endpoints.
	TLS *UpstreamTLS `yaml:"tls" json:"tls,omitempty"`
}

// UpstreamTLS configures https endpoints.
type UpstreamTLS struct {
	// Accept any certificate (testing only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
	// PEM certificate authorities trusted for the endpoints, instead of the system's.
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
	// Name sent in SNI and checked against the certificate.
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
}

// HealthCheck is passive health: an endpoint is ejected after MaxFails
// consecutive connection failures and readmitted after EjectFor.
type HealthCheck struct {
	// Consecutive connection failures after which an endpoint is ejected.
	MaxFails int `yaml:"max_fails" json:"max_fails"`
	// How long an ejected endpoint stays out before it is tried again.
	EjectFor Duration `yaml:"eject_for" json:"eject_for"`
}

// Retry governs retrying a request on another endpoint. Only idempotent
// bodyless requests that got no byte of an answer (the dial failed, or the
// connection died before the answer began) are retried.
type Retry struct {
	Attempts int `yaml:"attempts" json:"attempts"` // extra attempts; default 1, 0 disables via Disable
	// Turns retries off for this backend.
	Disable bool `yaml:"disable" json:"disable"`
}

// Route maps matching requests to a backend.
type Route struct {
	// Unique name; it labels metrics, logs and the admin API.
	Name string `yaml:"name" json:"name"`
	// Conditions a request must meet, all of them.
	Match Match `yaml:"match" json:"match"`
	// Backend that serves the matched requests (the live answer).
	Backend string `yaml:"backend" json:"backend"`
	// Where the caller's identity is read from: header:NAME, cookie:NAME, query:NAME or client_ip.
	Key string `yaml:"key" json:"key,omitempty"`
	// Backends that get copies of the matched requests.
	Shadow []*Shadow `yaml:"shadow" json:"shadow,omitempty"`
	// Compare a shadow target's answers with the live ones.
	Compare *Compare `yaml:"compare" json:"compare,omitempty"`
	// Serve a sticky share of the route's callers from another backend.
	Canary *Canary `yaml:"canary" json:"canary,omitempty"`
	// The rollout plan of the canary.
	Rollout *Rollout `yaml:"rollout" json:"rollout,omitempty"`
	// Upgrades lists the protocols a client may switch to with Upgrade
	// (lower case, names without versions); validation fills in
	// DefaultUpgrades when the key is absent.
	Upgrades []string `yaml:"upgrades" json:"upgrades"`

	// Flag-gated matching, flag forwarding and adoption rules (flags.go).
	Dark bool `yaml:"dark" json:"dark,omitempty"`
	// Request values added to the flag evaluation context, by attribute.
	FlagContext map[string]string `yaml:"flag_context" json:"flag_context,omitempty"`
	// Flags evaluated per request and sent upstream in X-Umbra-Flags.
	ForwardFlags []string `yaml:"forward_flags" json:"forward_flags,omitempty"`
	// Count the use of request body fields per caller.
	Adoption  *Adoption     `yaml:"adoption" json:"adoption,omitempty"`
	FlagAttrs []ContextAttr `yaml:"-" json:"-"` // FlagContext parsed, sorted by name

	// KeySource is Key parsed (filled by validation).
	KeySource KeySource `yaml:"-" json:"-"`
}

// Match selects requests. All given conditions must hold.
type Match struct {
	// The request's host (lower case, no port): a name or *.domain.
	Host string `yaml:"host" json:"host,omitempty"`
	Path string `yaml:"path" json:"path,omitempty"` // exact, or a template with {name} segments
	// A plain string prefix of the request path.
	PathPrefix string `yaml:"path_prefix" json:"path_prefix,omitempty"`
	// The request method must be one of these.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// Header conditions, all of which must hold.
	Headers []ValueMatch `yaml:"headers" json:"headers,omitempty"`
	// Query parameter conditions, like Headers, over the decoded query string.
	Query []ValueMatch `yaml:"query" json:"query,omitempty"`
	Flag  *FlagMatch   `yaml:"flag" json:"flag,omitempty"` // flags.go
}

// ValueMatch matches one request header or query parameter by exact
// value, regular expression, or presence (neither value nor regex given).
// internal/match compiles it, for routes and shadow targets alike.
type ValueMatch struct {
	// Header or parameter name (header names case-insensitive).
	Name string `yaml:"name" json:"name"`
	// Exact value required.
	Value string `yaml:"value" json:"value,omitempty"`
	// Regular expression (RE2) the value must match.
	Regex string `yaml:"regex" json:"regex,omitempty"`
	// Presence required (true, the default) or absence (false).
	Present *bool `yaml:"present" json:"present,omitempty"`
}

// Shadow copies a share of a route's requests to another backend.
type Shadow struct {
	// Backend that receives the copies.
	Backend string `yaml:"backend" json:"backend"`
	// Share of the matched requests copied, 0 to 100, decimals allowed.
	Percent Percent `yaml:"percent" json:"percent"`
	// Unsafe is the policy for POST/PUT/PATCH/DELETE: skip (default) | mark | allow.
	Unsafe string `yaml:"unsafe" json:"unsafe"`
	// Largest request body copied; a larger one gets no copy.
	MaxBody ByteSize `yaml:"max_body" json:"max_body"`
	// Narrows which of the route's requests this target gets.
	Match ShadowMatch `yaml:"match" json:"match,omitempty"`
	// Header edits applied to the copies.
	Headers HeaderRules `yaml:"headers" json:"headers,omitempty"`
	// HostSuffix appended to the Host of copies (for example "-shadow"); off by default.
	HostSuffix string `yaml:"host_suffix" json:"host_suffix,omitempty"`
	// Longest time for one copy: connecting, sending and reading the answer.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Copies sent to this target at the same time.
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight"`
	// Copies waiting to be sent; when full, new copies are dropped and counted.
	QueueSize int `yaml:"queue_size" json:"queue_size"`
	// Stops sending copies to a failing target for a while.
	Breaker Breaker `yaml:"breaker" json:"breaker"`
}

// ShadowMatch narrows which of the route's requests a shadow target gets.
type ShadowMatch struct {
	// As the route's match.methods.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// As the route's match.path_prefix.
	PathPrefix string `yaml:"path_prefix" json:"path_prefix,omitempty"`
	// As the route's match.headers.
	Headers []ValueMatch `yaml:"headers" json:"headers,omitempty"`
}

// HeaderRules edit the headers of a copy.
type HeaderRules struct {
	// Headers set (replacing any value) on copies.
	Set map[string]string `yaml:"set" json:"set,omitempty"`
	// Headers removed from copies.
	Remove []string `yaml:"remove" json:"remove,omitempty"`
}

// Breaker is a consecutive-failure circuit breaker.
type Breaker struct {
	// Consecutive failures that open the breaker.
	Failures int `yaml:"failures" json:"failures"`
	// How long the breaker stays open.
	OpenFor Duration `yaml:"open_for" json:"open_for"`
}

// KeySource names where a caller's identity is read from.
type KeySource struct {
	Kind string // "" (none) | header | cookie | query | client_ip
	// The header, cookie or query parameter name; empty for client_ip.
	Name string
}

// Canary sends a sticky share of a route's callers to another backend.
type Canary struct {
	// Backend that serves the canary's share.
	Backend string `yaml:"backend" json:"backend"`
	// Share of callers served by the canary, 0 to 100.
	Weight Percent `yaml:"weight" json:"weight"`
	// OverrideHeader, when set, lets a request pick its version with the
	// values "canary" or "live" (for testers and smoke tests).
	OverrideHeader string `yaml:"override_header" json:"override_header,omitempty"`
	// Cookie remembers the assignment of callers without a key.
	Cookie string `yaml:"cookie" json:"cookie"`
}
