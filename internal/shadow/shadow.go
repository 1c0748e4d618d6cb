// Package shadow copies a share of a route's live requests to other
// backends (dark launch) without ever affecting the live request: the
// decision is made before the live request is forwarded, the body is teed
// while it streams to the live backend, and after the live response has
// been written the copies are handed to each target's bounded queue with a
// non-blocking send.
package shadow

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/umbragw/umbra/internal/bucket"
	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/headers"
	"github.com/umbragw/umbra/internal/match"
	"github.com/umbragw/umbra/internal/metrics"
	"github.com/umbragw/umbra/internal/tracing"
)

// Headers set on copies.
const (
	HeaderShadow      = "X-Umbra-Shadow"
	HeaderSandbox     = "X-Umbra-Sandbox"
	HeaderTraceparent = "Traceparent"
)

// Set is the shadow targets of one route.
type Set struct {
	route   string
	key     config.KeySource
	targets []*Target
	compare *CompareSpec    // nil when the route compares nothing
	tracer  *tracing.Tracer // nil when tracing is off
}

// NewSet groups a route's targets; compare and tr may be nil.
func NewSet(route *config.Route, targets []*Target, compare *CompareSpec, tr *tracing.Tracer) *Set {
	return &Set{route: route.Name, key: route.KeySource, targets: targets, compare: compare, tracer: tr}
}

// Targets lists the set's targets.
func (s *Set) Targets() []*Target { return s.targets }

// Pending is a live request that will be copied to some targets once its
// live exchange is over.
type Pending struct {
	set      *Set
	endpoint string
	targets  []*Target
	tee      *tee
	mu       sync.Mutex   // guards tee state against a transport still reading
	live     *LiveCapture // set when the candidate of a comparison takes a copy
	pairer   Pairer       // set when the egress sandbox pairs copies with the live request
	buf      [4]*Target
}

// CopyRole says what a copy is for, for the egress sandbox's comparison of
// outbound calls.
type CopyRole uint8

// Copy roles.
const (
	CopyPlain     CopyRole = iota // a shadow target that is not compared
	CopyCandidate                 // the compared new version
	CopySecondary                 // the second instance of the live version (noise)
)

// Pairer gives each copy a trace of its own that the egress sandbox maps
// to the live request (internal/egress), so that the copy's outbound calls
// are answered with the live request's recorded ones.
type Pairer interface {
	// PairCopy returns the traceparent of a copy for target and a function
	// to call exactly once when the copy's exchange is over (ok: it got an
	// answer below 500).
	PairCopy(target string, role CopyRole) (traceparent string, done func(ok bool))
}

// Pair makes the copies carry traces from pr instead of the live request's
// trace with a span of their own.
func (p *Pending) Pair(pr Pairer) { p.pairer = pr }

// Begin decides, before the live request is forwarded, which targets get a
// copy, and counts the rest by reason. It returns nil (and allocates
// nothing) when no target takes this request. When a copy needs the body,
// r.Body is replaced by a tee.
//
// endpoint is the matched route's endpoint name ("/v1/shortlinks/{id}");
// comparisons are counted per method and endpoint.
func (s *Set) Begin(r *http.Request, endpoint string) *Pending {
	b := callerBucket(r, s.key)
	var p *Pending
	for _, t := range s.targets {
		if reason, skip := t.skipReason(r, b); skip {
			t.count(reason)
			if s.tracer != nil && reason != outcomeNotSampled && reason != outcomeNoMatch {
				tracing.ShadowSkipped(r.Context(), t.Name, reason.String())
			}
			if reason == outcomeQueueFull {
				t.warn("shadow queue full; dropping copies", "queue_size", t.cfg.QueueSize)
			}
			continue
		}
		if p == nil {
			p = &Pending{set: s, endpoint: endpoint}
			p.targets = p.buf[:0]
		}
		p.targets = append(p.targets, t)
		if s.compare != nil && t == s.compare.Candidate {
			p.beginCompare(r)
		}
	}
	if p == nil {
		return nil
	}
	if hasBody(r) {
		limit := int64(0)
		for _, t := range p.targets {
			limit = max(limit, int64(t.cfg.MaxBody))
		}
		c := &bodyCopy{}
		p.tee = &tee{body: r.Body, copy: c, limit: limit, mu: &p.mu}
		r.Body = p.tee
	}
	if s.tracer == nil {
		// With tracing on, the live request's span context is the copies'
		// parent instead (StartShadow), in the same trace.
		ensureTraceparent(r)
	}
	return p
}

