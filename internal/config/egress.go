package config

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Egress is umbra's egress sandbox: a listener through which services call
// third parties, so that the calls of shadow copies are answered by umbra
// (replayed from the live request's recorded calls, or simulated) and never
// reach the third party (see docs/egress.md).
type Egress struct {
	// Address of the egress listener (plain HTTP/1.1).
	Listen string `yaml:"listen" json:"listen"`
	// KeyFile holds the secret that tags shadow trace ids; default
	// DATA_DIR/egress.key, created on first start. Replicas of a fleet that
	// share egress listeners must share it.
	KeyFile string `yaml:"key_file" json:"key_file,omitempty"`
	// What is kept of live calls, and for how long.
	Record EgressRecord `yaml:"record" json:"record"`
	// The third parties, by name.
	Services map[string]*EgressService `yaml:"services" json:"services"`
}

// EgressRecord bounds what is kept of live calls.
type EgressRecord struct {
	// TTL is how long a live request's calls are kept for its copies.
	TTL Duration `yaml:"ttl" json:"ttl"`
	// MaxBytes bounds all recordings together; past it new live calls are
	// forwarded but not recorded (their copies' calls are then simulated
	// or refused, never forwarded).
	MaxBytes ByteSize `yaml:"max_bytes" json:"max_bytes"`
	// MaxBody bounds one recorded request or answer body.
	MaxBody ByteSize `yaml:"max_body" json:"max_body"`
	// Wait is how long a shadow call waits for the matching live call when
	// that call is still in flight (the live version called the third
	// party after answering).
	Wait Duration `yaml:"wait" json:"wait"`
	// Redact names what is replaced by "REDACTED" before a call is stored.
	Redact Redact `yaml:"redact" json:"redact"`
	// Persist keeps the recordings (redacted) in the embedded store in
	// data_dir, so that shadow copies find them after a restart; default
	// true. false keeps them in memory only.
	Persist *bool `yaml:"persist" json:"persist,omitempty"`
}

// Persists reports whether recordings are kept in the embedded store.
func (r *EgressRecord) Persists() bool { return r.Persist == nil || *r.Persist }

// Redact lists sensitive parts of recorded calls.
type Redact struct {
	// Headers are redacted in addition to the defaults (Authorization,
	// Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, Api-Key and any
	// header whose name contains "token", "secret" or "api-key").
	Headers []string `yaml:"headers" json:"headers,omitempty"`
	// JSON are paths in request and answer bodies: "$.card.number".
	JSON []string `yaml:"json" json:"json,omitempty"`
}

// EgressService is one third party reached through the egress listener.
type EgressService struct {
	// The service's name (its key under egress.services), set by validation.
	Name string `yaml:"-" json:"-"`
	// Upstream is the base URL calls are forwarded to: a call to
	// http://EGRESS/NAME/PATH goes to UPSTREAM/PATH.
	Upstream string `yaml:"upstream" json:"upstream"`
	// Hosts lets services use the egress listener as a plain HTTP proxy:
	// a request whose Host is one of these goes to this service.
	Hosts []string `yaml:"hosts" json:"hosts,omitempty"`
	// Unknown is what happens to a call umbra cannot tell the origin of
	// (no known trace, no X-Umbra-Shadow): forward (default) or deny.
	Unknown string `yaml:"unknown" json:"unknown"`
	// Endpoints are path templates ("/v1/charges/{id}") that name calls
	// in pairing, metrics and comparisons; other paths are named as sent.
	Endpoints []string `yaml:"endpoints" json:"endpoints,omitempty"`
	// Simulations are Hoverfly v5 simulation files answering shadow calls
	// that have no recording.
	Simulations []string `yaml:"simulations" json:"simulations,omitempty"`
	// Unmatched is the answer to a shadow call with neither a recording
	// nor a simulation.
	Unmatched EgressAnswer `yaml:"unmatched" json:"unmatched"`
	// Compare diffs the outbound calls of the candidate with the live
	// request's (on routes that compare answers).
	Compare EgressCompare `yaml:"compare" json:"compare"`

	// Longest wait for the third party's response headers.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Longest time to open a connection to the upstream, as for backends.
	ConnectTimeout Duration `yaml:"connect_timeout" json:"connect_timeout"`
	// Pooled connections unused this long are closed, as for backends.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// Keep-alive pool size, as for backends.
	MaxIdlePerEndpoint int `yaml:"max_idle_per_endpoint" json:"max_idle_per_endpoint"`
	// Cap on connections to the upstream (0: unlimited), as for backends.
	MaxConnsPerEndpoint int `yaml:"max_conns_per_endpoint" json:"max_conns_per_endpoint"`
	// Settings for an https upstream, as for backends.
	TLS *UpstreamTLS `yaml:"tls" json:"tls,omitempty"`
}

// EgressAnswer is a fixed answer.
type EgressAnswer struct {
	// Its status code (200 to 599).
	Status int `yaml:"status" json:"status"`
	// Its body.
	Body string `yaml:"body" json:"body"`
}

