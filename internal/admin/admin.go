// Package admin serves umbra's operator endpoints on their own listener:
// health and readiness probes, Prometheus metrics and the JSON admin API
// under /api/v1/. Off loopback every endpoint but the probes requires the
// bearer token from admin.token_file.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
)

// Source is what the admin API reports on; the gateway implements it.
type Source interface {
	Ready() bool
	Config() any // the running configuration, JSON-encodable
	Routes() any // the running routes with their backends' health
}

// Server is the admin HTTP handler.
type Server struct {
	mux   *http.ServeMux
	token string
	// csrf refuses state-changing requests that a browser sends from
	// another origin: without it, any web page an operator visits could
	// POST /api/v1/rollouts/{route}/abort to a token-less loopback admin
	// listener with a plain form. The CLI sends no Origin or Sec-Fetch-Site
	// and the dashboard is same-origin, so both pass.
	csrf *http.CrossOriginProtection
}

// New builds the admin handler. An empty token disables authentication,
// which config validation allows only on loopback.
func New(src Source, metrics http.Handler, token string) *Server {
	s := &Server{mux: http.NewServeMux(), token: token, csrf: http.NewCrossOriginProtection()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if src.Ready() {
			writeText(w, http.StatusOK, "ready\n")
			return
		}
		writeText(w, http.StatusServiceUnavailable, "not ready\n")
	})
	s.mux.Handle("GET /metrics", s.auth(metrics))
	s.Handle("GET /api/v1/config", func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, http.StatusOK, src.Config()) })
	s.Handle("GET /api/v1/routes", func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, http.StatusOK, src.Routes()) })
	// Go's profiler, for "where does the time go" on a live gateway.
	s.mux.Handle("/debug/pprof/", s.auth(http.HandlerFunc(pprof.Index)))
	s.mux.Handle("/debug/pprof/profile", s.auth(http.HandlerFunc(pprof.Profile)))
	s.mux.Handle("/debug/pprof/trace", s.auth(http.HandlerFunc(pprof.Trace)))
	return s
}

// Handle adds an authenticated admin API endpoint; later features (diffs,
// rollouts, adoption) register theirs here.
func (s *Server) Handle(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.auth(h)) }

// HandlePublic adds an endpoint that needs no token: the dashboard's
// static files, and its pages, which check Authorized themselves to
// answer a sign-in page instead of a JSON error.
func (s *Server) HandlePublic(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Authorized reports whether r carries the admin token (always true when
// no token is configured).
func (s *Server) Authorized(r *http.Request) bool {
	if s.token == "" {
		return true
	}
	got := []byte(r.Header.Get("Authorization"))
	return subtle.ConstantTimeCompare(got, []byte("Bearer "+s.token)) == 1
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.token == "" && !loopbackHost(r.Host) {
		// Without a token the listener is loopback-only; a browser led
		// there by DNS rebinding still names the attacker's host.
		WriteError(w, http.StatusMisdirectedRequest, "misdirected_request",
			"the admin listener without a token answers only loopback host names, not "+r.Host)
		return
	}
	if err := s.csrf.Check(r); err != nil {
		WriteError(w, http.StatusForbidden, "cross_origin", "cross-origin "+r.Method+" refused")
		return
	}
	// Handler only finds the endpoint; ServeHTTP matches again to set the
	// request's path values.
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.noRoute(r).ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// noRoute answers a request no endpoint takes in the API's error shape:
// 404, or 405 with Allow when the path exists for other methods (asked of
// the mux, as it would answer). Under /api/ the token is asked for first,
// so a caller without it cannot probe which endpoints exist.
func (s *Server) noRoute(r *http.Request) http.Handler {
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			other := *r
			other.Method = m
			if _, pattern := s.mux.Handler(&other); pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			WriteError(w, http.StatusNotFound, "not_found", "no admin endpoint "+r.Method+" "+r.URL.Path)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path+" (allowed: "+strings.Join(allow, ", ")+")")
	}))
	if strings.HasPrefix(r.URL.Path, "/api/") {
		h = s.auth(h)
	}
	return h
}

// loopbackHost reports whether a Host header names this machine's loopback
// interface: localhost or a loopback IP, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func (s *Server) auth(next http.Handler) http.Handler {
	if s.token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="umbra-admin"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteJSON writes v as indented JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes the admin API's error shape.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, map[string]string{"error": code, "message": msg})
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(strings.TrimSpace(s) + "\n"))
}
