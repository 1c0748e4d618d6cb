package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"
)

var (
	nameRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	methodRe = regexp.MustCompile(`^[A-Z][A-Z0-9_-]*$`)
	headerRe = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
)

func (p *parser) validate(c *Config) {
	p.validateTop(c)
	p.validateBackends(c)
	p.validateFlagsAndCallers(c) // flags.go
	p.validateEgress(c)          // egress.go
	p.validateCluster(c)         // cluster.go
	names := map[string]int{}
	for i, r := range c.Routes {
		path := at("routes", i)
		if r == nil {
			p.errorf(path, "empty route")
			continue
		}
		if j, dup := names[r.Name]; dup && r.Name != "" {
			p.errorf(join(path, "name"), "duplicate route name %q (first used by route %d)", r.Name, j+1)
		} else {
			names[r.Name] = i
		}
		p.validateRoute(c, r, path)
	}
}

func (p *parser) validateTop(c *Config) {
	p.checkAddr(at("listen"), c.Listen)
	if c.TLS != nil {
		p.validateTLS(c.TLS)
	}
	p.checkAddr(at("admin", "listen"), c.Admin.Listen)
	if c.Admin.TokenFile != "" {
		if _, err := ReadToken(c.Admin.TokenFile); err != nil {
			p.errorf(at("admin", "token_file"), "%v", err)
		}
	} else if !isLoopback(c.Admin.Listen) {
		p.errorf(at("admin", "listen"), "admin listens off loopback (%s): set admin.token_file so the admin API requires a bearer token", c.Admin.Listen)
	}
	if !oneOf(c.Store.OnCorruption, "recover", "fail") {
		p.errorf(at("store", "on_corruption"), "store.on_corruption %q: use recover or fail", c.Store.OnCorruption)
	}
	if !oneOf(c.Log.Format, "text", "json") {
		p.errorf(at("log", "format"), "log format %q: use text or json", c.Log.Format)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		p.errorf(at("log", "level"), "log level %q: use debug, info, warn or error", c.Log.Level)
	}
	p.validateComparison(&c.Comparison)
	p.validateTracing(&c.Tracing)
	s := &c.Server
	if s.MaxHeaderCount < 0 {
		p.errorf(at("server", "max_header_count"), "max_header_count must be positive")
	}
	if s.MaxConnections < 0 {
		p.errorf(at("server", "max_connections"), "max_connections must be 0 (no limit) or positive")
	}
}

func (p *parser) validateTLS(t *TLS) {
	if t.CertFile == "" || t.KeyFile == "" {
		p.errorf(at("tls"), "tls needs both cert_file and key_file")
		return
	}
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		p.errorf(at("tls", "cert_file"), "cannot load TLS key pair: %v", err)
	}
}

func (p *parser) checkAddr(path []any, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.errorf(path, "invalid listen address %q: want host:port, for example 127.0.0.1:8080 or :8080", addr)
		return
	}
	if n, err := parsePort(port); err != nil || n > 65535 {
		p.errorf(path, "invalid port in %q", addr)
	}
	if strings.ContainsAny(host, " /") {
		p.errorf(path, "invalid host in %q", addr)
	}
}

func parsePort(s string) (int, error) {
	n := 0
	if s == "" {
		return 0, os.ErrInvalid
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, os.ErrInvalid
		}
		n = n*10 + int(r-'0')
		if n > 65535 {
			return n, os.ErrInvalid
		}
	}
	return n, nil
}

// isLoopback reports whether a listen address only accepts local clients.
// An empty host (":9901") listens on every interface, so it is not loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ReadToken reads an admin bearer token file; it must hold a non-empty token.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}

func (p *parser) validateBackends(c *Config) {
	names := make([]string, 0, len(c.Backends))
	for name := range c.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := at("backends", name)
		b := c.Backends[name]
		if b == nil {
			p.errorf(path, "backend %q has no endpoints", name)
			delete(c.Backends, name)
			continue
		}
		b.Name = name
		if !nameRe.MatchString(name) {
			p.errorf(path, "backend name %q: use letters, digits, '.', '_' and '-'", name)
		}
		p.validateBackend(b, path)
	}
}

