package egress

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/umbragw/umbra/internal/jsonpath"
)

// Hoverfly v5 simulations (https://docs.hoverfly.io, "Simulation schema"):
// the subset umbra reads and writes. Written here rather than imported:
// Hoverfly's Go packages bring its whole proxy with them.

// Simulation is a Hoverfly v5 simulation document.
type Simulation struct {
	Data SimulationData `json:"data"`
	Meta SimulationMeta `json:"meta"`
}

// SimulationData holds the request/response pairs.
type SimulationData struct {
	Pairs         []Pair          `json:"pairs"`
	GlobalActions json.RawMessage `json:"globalActions,omitempty"`
}

// SimulationMeta describes the file.
type SimulationMeta struct {
	SchemaVersion   string `json:"schemaVersion"`
	HoverflyVersion string `json:"hoverflyVersion,omitempty"`
	TimeExported    string `json:"timeExported,omitempty"`
}

// Pair is one simulated request and its answer.
type Pair struct {
	Request  RequestMatcher `json:"request"`
	Response PairResponse   `json:"response"`
}

// RequestMatcher holds the field matchers of a pair's request.
type RequestMatcher struct {
	Path          []FieldMatcher            `json:"path,omitempty"`
	Method        []FieldMatcher            `json:"method,omitempty"`
	Destination   []FieldMatcher            `json:"destination,omitempty"`
	Scheme        []FieldMatcher            `json:"scheme,omitempty"`
	Body          []FieldMatcher            `json:"body,omitempty"`
	Query         map[string][]FieldMatcher `json:"query,omitempty"`
	Headers       map[string][]FieldMatcher `json:"headers,omitempty"`
	RequiresState map[string]string         `json:"requiresState,omitempty"`
}

// FieldMatcher is one Hoverfly request matcher.
type FieldMatcher struct {
	Matcher string          `json:"matcher"`
	Value   any             `json:"value"`
	Config  json.RawMessage `json:"config,omitempty"`
	DoMatch *FieldMatcher   `json:"doMatch,omitempty"`
}

// PairResponse is a pair's answer.
type PairResponse struct {
	Status      int                 `json:"status"`
	Body        string              `json:"body"`
	EncodedBody bool                `json:"encodedBody"`
	Headers     map[string][]string `json:"headers,omitempty"`
	Templated   bool                `json:"templated"`
}

// simulation is the loaded pairs of a service's files, matchers compiled.
type simulation struct {
	pairs []compiledPair
}

type compiledPair struct {
	path, method, destination, scheme, body []matcher
	query, headers                          map[string][]matcher
	resp                                    message
}

// matcher tests one request field.
type matcher func(s string) bool

func loadSimulations(files []string) (*simulation, error) {
	sim := &simulation{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		doc, err := ParseSimulation(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for i, p := range doc.Data.Pairs {
			cp, err := compilePair(&p)
			if err != nil {
				return nil, fmt.Errorf("%s: pair %d: %w", f, i+1, err)
			}
			sim.pairs = append(sim.pairs, cp)
		}
	}
	return sim, nil
}

// ParseSimulation decodes a Hoverfly v5 simulation and checks its version.
func ParseSimulation(b []byte) (*Simulation, error) {
	var doc Simulation
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a Hoverfly simulation: %w", err)
	}
	if v := doc.Meta.SchemaVersion; !strings.HasPrefix(v, "v5") {
		return nil, fmt.Errorf("simulation schemaVersion %q: umbra reads Hoverfly v5 simulations", v)
	}
	return &doc, nil
}

