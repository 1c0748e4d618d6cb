// Package demo runs `umbra demo`: two versions of a small JSON API in
// process, an embedded config that puts umbra in front of them, and a
// guided tour printed to the terminal.
package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// service is one version of the demo "shortlinks" API.
type service struct {
	version string
	ln      net.Listener
	srv     *http.Server
	mu      sync.Mutex
	links   map[string]string
	hits    atomic.Int64

	egress    atomic.Pointer[string] // the payments service on the egress listener
	checkouts atomic.Int64
}

// startService listens on a free loopback port and serves the API.
func startService(version string) (*service, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &service{version: version, ln: ln, links: map[string]string{
		"gh": "https://github.com", "go": "https://go.dev", "docs": "https://pkg.go.dev",
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/shortlinks/{id}", s.get)
	mux.HandleFunc("POST /v1/shortlinks", s.create)
	mux.HandleFunc("POST /v1/checkout", func(w http.ResponseWriter, r *http.Request) {
		s.checkouts.Add(1)
		s.checkout(w, r)
	})
	if strings.HasPrefix(version, "v2") {
		mux.HandleFunc("GET /v1/shortlinks/{id}/geo", s.geo) // new in v2
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	s.srv = &http.Server{Handler: s.count(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *service) URL() string { return "http://" + s.ln.Addr().String() }

func (s *service) Close() { _ = s.srv.Close() }

func (s *service) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.Header().Set("X-Served-By", "shortlinks-"+s.version)
		next.ServeHTTP(w, r)
	})
}

func (s *service) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	target, ok := s.links[id]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found", "id": id})
		return
	}
	clicks := any(len(target) * 7) // a stable number per link
	if s.version == "v2" {
		// The deliberate regression the demo's comparison finds: v2 sends
		// the click count as a string. "v2-fixed" (the rollout demo) does not.
		clicks = fmt.Sprint(clicks)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "url": target, "clicks": clicks,
		// Noise: different on every answer, from every instance.
		"fetched_at": time.Now().UTC().Format(time.RFC3339Nano),
		"trace":      fmt.Sprintf("%016x", rand.Uint64()),
	})
}

// geo is v2's new endpoint: clicks per country.
func (s *service) geo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"),
		"clicks_by_country": map[string]int{"DE": 12, "US": 30, "BR": 7},
		"flags":             r.Header.Get("X-Umbra-Flags")})
}

func (s *service) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || in.ID == "" || !strings.HasPrefix(in.URL, "http") {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "want {\"id\": ..., \"url\": \"http...\"}"})
		return
	}
	s.mu.Lock()
	s.links[in.ID] = in.URL
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"id": in.ID, "url": in.URL})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