func callerBucket(r *http.Request, src config.KeySource) uint32 {
	if key, ok := bucket.Key(r, src); ok {
		// Unsalted: a caller sampled on one route is sampled on every route
		// with the same key, so a whole session is shadowed or not.
		return bucket.Of("", key)
	}
	return bucket.Random()
}

// skipReason says why t takes no copy of r; skip is false when it does.
func (t *Target) skipReason(r *http.Request, b uint32) (reason outcome, skip bool) {
	switch {
	case !t.matches(r):
		return outcomeNoMatch, true
	case !bucket.In(b, float64(t.cfg.Percent)):
		return outcomeNotSampled, true
	case unsafeMethod(r.Method) && t.cfg.Unsafe == "skip":
		return outcomeUnsafe, true
	case isUpgrade(r):
		return outcomeUpgrade, true
	case r.ContentLength > int64(t.cfg.MaxBody):
		return outcomeBodyTooLarge, true
	case t.brk.state(timeNow()) == open:
		return outcomeCircuitOpen, true
	case len(t.queue) >= cap(t.queue):
		// Decided here, before any copy is built: a target that cannot keep
		// up must cost the live path next to nothing. The non-blocking send
		// in enqueue still catches the race with other handlers.
		return outcomeQueueFull, true
	}
	return 0, false
}

func (t *Target) matches(r *http.Request) bool {
	m := &t.cfg.Match
	if len(m.Methods) > 0 && !contains(m.Methods, r.Method) {
		return false
	}
	if m.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, m.PathPrefix) {
		return false
	}
	return match.HeadersHold(t.headers, r)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// unsafeMethod is true for the methods that change state.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// beginCompare arranges for the live answer to be captured and the
// secondary, if any, to get the same copy as the candidate.
func (p *Pending) beginCompare(r *http.Request) {
	c := p.set.compare
	p.live = NewLiveCapture(c.MaxBody)
	if sec := c.Secondary; sec != nil {
		if sec.brk.state(timeNow()) == open {
			sec.count(outcomeCircuitOpen)
		} else {
			p.targets = append(p.targets, sec)
		}
	}
}

// LiveCapture is non-nil when the live answer must be captured for a
// comparison; the proxy feeds it the response on its way to the client.
func (p *Pending) LiveCapture() *LiveCapture {
	if p == nil {
		return nil
	}
	return p.live
}

// Dispatch queues the copies after the live exchange. A copy whose body
// was not read to the end by the live backend, or outgrew max_body, is
// skipped: a copy is never sent truncated.
func (p *Pending) Dispatch(r *http.Request) {
	var body *bodyCopy
	if p.tee != nil {
		p.mu.Lock()
		t := p.tee
		t.claimed = true
		complete := t.eof && !t.overflow
		p.mu.Unlock()
		if !complete {
			reason := outcomeBodyIncomplete
			if t.overflow {
				reason = outcomeBodyTooLarge
			}
			for _, tg := range p.targets {
				tg.count(reason)
			}
			if !t.overflow {
				t.copy.free()
			}
			return
		}
		body = t.copy
	}
	p.dispatch(r, body)
}

// Abandon counts the copies of a live request whose response was aborted
// half way (the client left, the upstream body broke): nothing is sent,
// and each target still counts the request once.
func (p *Pending) Abandon() {
	if p.tee != nil {
		p.mu.Lock()
		t := p.tee
		t.claimed = true
		if !t.overflow {
			t.copy.free()
		}
		p.mu.Unlock()
	}
	for _, tg := range p.targets {
		tg.count(outcomeLiveAborted)
	}
}

