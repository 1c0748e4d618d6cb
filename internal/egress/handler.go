package egress

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/umbragw/umbra/internal/backend"
	"github.com/umbragw/umbra/internal/headers"
	"github.com/umbragw/umbra/internal/tracing"
)

// Outcomes of a call, the values of umbra_egress_requests_total's outcome
// label. error_* are forwarded calls that got no answer from the upstream.
const (
	OutcomeForwarded = "forwarded"
	OutcomeReplayed  = "replayed"
	OutcomeSimulated = "simulated"
	OutcomeDenied    = "denied"
	OutcomeUnmatched = "unmatched"
	OutcomeBadCall   = "bad_request"
	OutcomeError     = "error_" // + connect, timeout, reset, canceled, other
)

// origin is what the sandbox knows of a call's origin.
type origin struct {
	role string   // live, canary, shadow or unknown
	ep   *episode // the live episode, or the copy's; nil when not known
}

// classify tells a shadow call from a live one. A shadow copy's trace id
// carries umbra's tag, and services that pass X-Umbra-Shadow on mark their
// calls with it; both make a shadow call whatever else is known. A live
// or canary call has a trace id umbra registered. Anything else is
// unknown.
func (s *Sandbox) classify(r *http.Request, now time.Time) origin {
	id, traced := parseTraceparent(r.Header.Get(headerTraceparent))
	if traced && s.minter.isShadow(id) {
		return origin{role: RoleShadow, ep: s.table.get(id, now)}
	}
	if v, ok := r.Header[HeaderShadow]; ok && len(v) > 0 && v[0] != "" && v[0] != "0" {
		return origin{role: RoleShadow}
	}
	if traced {
		if e := s.table.get(id, now); e != nil && e.role != RoleShadow {
			return origin{role: e.role, ep: e}
		}
	}
	return origin{role: RoleUnknown}
}

// ServeHTTP handles one outbound call.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	set := s.services.Load()
	svc, path := set.resolve(r)
	if svc == nil {
		s.metrics.noService.Inc()
		writeError(w, http.StatusNotFound, "no_egress_service", "no egress service for "+r.Host+r.URL.Path)
		return
	}
	o := s.classify(r, start)
	c := &callCtx{s: s, set: set, svc: svc, w: w, r: r, path: path, origin: o, start: start}
	if s.tracer != nil {
		span := s.tracer.StartEgress(r, svc.name, o.role, path)
		defer func() { tracing.EndEgress(span, c.outcome, c.status) }()
	}
	if o.role != RoleUnknown {
		// Only recorded and shadow calls need their name: unknown calls,
		// forwarded as they come, skip the template match.
		c.key = callKey{svc.name, svc.endpoint(r.Method, path)}
	}
	if err := c.readBody(int64(set.record.MaxBody)); err != nil {
		c.done(OutcomeBadCall)
		writeError(w, http.StatusBadRequest, "bad_request", "reading the request body: "+err.Error())
		return
	}
	switch {
	case o.role == RoleShadow:
		c.serveShadow()
	case o.role == RoleUnknown && svc.cfg.Unknown == "deny":
		c.done(OutcomeDenied)
		s.warn("egress call of unknown origin denied", "service", svc.name, "method", r.Method, "path", path)
		writeError(w, http.StatusForbidden, "egress_denied", "egress service "+svc.name+" denies calls of unknown origin (no traceparent umbra knows, no X-Umbra-Shadow)")
	default:
		c.forward()
	}
}

// callCtx is one call being handled.
type callCtx struct {
	s      *Sandbox
	set    *serviceSet
	svc    *service
	w      http.ResponseWriter
	r      *http.Request
	path   string // escaped, relative to the service
	origin origin
	key    callKey
	start  time.Time

	body      []byte    // the request body read so far (all of it unless more)
	more      io.Reader // the rest of a body larger than max_body, or nil
	truncated bool

	outcome string // set by done, for the call's span
	status  int    // the answer's status when the span should carry it
}

func (c *callCtx) done(outcome string) {
	c.outcome = outcome
	c.svc.m.observe(c.origin.role, outcome, time.Since(c.start))
}