func compilePair(p *Pair) (compiledPair, error) {
	var cp compiledPair
	var err error
	fields := []struct {
		name string
		in   []FieldMatcher
		out  *[]matcher
	}{{"path", p.Request.Path, &cp.path}, {"method", p.Request.Method, &cp.method},
		{"destination", p.Request.Destination, &cp.destination}, {"scheme", p.Request.Scheme, &cp.scheme},
		{"body", p.Request.Body, &cp.body}}
	for _, f := range fields {
		if *f.out, err = compileMatchers(f.in); err != nil {
			return cp, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if len(p.Request.RequiresState) > 0 {
		return cp, fmt.Errorf("requiresState: umbra's simulations keep no state")
	}
	if cp.query, err = compileMap(p.Request.Query, false); err != nil {
		return cp, fmt.Errorf("query: %w", err)
	}
	if cp.headers, err = compileMap(p.Request.Headers, true); err != nil {
		return cp, fmt.Errorf("headers: %w", err)
	}
	body := []byte(p.Response.Body)
	if p.Response.EncodedBody {
		if body, err = base64.StdEncoding.DecodeString(p.Response.Body); err != nil {
			return cp, fmt.Errorf("response body: encodedBody is not base64: %w", err)
		}
	}
	h := http.Header{}
	for k, vs := range p.Response.Headers {
		h[http.CanonicalHeaderKey(k)] = vs
	}
	delete(h, "Content-Length")
	status := p.Response.Status
	if status == 0 {
		status = http.StatusOK
	}
	cp.resp = message{Status: status, Header: h, Body: body}
	return cp, nil
}

func compileMap(in map[string][]FieldMatcher, header bool) (map[string][]matcher, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string][]matcher, len(in))
	for k, ms := range in {
		c, err := compileMatchers(ms)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if header {
			k = http.CanonicalHeaderKey(k)
		}
		out[k] = c
	}
	return out, nil
}