func (p *parser) validateBackend(b *Backend, path []any) {
	if len(b.Endpoints) == 0 {
		p.errorf(path, "backend %q has no endpoints", b.Name)
	}
	for i, e := range b.Endpoints {
		u, err := url.Parse(e)
		switch {
		case err != nil:
			p.errorf(join(path, "endpoints", i), "invalid endpoint URL %q: %v", e, err)
			continue
		case u.Scheme != "http" && u.Scheme != "https":
			p.errorf(join(path, "endpoints", i), "endpoint %q: scheme must be http or https", e)
			continue
		case u.Host == "" || u.Hostname() == "":
			p.errorf(join(path, "endpoints", i), "endpoint %q has no host", e)
			continue
		case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil:
			p.errorf(join(path, "endpoints", i), "endpoint %q: only scheme://host:port is allowed (no path, query or credentials)", e)
		}
	}
	if !oneOf(b.Balance, "round_robin", "least_request") {
		p.errorf(join(path, "balance"), "balance %q: use round_robin or least_request", b.Balance)
	}
	if strings.ContainsAny(b.Host, " /\t") {
		p.errorf(join(path, "host"), "host %q: use keep, endpoint or a host name", b.Host)
	}
	for _, k := range []struct {
		name string
		v    int
	}{{"max_idle_per_endpoint", b.MaxIdlePerEndpoint}, {"max_conns_per_endpoint", b.MaxConnsPerEndpoint}} {
		if k.v < 0 {
			p.errorf(join(path, k.name), "%s must not be negative", k.name)
		}
	}
	if b.Health.MaxFails < 0 {
		p.errorf(join(path, "health", "max_fails"), "max_fails must not be negative")
	}
	if b.Retry.Attempts < 0 {
		p.errorf(join(path, "retry", "attempts"), "retry attempts must not be negative")
	}
	if b.TLS != nil && b.TLS.CAFile != "" {
		if _, err := os.ReadFile(b.TLS.CAFile); err != nil {
			p.errorf(join(path, "tls", "ca_file"), "%v", err)
		}
	}
}

func (p *parser) validateRoute(c *Config, r *Route, path []any) {
	switch {
	case r.Name == "":
		p.errorf(path, "route needs a name (it labels metrics and the admin API)")
	case !nameRe.MatchString(r.Name):
		p.errorf(join(path, "name"), "route name %q: use letters, digits, '.', '_' and '-'", r.Name)
	}
	p.checkBackendRef(c, join(path, "backend"), r.Backend, "route")
	p.validateMatch(&r.Match, join(path, "match"))
	if r.Key != "" {
		ks, ok := ParseKey(r.Key)
		if !ok {
			p.errorf(join(path, "key"), "key %q: use header:NAME, cookie:NAME, query:NAME or client_ip", r.Key)
		}
		r.KeySource = ks
	}
	seen := map[string]bool{}
	for i, s := range r.Shadow {
		sp := join(path, "shadow", i)
		if s == nil {
			p.errorf(sp, "empty shadow target")
			continue
		}
		if s.Backend != "" && seen[s.Backend] {
			p.errorf(join(sp, "backend"), "backend %q is already a shadow target of this route", s.Backend)
		}
		seen[s.Backend] = true
		p.validateShadow(c, r, s, sp)
	}
	if r.Compare != nil {
		p.validateCompare(c, r, join(path, "compare"))
	}
	if r.Canary != nil {
		p.validateCanary(c, r, join(path, "canary"))
	}
	if r.Rollout != nil {
		p.validateRollout(c, r, join(path, "rollout"))
	}
	p.validateRouteFlags(c, r, path) // flags.go
	p.validateUpgrades(r, path)
}

// validateUpgrades checks routes[].upgrades. Names are compared
// case-insensitively, so they are kept in lower case.
func (p *parser) validateUpgrades(r *Route, path []any) {
	seen := map[string]bool{}
	for i, name := range r.Upgrades {
		ep := join(path, "upgrades", i)
		lower := strings.ToLower(name)
		switch {
		case name == "" || strings.IndexFunc(name, func(c rune) bool { return !httpguts.IsTokenRune(c) }) >= 0:
			p.errorf(ep, "upgrade %q: a protocol name is an HTTP token, without a version (websocket)", name)
		case lower == "h2c":
			p.errorf(ep, "h2c cannot be allowed: umbra forwards HTTP/1.1 upstream, and an h2c upgrade would open a tunnel no route sees into (use HTTP/2 over TLS)")
		case seen[lower]:
			p.errorf(ep, "upgrade %q is listed twice", name)
		}
		seen[lower] = true
		r.Upgrades[i] = lower
	}
}

func (p *parser) checkBackendRef(c *Config, path []any, name, what string) {
	if name == "" {
		p.errorf(path, "%s needs a backend", what)
		return
	}
	if _, ok := c.Backends[name]; !ok {
		p.errorf(path, "%s names undefined backend %q (defined: %s)", what, name, quoteAll(backendNames(c)))
	}
}