// readBody reads the request body up to max bytes; the rest, if any, is
// forwarded as it comes.
func (c *callCtx) readBody(max int64) error {
	if c.r.Body == nil || c.r.Body == http.NoBody {
		return nil
	}
	if n := c.r.ContentLength; n > 0 && n <= max {
		// The usual call: a declared length within the limit, read into
		// a buffer of its size (no limit reader, no growing).
		c.body = make([]byte, n)
		_, err := io.ReadFull(c.r.Body, c.body)
		return err
	}
	var buf bytes.Buffer
	presize(&buf, c.r.ContentLength, max)
	n, err := buf.ReadFrom(io.LimitReader(c.r.Body, max+1))
	if err != nil {
		return err
	}
	c.body = buf.Bytes()
	if n > max {
		c.truncated = true
		c.more = c.r.Body
	}
	return nil
}

// presize grows buf once for a body of known length: ReadFrom would
// otherwise start at 512 bytes and copy while growing.
func presize(buf *bytes.Buffer, length, max int64) {
	if length > 0 {
		buf.Grow(int(min(length, max)) + bytes.MinRead)
	}
}

// request returns the call's request as it is recorded: redacted, the
// body bounded (a shadow call's, kept for the comparison).
func (c *callCtx) request() message {
	m := c.rawRequest(outgoingHeader(c.r.Header))
	return c.set.redact.message(m, false)
}

// rawRequest is the call's request with header h, not yet redacted.
func (c *callCtx) rawRequest(h http.Header) message {
	body := c.body
	if c.truncated {
		body = body[:len(body)-1]
	}
	return message{Method: c.r.Method, URI: c.uri(), Header: h, Body: body, Truncated: c.truncated}
}

// uri is the path and query relative to the service.
func (c *callCtx) uri() string {
	if c.r.URL.RawQuery != "" {
		return c.path + "?" + c.r.URL.RawQuery
	}
	return c.path
}

// serveShadow answers a shadow call without ever forwarding it: the
// recording at the same place among the live request's calls, else a
// simulation, else the service's unmatched answer.
func (c *callCtx) serveShadow() {
	req := c.request()
	var rec *call
	if cp := c.origin.ep; cp != nil && cp.live != nil {
		ord := cp.claim(c.key, &req, c.s.rec)
		if live := cp.live; !live.isAmbiguous() {
			rec = c.s.await(c.r.Context(), live, c.key, ord, c.set.record.Wait.D())
		}
	}
	switch {
	case rec != nil:
		c.done(OutcomeReplayed)
		c.status = rec.resp.Status
		writeMessage(c.w, &rec.resp)
	case c.svc.sims != nil:
		if m := c.svc.sims.match(c.r, c.destination(), c.svc.base+c.path, c.simBody()); m != nil {
			c.done(OutcomeSimulated)
			writeMessage(c.w, m)
			return
		}
		fallthrough
	default:
		c.done(OutcomeUnmatched)
		u := c.svc.cfg.Unmatched
		body := u.Body
		if body == "" {
			body = `{"error":"egress_unmatched","message":"umbra has no recorded or simulated answer for this shadow call"}` + "\n"
		}
		c.w.Header().Set("Content-Type", "application/json")
		c.w.Header().Set("X-Umbra-Egress", OutcomeUnmatched)
		c.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		c.w.WriteHeader(u.Status)
		io.WriteString(c.w, body)
	}
}

// destination is the third party's host as the call names it: the
// upstream's for /NAME/PATH calls, the request's own in plain-proxy use.
func (c *callCtx) destination() string {
	if c.r.URL.Host != "" {
		return c.r.URL.Host
	}
	if c.set.byHost[strings.ToLower(c.r.Host)] == c.svc {
		return c.r.Host
	}
	return c.svc.host
}

func (c *callCtx) simBody() []byte {
	if c.truncated {
		return c.body[:len(c.body)-1]
	}
	return c.body
}

// claim gives a copy's call its ordinal among the copy's calls to key and
// keeps the call for the comparison.
// A copy restored from the store continues after the calls it claimed
// before the restart. With a store the claim is written in the next flush.
func (e *episode) claim(key callKey, req *message, rec *recorder) int {
	e.mu.Lock()
	ord := e.claims[key] + len(e.sent[key])
	e.sent[key] = append(e.sent[key], req)
	queue := rec.st != nil && !e.dirty
	if queue {
		e.dirty = true
	}
	e.mu.Unlock()
	if queue {
		rec.mark(e)
	}
	return ord
}

func (e *episode) isAmbiguous() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ambiguous
}