func compileMatchers(in []FieldMatcher) ([]matcher, error) {
	out := make([]matcher, 0, len(in))
	for _, fm := range in {
		m, err := compileMatcher(&fm)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func compileMatcher(fm *FieldMatcher) (matcher, error) {
	if fm.DoMatch != nil {
		return nil, fmt.Errorf("matcher %q: doMatch chains are not supported", fm.Matcher)
	}
	v, ok := fm.Value.(string)
	if !ok && fm.Value != nil {
		return nil, fmt.Errorf("matcher %q: value must be a string", fm.Matcher)
	}
	switch strings.ToLower(fm.Matcher) {
	case "exact", "":
		return func(s string) bool { return s == v }, nil
	case "negate":
		return func(s string) bool { return s != v }, nil
	case "glob":
		return func(s string) bool { return globMatch(v, s) }, nil
	case "regex":
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, fmt.Errorf("regex matcher: %w", err)
		}
		return re.MatchString, nil
	case "json":
		want, err := decodeJSON([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("json matcher: value is not JSON: %w", err)
		}
		return func(s string) bool {
			got, err := decodeJSON([]byte(s))
			return err == nil && reflect.DeepEqual(want, got)
		}, nil
	case "jsonpartial":
		want, err := decodeJSON([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("jsonpartial matcher: value is not JSON: %w", err)
		}
		return func(s string) bool {
			got, err := decodeJSON([]byte(s))
			return err == nil && partialJSON(want, got)
		}, nil
	case "jsonpath":
		p, err := jsonpath.Parse(v)
		if err != nil {
			return nil, fmt.Errorf("jsonpath matcher %q: %w (umbra reads paths such as $.a.b, $.items[0], $..id)", v, err)
		}
		return func(s string) bool {
			got, err := decodeJSON([]byte(s))
			return err == nil && selects(got, p.Steps())
		}, nil
	}
	return nil, fmt.Errorf("matcher %q is not supported (use exact, negate, glob, regex, json, jsonpartial or jsonpath)", fm.Matcher)
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

// partialJSON reports whether got holds everything want holds: objects may
// have more members, arrays must hold each wanted element somewhere.
func partialJSON(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if gv, ok := g[k]; !ok || !partialJSON(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok {
			return false
		}
		for _, wv := range w {
			found := false
			for _, gv := range g {
				if partialJSON(wv, gv) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, got)
}

// globMatch matches s against a pattern where "*" stands for any run of
// characters (Hoverfly's glob matcher).
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return s == pattern
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

func all(ms []matcher, s string) bool {
	for _, m := range ms {
		if !m(s) {
			return false
		}
	}
	return true
}

// match returns the answer of the first pair (in file order) whose
// matchers all accept the call. path is the call's path relative to the
// service.
func (sim *simulation) match(r *http.Request, destination, path string, body []byte) *message {
	p, err := url.PathUnescape(path)
	if err != nil {
		p = path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	q := r.URL.Query()
	for i := range sim.pairs {
		cp := &sim.pairs[i]
		if !all(cp.path, p) || !all(cp.method, r.Method) || !all(cp.destination, destination) ||
			!all(cp.scheme, scheme) || !all(cp.body, string(body)) {
			continue
		}
		if !mapMatches(cp.query, func(k string) (string, bool) { v, ok := q[k]; return strings.Join(v, ";"), ok }) ||
			!mapMatches(cp.headers, func(k string) (string, bool) { v, ok := r.Header[k]; return strings.Join(v, ";"), ok }) {
			continue
		}
		return &cp.resp
	}
	return nil
}

func mapMatches(ms map[string][]matcher, get func(string) (string, bool)) bool {
	for k, list := range ms {
		v, ok := get(k)
		if !ok && len(list) > 0 {
			return false
		}
		if !all(list, v) {
			return false
		}
	}
	return true
}

// ExportSimulation turns recorded calls into a Hoverfly v5 simulation
// whose pairs match method, path, query and body exactly (bodies as JSON
// when they are JSON), in the order they were recorded.
func exportSimulation(recs []exportedCall, host string) *Simulation {
	sim := &Simulation{Meta: SimulationMeta{SchemaVersion: "v5", HoverflyVersion: "umbra", TimeExported: time.Now().UTC().Format(time.RFC3339)}}
	sim.Data.Pairs = []Pair{}
	for _, c := range recs {
		path, rawQuery, _ := strings.Cut(c.req.URI, "?")
		if p, err := url.PathUnescape(path); err == nil {
			path = p
		}
		rm := RequestMatcher{
			Method: []FieldMatcher{{Matcher: "exact", Value: c.req.Method}},
			Path:   []FieldMatcher{{Matcher: "exact", Value: path}},
		}
		if host != "" {
			rm.Destination = []FieldMatcher{{Matcher: "exact", Value: host}}
		}
		if len(c.req.Body) > 0 {
			kind := "exact"
			if _, err := decodeJSON(c.req.Body); err == nil {
				kind = "json"
			}
			rm.Body = []FieldMatcher{{Matcher: kind, Value: string(c.req.Body)}}
		}
		if q, err := url.ParseQuery(rawQuery); err == nil && len(q) > 0 {
			rm.Query = map[string][]FieldMatcher{}
			for k, vs := range q {
				rm.Query[k] = []FieldMatcher{{Matcher: "exact", Value: strings.Join(vs, ";")}}
			}
		}
		resp := PairResponse{Status: c.resp.Status, Headers: map[string][]string{}}
		for k, vs := range c.resp.Header {
			resp.Headers[k] = vs
		}
		if isText(c.resp.Body) {
			resp.Body = string(c.resp.Body)
		} else {
			resp.Body, resp.EncodedBody = base64.StdEncoding.EncodeToString(c.resp.Body), true
		}
		sim.Data.Pairs = append(sim.Data.Pairs, Pair{Request: rm, Response: resp})
	}
	return sim
}

func isText(b []byte) bool {
	return json.Valid(b) || bytes.IndexFunc(b, func(r rune) bool { return r == 0xfffd || r < 0x20 && r != '\n' && r != '\r' && r != '\t' }) < 0
}

// exportedCall is one recorded call with an answer.
type exportedCall struct {
	at   time.Time
	req  message
	resp message
}

// Recorded returns the replayable recorded calls of a service, oldest
// first, as a Hoverfly v5 simulation. ok is false for an unknown service.
func (s *Sandbox) Recorded(service string) (*Simulation, bool) {
	set := s.services.Load()
	svc := set.byName[service]
	if svc == nil {
		return nil, false
	}
	var recs []exportedCall
	s.table.each(time.Now(), func(e *episode) {
		e.mu.Lock()
		for k, list := range e.calls {
			if k.service != service {
				continue
			}
			for _, c := range list {
				if c.finished && c.failed == "" {
					c.settle()
					recs = append(recs, exportedCall{at: c.at, req: c.req, resp: c.resp})
				}
			}
		}
		e.mu.Unlock()
	})
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].at.Before(recs[j].at) })
	base := svc.base
	for i := range recs {
		recs[i].req.URI = base + recs[i].req.URI
	}
	return exportSimulation(recs, svc.host), true
}