func backendNames(c *Config) []string {
	names := make([]string, 0, len(c.Backends))
	for n := range c.Backends {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (p *parser) validateMatch(m *Match, path []any) {
	if m.Path != "" && m.PathPrefix != "" {
		p.errorf(join(path, "path"), "use either path or path_prefix, not both")
	}
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		p.errorf(join(path, "path"), "path %q must start with '/'", m.Path)
	}
	if m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/") {
		p.errorf(join(path, "path_prefix"), "path_prefix %q must start with '/'", m.PathPrefix)
	}
	m.Host = strings.ToLower(strings.TrimSuffix(m.Host, "."))
	if h := m.Host; h != "" && (strings.ContainsAny(h, " /:") || strings.Contains(h[1:], "*") || h == "*" || h[0] == '*' && !strings.HasPrefix(h, "*.")) {
		p.errorf(join(path, "host"), "host %q: use a host name or *.domain (no port, no scheme)", m.Host)
	}
	p.normalizeMethods(m.Methods, join(path, "methods"))
	for i := range m.Headers {
		p.validateValueMatch(&m.Headers[i], join(path, "headers", i), true)
	}
	for i := range m.Query {
		p.validateValueMatch(&m.Query[i], join(path, "query", i), false)
	}
}

func (p *parser) normalizeMethods(methods []string, path []any) {
	for i, meth := range methods {
		methods[i] = strings.ToUpper(meth)
		if !methodRe.MatchString(methods[i]) {
			p.errorf(join(path, i), "invalid method %q", meth)
		}
	}
}

// validateValueMatch checks a header (header: true) or query condition;
// internal/match compiles it again where it is used.
func (p *parser) validateValueMatch(m *ValueMatch, path []any, header bool) {
	switch {
	case m.Name == "":
		p.errorf(path, "match needs a name")
	case header && !headerRe.MatchString(m.Name):
		p.errorf(join(path, "name"), "invalid header name %q", m.Name)
	}
	if m.Value != "" && m.Regex != "" {
		p.errorf(join(path, "regex"), "use either value or regex, not both")
	}
	if m.Present != nil && !*m.Present && (m.Value != "" || m.Regex != "") {
		p.errorf(join(path, "present"), "present: false means the %s must be absent; it cannot also have a value or regex", map[bool]string{true: "header", false: "parameter"}[header])
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			p.errorf(join(path, "regex"), "invalid regex: %v", err)
		}
	}
}

// ParseKey parses a caller-key source: header:NAME, cookie:NAME, query:NAME or client_ip.
func ParseKey(s string) (KeySource, bool) {
	if s == "client_ip" {
		return KeySource{Kind: "client_ip"}, true
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" || !oneOf(kind, "header", "cookie", "query") {
		return KeySource{}, false
	}
	return KeySource{Kind: kind, Name: name}, true
}

func (p *parser) validateShadow(c *Config, r *Route, s *Shadow, path []any) {
	p.checkBackendRef(c, join(path, "backend"), s.Backend, "shadow")
	if s.Backend != "" && s.Backend == r.Backend {
		p.errorf(join(path, "backend"), "shadow backend %q is the route's own backend", s.Backend)
	}
	if !p.has(join(path, "percent")...) {
		p.errorf(path, "shadow needs percent (0 to 100, decimals allowed)")
	}
	if !oneOf(s.Unsafe, "skip", "mark", "allow") {
		p.errorf(join(path, "unsafe"), "unsafe %q: use skip, mark or allow", s.Unsafe)
	}
	// Documented: 0 or less means the default (0 was filled in decoding).
	for _, v := range []struct{ field, def *int }{{&s.MaxInFlight, &DefaultShadow.MaxInFlight},
		{&s.QueueSize, &DefaultShadow.QueueSize}, {&s.Breaker.Failures, &DefaultShadow.Breaker.Failures}} {
		if *v.field < 0 {
			*v.field = *v.def
		}
	}
	p.normalizeMethods(s.Match.Methods, join(path, "match", "methods"))
	for i := range s.Match.Headers {
		p.validateValueMatch(&s.Match.Headers[i], join(path, "match", "headers", i), true)
	}
	for i, h := range s.Headers.Remove {
		if !headerRe.MatchString(h) {
			p.errorf(join(path, "headers", "remove", i), "invalid header name %q", h)
		}
	}
	for h := range s.Headers.Set {
		if !headerRe.MatchString(h) {
			p.errorf(join(path, "headers", "set", h), "invalid header name %q", h)
		}
	}
}
