package egress

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/umbragw/umbra/internal/backend"
	"github.com/umbragw/umbra/internal/compare"
	"github.com/umbragw/umbra/internal/config"
)

// serviceSet is the services of one config, swapped whole on reload.
type serviceSet struct {
	byName map[string]*service
	byHost map[string]*service
	record config.EgressRecord
	redact *redactor
}

// service is one egress service.
type service struct {
	name      string
	cfg       *config.EgressService
	backend   *backend.Backend
	host      string // the upstream's host:port
	base      string // the upstream's base path, escaped, without a trailing "/"
	templates []template
	sims      *simulation // nil without simulation files
	cmp       *compare.Comparator
	m         *serviceMetrics
}

func newServiceSet(cfg *config.Egress, m *Metrics) (*serviceSet, error) {
	red, err := newRedactor(cfg.Record.Redact)
	if err != nil {
		return nil, err
	}
	set := &serviceSet{byName: map[string]*service{}, byHost: map[string]*service{}, record: cfg.Record, redact: red}
	for name, sc := range cfg.Services {
		svc, err := newService(sc, m)
		if err != nil {
			set.close(nil)
			return nil, err
		}
		set.byName[name] = svc
		for _, h := range sc.Hosts {
			set.byHost[strings.ToLower(h)] = svc
		}
	}
	return set, nil
}

// forwarder is the backend config live calls to sc are forwarded with:
// one endpoint, the endpoint's Host, and no retries (a payment is never
// sent twice).
func forwarder(sc *config.EgressService, up *url.URL) *config.Backend {
	return &config.Backend{
		Name: "egress:" + sc.Name, Endpoints: []string{up.Scheme + "://" + up.Host},
		Balance: "round_robin", Host: "endpoint",
		Timeout: sc.Timeout, ConnectTimeout: sc.ConnectTimeout, IdleTimeout: sc.IdleTimeout,
		MaxIdlePerEndpoint: sc.MaxIdlePerEndpoint, MaxConnsPerEndpoint: sc.MaxConnsPerEndpoint,
		Retry: config.Retry{Disable: true}, TLS: sc.TLS,
	}
}

func newService(sc *config.EgressService, m *Metrics) (*service, error) {
	up, err := url.Parse(sc.Upstream) // validated with the config
	if err != nil {
		return nil, fmt.Errorf("egress service %q: %w", sc.Name, err)
	}
	b, err := backend.New(forwarder(sc, up))
	if err != nil {
		return nil, fmt.Errorf("egress service %q: %w", sc.Name, err)
	}
	svc := &service{name: sc.Name, cfg: sc, backend: b, host: up.Host, base: (&url.URL{Path: strings.TrimSuffix(up.Path, "/")}).EscapedPath(), m: m.service(sc.Name)}
	for _, ep := range sc.Endpoints {
		svc.templates = append(svc.templates, newTemplate(ep))
	}
	if len(sc.Simulations) > 0 {
		if svc.sims, err = loadSimulations(sc.Simulations); err != nil {
			b.Close()
			return nil, fmt.Errorf("egress service %q: %w", sc.Name, err)
		}
	}
	ignoreHeaders := append([]string{"User-Agent", "Accept-Encoding", HeaderShadow, "X-Umbra-Sandbox"}, sc.Compare.IgnoreHeaders...)
	if svc.cmp, err = compare.New(compare.Options{Ignore: sc.Compare.Ignore, IgnoreHeaders: ignoreHeaders}); err != nil {
		b.Close()
		return nil, fmt.Errorf("egress service %q: compare: %w", sc.Name, err)
	}
	return svc, nil
}

// close closes the backends of set that keep does not use.
func (set *serviceSet) close(keep *serviceSet) {
	if set == nil {
		return
	}
	for name, svc := range set.byName {
		if keep != nil && keep.byName[name] == svc {
			continue
		}
		svc.backend.Close()
	}
}

func (set *serviceSet) maxTimeout() time.Duration {
	var d time.Duration
	for _, svc := range set.byName {
		d = max(d, svc.cfg.Timeout.D())
	}
	return d
}

// resolve finds the service a call is for and the path to forward:
// "/NAME/PATH" on the egress listener, or any path when the request's host
// (absolute-form target of a plain proxy request, or Host) is one of a
// service's hosts. The path is returned escaped, "/" when empty.
func (set *serviceSet) resolve(r *http.Request) (*service, string) {
	host := r.URL.Host
	if host == "" {
		host = r.Host
	}
	if len(set.byHost) > 0 && host != "" {
		h := strings.ToLower(host)
		if svc := set.byHost[h]; svc != nil {
			return svc, orRoot(r.URL.EscapedPath())
		}
		if name, _, err := net.SplitHostPort(h); err == nil {
			if svc := set.byHost[name]; svc != nil {
				return svc, orRoot(r.URL.EscapedPath())
			}
		}
	}
	if r.URL.Host != "" {
		// A proxy request for a host that is no service's: never routed
		// by its path to a service it did not name.
		return nil, ""
	}
	p := r.URL.EscapedPath()
	if len(p) < 2 || p[0] != '/' {
		return nil, ""
	}
	name, _, found := strings.Cut(p[1:], "/")
	svc := set.byName[name]
	if svc == nil {
		return nil, ""
	}
	if !found {
		return svc, "/"
	}
	return svc, p[1+len(name):] // "/rest", without a concatenation
}

func orRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// template is an endpoint template with its names for the usual methods
// made once, so that naming a call allocates nothing.
type template struct {
	segs  []string
	names map[string]string // method -> "METHOD /v1/charges/{id}"
}

func newTemplate(ep string) template {
	t := template{segs: strings.Split(ep, "/"), names: map[string]string{}}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		t.names[m] = m + " " + ep
	}
	return t
}

func (t *template) name(method string) string {
	if n, ok := t.names[method]; ok {
		return n
	}
	return method + " " + strings.Join(t.segs, "/")
}

// endpoint names a call: its method and the first endpoint template its
// path matches, or the path itself.
func (svc *service) endpoint(method, path string) string {
	for i := range svc.templates {
		if t := &svc.templates[i]; t.matches(path) {
			return t.name(method)
		}
	}
	return method + " " + path
}

// matches reports whether path has the template's segments, a "{name}"
// segment standing for any non-empty one.
func (t *template) matches(path string) bool {
	rest := path
	for i, s := range t.segs {
		seg, tail, more := strings.Cut(rest, "/")
		if more != (i < len(t.segs)-1) {
			return false
		}
		if strings.HasPrefix(s, "{") {
			if seg == "" {
				return false
			}
		} else if s != seg {
			return false
		}
		rest = tail
	}
	return true
}
