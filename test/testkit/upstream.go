package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// Seen is one request as an upstream received it.
type Seen struct {
	Method string
	Host   string
	Path   string
	Query  string
	URI    string // the request target as sent
	Header http.Header
	Body   []byte // nil when the handler reads the body itself
	Size   int    // len(Body)
	SHA    string // hex sha256 of Body
	Remote string
}

// Upstream is a real HTTP server standing for one backend endpoint that
// records every request it receives, before its handler runs.
type Upstream struct {
	*httptest.Server
	Name string
	Hits atomic.Int64

	mu   sync.Mutex
	reqs []Seen
}

// BodyHandler answers a request whose body has been read (and recorded).
type BodyHandler func(w http.ResponseWriter, r *http.Request, body []byte)

// NewUpstream starts an upstream that reads each request's body, records
// the request and calls h; a nil h answers with EchoOf the request.
// Cleanup closes it.
func NewUpstream(t testing.TB, name string, h BodyHandler) *Upstream {
	t.Helper()
	if h == nil {
		h = EchoHandler(name)
	}
	u := &Upstream{Name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.record(r, body)
		h(w, r, body)
	}))
	t.Cleanup(u.Close)
	return u
}

// NewStreamUpstream starts an upstream that records each request's head
// and leaves the body to h, for tests of streaming, slow or aborted bodies.
func NewStreamUpstream(t testing.TB, name string, h http.HandlerFunc) *Upstream {
	t.Helper()
	u := &Upstream{Name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.record(r, nil)
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *Upstream) record(r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	s := Seen{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, URI: r.RequestURI,
		Header: r.Header.Clone(), Body: body, Size: len(body), SHA: hex.EncodeToString(sum[:]), Remote: r.RemoteAddr}
	u.mu.Lock()
	u.reqs = append(u.reqs, s)
	u.mu.Unlock()
	u.Hits.Add(1)
}

// Seen returns a copy of the recorded requests, oldest first.
func (u *Upstream) Seen() []Seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs)
}

// ByHeader returns the recorded requests whose header name equals value.
func (u *Upstream) ByHeader(name, value string) []Seen {
	var out []Seen
	for _, s := range u.Seen() {
		if s.Header.Get(name) == value {
			out = append(out, s)
		}
	}
	return out
}

// Reset forgets the recorded requests and zeroes Hits.
func (u *Upstream) Reset() {
	u.mu.Lock()
	u.reqs = nil
	u.mu.Unlock()
	u.Hits.Store(0)
}

// Echo is what EchoHandler answers: the request as the upstream got it.
type Echo struct {
	Backend  string      `json:"backend"`
	Method   string      `json:"method"`
	Host     string      `json:"host"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query"`
	Header   http.Header `json:"header"`
	Flags    []string    `json:"flags"` // X-Umbra-Flags values, nil when absent
	Body     string      `json:"body"`
	TLS      bool        `json:"tls"`
}

// EchoOf is the Echo of a request to the upstream named name.
func EchoOf(name string, r *http.Request, body []byte) Echo {
	return Echo{Backend: name, Method: r.Method, Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header, Flags: r.Header.Values("X-Umbra-Flags"), Body: string(body), TLS: r.TLS != nil}
}

// EchoHandler answers 200 with the request's Echo as JSON and an
// X-Backend header naming the upstream.
func EchoHandler(name string) BodyHandler {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", name)
		_ = json.NewEncoder(w).Encode(EchoOf(name, r, body))
	}
}

// WriteJSON answers status with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
