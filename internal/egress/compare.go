package egress

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/shadow"
)

// EndpointPrefix starts the endpoint name of compared outbound calls in
// the diff report: "egress payments POST /v1/charges".
const EndpointPrefix = diffs.EgressEndpointPrefix

// headerQuery carries a call's query string into the comparison, which
// compares headers and bodies.
const headerQuery = "X-Umbra-Egress-Query"

// compareCalls diffs the outbound calls of the live request's compared
// copies (the candidate and the secondary) with the live request's own,
// position by position per (service, endpoint): a call only one side made
// is an extra or a missing call. It runs once all compared copies are over.
func (s *Sandbox) compareCalls(live *episode) {
	if s.sink == nil {
		return
	}
	var cand, sec *episode
	live.mu.Lock()
	for _, c := range live.compared {
		switch c.copyRole {
		case shadow.CopyCandidate:
			cand = c
		case shadow.CopySecondary:
			sec = c
		}
	}
	if cand == nil || live.ambiguous || cand.restored {
		live.mu.Unlock()
		return
	}
	liveCalls := map[callKey][]*message{}
	for k, list := range live.calls {
		for _, c := range list {
			c.settle()
			liveCalls[k] = append(liveCalls[k], &c.req)
		}
	}
	route := live.route
	live.mu.Unlock()
	candCalls, candOK := cand.snapshot()
	if !candOK {
		return // the candidate failed: its answer comparison says so
	}
	var secCalls map[callKey][]*message
	if sec != nil {
		var ok bool
		if secCalls, ok = sec.snapshot(); !ok {
			secCalls = nil
		}
	}
	set := s.services.Load()
	now := time.Now()
	for _, k := range unionKeys(liveCalls, candCalls, secCalls) {
		svc := set.byName[k.service]
		if svc == nil || svc.cfg.Compare.Disable {
			continue
		}
		n := max(len(liveCalls[k]), len(candCalls[k]), len(secCalls[k]))
		for i := range n {
			ex := &shadow.Exchange{
				Route: route, Endpoint: EndpointPrefix + k.service + " " + k.endpoint,
				Method: "", At: now, Comparator: svc.cmp,
				Live: callResponse(liveCalls[k], i), Candidate: callResponse(candCalls[k], i),
			}
			if m := at(candCalls[k], i); m != nil {
				ex.Method, ex.URI, ex.Header, ex.Body = m.Method, m.URI, m.Header, m.Body
			} else if m := at(liveCalls[k], i); m != nil {
				ex.Method, ex.URI, ex.Header, ex.Body = m.Method, m.URI, m.Header, m.Body
			}
			if secCalls != nil {
				ex.Secondary = callResponse(secCalls[k], i)
			}
			s.sink(ex)
		}
	}
}

// snapshot copies a copy's calls and says whether the copy got an answer.
func (e *episode) snapshot() (map[callKey][]*message, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[callKey][]*message, len(e.sent))
	for k, list := range e.sent {
		out[k] = append([]*message(nil), list...)
	}
	return out, e.ok
}

func unionKeys(ms ...map[callKey][]*message) []callKey {
	seen := map[callKey]bool{}
	var keys []callKey
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].service != keys[j].service {
			return keys[i].service < keys[j].service
		}
		return keys[i].endpoint < keys[j].endpoint
	})
	return keys
}

func at(list []*message, i int) *message {
	if i < len(list) {
		return list[i]
	}
	return nil
}

// callResponse presents an outbound request to the comparison engine,
// which compares answers: its headers (with the query) and body.
func callResponse(list []*message, i int) *shadow.Response {
	m := at(list, i)
	if m == nil {
		return &shadow.Response{Absent: true}
	}
	h := make(http.Header, len(m.Header)+1)
	for k, v := range m.Header {
		h[k] = v
	}
	if _, q, ok := cutQuery(m.URI); ok {
		h[headerQuery] = []string{q}
	}
	return &shadow.Response{Status: 200, Header: h, Body: m.Body, Truncated: m.Truncated}
}

func cutQuery(uri string) (string, string, bool) {
	for i := 0; i < len(uri); i++ {
		if uri[i] == '?' {
			return uri[:i], uri[i+1:], true
		}
	}
	return uri, "", false
}

// warn logs at most one line every 10 seconds.
func (s *Sandbox) warn(msg string, args ...any) {
	if n, ok := s.limiter.allow(time.Now()); ok {
		args = append(args, "suppressed_since_last", n)
		s.log.Load().LogAttrs(context.Background(), slog.LevelWarn, msg, argsToAttrs(args)...)
	}
}

func argsToAttrs(args []any) []slog.Attr {
	var out []slog.Attr
	for i := 0; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		out = append(out, slog.Any(k, args[i+1]))
	}
	return out
}
