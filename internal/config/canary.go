package config

func (p *parser) validateCanary(c *Config, r *Route, path []any) {
	cn := r.Canary
	p.checkBackendRef(c, join(path, "backend"), cn.Backend, "canary")
	if cn.Backend != "" && cn.Backend == r.Backend {
		p.errorf(join(path, "backend"), "canary backend %q is the route's own backend", cn.Backend)
	}
	if cn.OverrideHeader != "" && !headerRe.MatchString(cn.OverrideHeader) {
		p.errorf(join(path, "override_header"), "invalid header name %q", cn.OverrideHeader)
	}
	if cn.Cookie == "" {
		cn.Cookie = DefaultCanaryCookie + r.Name
	}
	if !headerRe.MatchString(cn.Cookie) {
		p.errorf(join(path, "cookie"), "invalid cookie name %q", cn.Cookie)
	}
}