// EgressCompare configures the comparison of outbound calls.
type EgressCompare struct {
	// Stops comparing this service's calls.
	Disable bool `yaml:"disable" json:"disable,omitempty"`
	// JSON paths of request body fields never compared.
	Ignore []string `yaml:"ignore" json:"ignore,omitempty"`
	// Request headers not compared, besides the comparison's defaults.
	IgnoreHeaders []string `yaml:"ignore_headers" json:"ignore_headers,omitempty"`
}

var egressTemplateRe = regexp.MustCompile(`^(/([^/{}]*|\{[A-Za-z_][A-Za-z0-9_]*\}))+$`)

func (p *parser) validateEgress(c *Config) {
	e := c.Egress
	if e == nil {
		return
	}
	if e.Listen == "" {
		p.errorf(at("egress"), "egress needs a listen address (for example 127.0.0.1:9902)")
	} else {
		p.checkAddr(at("egress", "listen"), e.Listen)
		if (e.Listen == c.Listen || e.Listen == c.Admin.Listen) && !strings.HasSuffix(e.Listen, ":0") {
			p.errorf(at("egress", "listen"), "egress listen %q is already the main or admin listener", e.Listen)
		}
	}
	if e.KeyFile == "" {
		e.KeyFile = c.DataDir + string(os.PathSeparator) + "egress.key"
	}
	r := &e.Record
	for i, h := range r.Redact.Headers {
		if !headerRe.MatchString(h) {
			p.errorf(at("egress", "record", "redact", "headers", i), "invalid header name %q", h)
		}
	}
	for i, j := range r.Redact.JSON {
		if !strings.HasPrefix(j, "$") {
			p.errorf(at("egress", "record", "redact", "json", i), "JSON path %q must start with $", j)
		}
	}
	if len(e.Services) == 0 {
		p.errorf(at("egress"), "egress has no services")
	}
	names := make([]string, 0, len(e.Services))
	for name := range e.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	hosts := map[string]string{}
	for _, name := range names {
		path := at("egress", "services", name)
		s := e.Services[name]
		if s == nil {
			p.errorf(path, "egress service %q has no upstream", name)
			delete(e.Services, name)
			continue
		}
		s.Name = name
		if !nameRe.MatchString(name) {
			p.errorf(path, "egress service name %q: use letters, digits, '.', '_' and '-'", name)
		}
		p.validateEgressService(s, path)
		for i, h := range s.Hosts {
			h = strings.ToLower(h)
			if other, dup := hosts[h]; dup {
				p.errorf(join(path, "hosts", i), "host %q is already egress service %q's", h, other)
			}
			hosts[h] = name
		}
	}
}

func (p *parser) validateEgressService(s *EgressService, path []any) {
	u, err := url.Parse(s.Upstream)
	switch {
	case s.Upstream == "":
		p.errorf(path, "egress service %q has no upstream", s.Name)
	case err != nil:
		p.errorf(join(path, "upstream"), "invalid upstream URL %q: %v", s.Upstream, err)
	case u.Scheme != "http" && u.Scheme != "https":
		p.errorf(join(path, "upstream"), "upstream %q: scheme must be http or https", s.Upstream)
	case u.Host == "" || u.Hostname() == "":
		p.errorf(join(path, "upstream"), "upstream %q has no host", s.Upstream)
	case u.RawQuery != "" || u.User != nil || u.Fragment != "":
		p.errorf(join(path, "upstream"), "upstream %q: only scheme://host:port/base-path is allowed", s.Upstream)
	}
	if !oneOf(s.Unknown, "forward", "deny") {
		p.errorf(join(path, "unknown"), "unknown %q: use forward or deny", s.Unknown)
	}
	for i, ep := range s.Endpoints {
		if !egressTemplateRe.MatchString(ep) {
			p.errorf(join(path, "endpoints", i), "endpoint %q: want a path template such as /v1/charges/{id}", ep)
		}
	}
	for i, f := range s.Simulations {
		if _, err := os.Stat(f); err != nil {
			p.errorf(join(path, "simulations", i), "%v", err)
		}
	}
	for i, h := range s.Hosts {
		if h == "" || strings.ContainsAny(h, " /\t") {
			p.errorf(join(path, "hosts", i), "host %q: want a host name, optionally with :port", h)
		}
	}
	if s.Unmatched.Status < 200 || s.Unmatched.Status > 599 {
		p.errorf(join(path, "unmatched", "status"), "status %d: want 200 to 599", s.Unmatched.Status)
	}
	for i, j := range s.Compare.Ignore {
		if !strings.HasPrefix(j, "$") {
			p.errorf(join(path, "compare", "ignore", i), "JSON path %q must start with $", j)
		}
	}
	if s.MaxIdlePerEndpoint < 0 || s.MaxConnsPerEndpoint < 0 {
		p.errorf(path, "pool sizes must not be negative")
	}
	if s.TLS != nil && s.TLS.CAFile != "" {
		if _, err := os.ReadFile(s.TLS.CAFile); err != nil {
			p.errorf(join(path, "tls", "ca_file"), "%v", err)
		}
	}
}

// String names the service in errors.
func (s *EgressService) String() string { return fmt.Sprintf("egress service %q", s.Name) }