func (p *Pending) dispatch(r *http.Request, body *bodyCopy) {
	sendable := p.targets[:0]
	for _, t := range p.targets {
		if body != nil && body.size > int64(t.cfg.MaxBody) {
			t.count(outcomeBodyTooLarge)
			continue
		}
		sendable = append(sendable, t)
	}
	if body != nil {
		if len(sendable) == 0 {
			body.free()
			return
		}
		body.refs.Store(int32(len(sendable)))
	}
	jobs := make([]*job, len(sendable))
	for i, t := range sendable {
		j := &job{req: t.prepare(r, body), body: body}
		if p.pairer != nil {
			var tp string
			tp, j.paired = p.pairer.PairCopy(t.Name, p.role(t))
			j.req.Header.Set(HeaderTraceparent, tp)
		}
		if tr := p.set.tracer; tr != nil {
			// The copy's span takes over its traceparent: the same trace
			// id (the live request's, or the egress sandbox's for the
			// copy), a span id of its own.
			_, j.span = tr.StartShadow(r.Context(), p.set.route, t.Name, j.req.Header, p.pairer != nil)
		}
		jobs[i] = j
	}
	p.attachCompare(r, sendable, jobs, body)
	for i, t := range sendable {
		t.enqueue(jobs[i])
	}
}

func (p *Pending) role(t *Target) CopyRole {
	switch c := p.set.compare; {
	case c == nil || p.live == nil:
		return CopyPlain
	case t == c.Candidate:
		return CopyCandidate
	case t == c.Secondary:
		return CopySecondary
	}
	return CopyPlain
}

// attachCompare gives the candidate's and the secondary's jobs a capture
// joined into one Exchange, before any of them can run.
func (p *Pending) attachCompare(r *http.Request, targets []*Target, jobs []*job, body *bodyCopy) {
	if p.live == nil {
		return
	}
	c := p.set.compare
	var cand, sec *job
	for i, t := range targets {
		switch t {
		case c.Candidate:
			cand = jobs[i]
		case c.Secondary:
			sec = jobs[i]
		}
	}
	if cand == nil {
		return
	}
	ex := &Exchange{Route: p.set.route, Endpoint: metrics.MethodLabel(r.Method) + " " + p.endpoint, Method: r.Method, URI: r.URL.RequestURI(),
		Header: cand.req.Header, Body: body.head(SampleBodyLimit), At: time.Now(), Live: p.live.response()}
	j := &join{ex: ex, sink: c.Sink}
	j.parts.Store(1)
	cand.cap = &capture{join: j, into: &ex.Candidate, max: c.MaxBody}
	if sec != nil {
		j.parts.Store(2)
		sec.cap = &capture{join: j, into: &ex.Secondary, max: c.MaxBody}
	}
}

// prepare builds the copy sent to t: the live request's method, URI and
// headers, marked as a shadow, with the target's header rules applied.
// It runs on the live handler, because the live request is only ours
// until the handler returns.
func (t *Target) prepare(r *http.Request, body *bodyCopy) *http.Request {
	h := r.Header.Clone()
	named := h["Connection"]
	for k := range h {
		if !headers.EndToEnd(k, named) {
			delete(h, k)
		}
	}
	headers.SetForwarded(h, r)
	h.Del(HeaderSandbox) // only umbra's own mark counts, never the client's
	h.Set(HeaderShadow, "1")
	h.Set(HeaderTraceparent, childTraceparent(r.Header.Get(HeaderTraceparent)))
	if unsafeMethod(r.Method) && t.cfg.Unsafe == "mark" {
		h.Set(HeaderSandbox, "1")
	}
	for _, name := range t.cfg.Headers.Remove {
		h.Del(name)
	}
	for name, v := range t.cfg.Headers.Set {
		h.Set(name, v)
	}
	out := &http.Request{
		Method:     r.Method,
		URL:        &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1, ProtoMinor: 1,
		Header: h,
		Host:   withHostSuffix(r.Host, t.cfg.HostSuffix),
	}
	if body != nil {
		out.ContentLength = body.size
	}
	return out
}

// withHostSuffix appends suffix to the host name, keeping any port
// ("shop.example.com:8080" -> "shop.example.com-shadow:8080").
func withHostSuffix(host, suffix string) string {
	if suffix == "" {
		return host
	}
	if h, port, err := net.SplitHostPort(host); err == nil {
		return net.JoinHostPort(h+suffix, port)
	}
	return host + suffix
}