// await returns the live call at (key, ord) once its answer is recorded,
// redacted, waiting at most wait while the live request is still being
// served or its calls are in flight. It returns nil when there is no
// replayable answer.
func (s *Sandbox) await(ctx context.Context, live *episode, key callKey, ord int, wait time.Duration) *call {
	var timeout <-chan time.Time
	for {
		live.mu.Lock()
		list := live.calls[key]
		var c *call
		if ord < len(list) {
			c = list[ord]
		}
		if c != nil && c.finished {
			c.settle()
			live.mu.Unlock()
			if c.failed != "" {
				return nil
			}
			return c
		}
		if c == nil && !live.open && live.pending == 0 {
			live.mu.Unlock()
			return nil
		}
		changed := live.waitChan()
		live.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// forward sends a live, canary or unknown call to the upstream; a live or
// canary call is recorded.
func (c *callCtx) forward() {
	if c.origin.role == RoleShadow {
		// Unreachable by construction; counted so that a regression shows.
		c.s.metrics.leaked.Inc()
		return
	}
	out := c.outgoing()
	var rec *call
	if ep := c.origin.ep; ep != nil {
		// The outgoing header is shared, not copied: egress backends have
		// no tracer, so nothing writes to it once it is built.
		rec = c.s.startRecording(ep, c.key, c.rawRequest(out.Header), c.set.redact)
	}
	resp, err := c.svc.backend.Exchange(c.r.Context(), out, nil)
	if err != nil {
		kind := backend.KindOf(err)
		c.done(OutcomeError + kind.String())
		status, code := http.StatusBadGateway, "egress_upstream_error"
		if kind == backend.KindTimeout {
			status, code = http.StatusGatewayTimeout, "egress_upstream_timeout"
		}
		m := errorMessage(status, code, "egress service "+c.svc.name+": "+kind.String())
		c.s.finishRecording(rec, m, "")
		writeMessage(c.w, m)
		c.s.warn("egress call failed", "service", c.svc.name, "method", c.r.Method, "path", c.path, "kind", kind.String(), "err", err.Error())
		return
	}
	defer resp.Body.Close()
	c.status = resp.StatusCode
	body, whole, rerr := readAnswer(resp, int64(c.set.record.MaxBody))
	h := c.w.Header()
	for k, vs := range resp.Header {
		if !headers.IsHopByHop(k) {
			h[k] = vs
		}
	}
	removeConnectionHeaders(h, resp.Header)
	if rerr != nil || !whole {
		// Too large to record, or cut short: pass it on as it comes.
		reason := "truncated"
		if rerr != nil {
			reason = backend.KindOf(rerr).String()
		}
		c.s.finishRecording(rec, nil, reason)
		c.w.WriteHeader(resp.StatusCode)
		c.w.Write(body)
		if rerr == nil {
			io.Copy(c.w, resp.Body)
		}
		c.done(OutcomeForwarded)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(resp.StatusCode)
	c.w.Write(body)
	c.done(OutcomeForwarded)
	if rec != nil {
		// As it came: redacted on its first read (call.settle), and the
		// header map is the upstream answer's own, which nothing changes
		// (the client's copy shares only its values).
		c.s.finishRecording(rec, &message{Status: resp.StatusCode, Header: resp.Header, Body: body}, "")
	}
}

// readAnswer reads an answer's body up to max bytes; whole says it is all
// of it (else the rest is still in resp.Body).
func readAnswer(resp *http.Response, max int64) (body []byte, whole bool, err error) {
	if n := resp.ContentLength; n >= 0 && n <= max {
		if n == 0 {
			return nil, true, nil
		}
		body = make([]byte, n)
		k, err := io.ReadFull(resp.Body, body)
		return body[:k], true, err
	}
	var buf bytes.Buffer
	presize(&buf, resp.ContentLength, max)
	got, err := buf.ReadFrom(io.LimitReader(resp.Body, max+1))
	return buf.Bytes(), got <= max, err
}

// bodyReader is an outgoing body held in memory: one allocation where
// io.NopCloser(bytes.NewReader) takes two.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

// outgoing builds the request sent upstream: the call's method, the
// service's base path joined with the call's path, its query, headers
// without hop-by-hop fields and umbra's marks, and its body.
func (c *callCtx) outgoing() *http.Request {
	raw := c.svc.base + c.path
	p, err := url.PathUnescape(raw)
	if err != nil {
		p = raw
	}
	out := &http.Request{
		Method: c.r.Method,
		URL:    &url.URL{Path: p, RawPath: raw, RawQuery: c.r.URL.RawQuery},
		Proto:  "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: outgoingHeader(c.r.Header),
	}
	if c.body != nil {
		b := &bodyReader{}
		b.Reset(c.body)
		out.Body = b
		out.ContentLength = int64(len(c.body))
		if c.more != nil {
			out.Body = io.NopCloser(io.MultiReader(bytes.NewReader(c.body), c.more))
			out.ContentLength = c.r.ContentLength
			if out.ContentLength < int64(len(c.body)) {
				out.ContentLength = -1
			}
		}
	}
	return out
}

// outgoingHeader copies a call's header without hop-by-hop fields. The
// values share one backing array (as http.Header.Clone does): one
// allocation instead of one per field.
func outgoingHeader(in http.Header) http.Header {
	n := 0
	for _, vs := range in {
		n += len(vs)
	}
	all := make([]string, n)
	h := make(http.Header, len(in))
	for k, vs := range in {
		if headers.IsHopByHop(k) || k == "X-Umbra-Sandbox" {
			continue
		}
		m := copy(all, vs)
		h[k] = all[:m:m]
		all = all[m:]
	}
	if in["Connection"] != nil {
		removeConnectionHeaders(h, in)
	}
	return h
}

func removeConnectionHeaders(h, from http.Header) {
	for _, f := range from["Connection"] {
		for _, name := range strings.Split(f, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
}

// maxCallsPerTrace bounds the calls recorded for one live trace.
const maxCallsPerTrace = 1024

// startRecording records a live call's request (as it came; red redacts
// it on its first read) before it is forwarded. The call always takes its
// place among the episode's calls, so that the calls after it keep their
// ordinals; when the budget is full its content is not kept and it is
// never replayed.
func (s *Sandbox) startRecording(ep *episode, key callKey, req message, red *redactor) *call {
	now := time.Now()
	c := &call{ep: ep, key: key, req: req, at: now, red: red, reqRaw: true}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.ncalls >= maxCallsPerTrace {
		// A trace used for ever (a client that sends one traceparent with
		// every request) must not grow without bound; its later calls are
		// forwarded unrecorded, and copies' calls past here get simulations.
		s.metrics.dropped(ep.role, "trace_full")
		return nil
	}
	ep.ncalls++
	if !s.table.charge(ep, req.size()) {
		c.req = message{Method: req.Method, URI: req.URI}
		c.reqRaw = false
		c.failed = "store_full"
		s.metrics.dropped(ep.role, "store_full")
	}
	if ep.calls == nil {
		ep.calls = map[callKey][]*call{}
	}
	c.ord = len(ep.calls[key])
	ep.calls[key] = append(ep.calls[key], c)
	ep.order = append(ep.order, c)
	ep.pending++
	ep.expires.Store(s.table.expiry(now).UnixNano())
	ep.notify()
	return c
}

// finishRecording records a call's answer (nil with a reason when there
// is none to replay), as it came: it is redacted on its first read.
func (s *Sandbox) finishRecording(c *call, resp *message, reason string) {
	if c == nil {
		return
	}
	ep := c.ep
	ep.mu.Lock()
	switch {
	case c.failed != "":
	case resp == nil:
		c.failed = reason
	case !s.table.charge(ep, resp.size()):
		c.failed = "store_full"
		s.metrics.dropped(ep.role, "store_full")
	default:
		c.resp = *resp
		c.respRaw = true
	}
	ep.pending--
	c.finished = true
	ep.notify()
	queue := !ep.dirty
	ep.dirty = true
	ep.mu.Unlock()
	if queue {
		s.rec.mark(ep)
	}
}

func writeMessage(w http.ResponseWriter, m *message) {
	h := w.Header()
	for k, vs := range m.Header {
		h[k] = vs
	}
	h.Set("Content-Length", strconv.Itoa(len(m.Body)))
	status := m.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(m.Body)
}

func errorMessage(status int, code, msg string) *message {
	body := `{"error":` + strconv.Quote(code) + `,"message":` + strconv.Quote(msg) + "}\n"
	return &message{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeMessage(w, errorMessage(status, code, msg))
}
