package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/backend"
	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/metrics"
	"github.com/umbragw/umbra/internal/router"
)

// serveRoutes serves a Handler on a loopback socket for a config of
// backends and routes (YAML), compiled the way the gateway does for the
// parts this package owns: the route table and a live Target per route.
func serveRoutes(t *testing.T, yaml string) (url string, m *metrics.Metrics) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte("listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n"+yaml))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	table, err := router.Compile(cfg.Routes)
	if err != nil {
		t.Fatal(err)
	}
	m = metrics.New("test")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	snap := &Snapshot{Config: cfg, Table: table, Log: log}
	for _, rc := range cfg.Routes {
		b, err := backend.New(cfg.Backends[rc.Backend])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		live := NewTarget(b, m.Path(rc.Name, rc.Backend, metrics.RoleLive), metrics.RoleLive, log)
		snap.Routes = append(snap.Routes, &Route{Config: rc, Live: live})
	}
	srv := httptest.NewServer(NewHandler(m, snap))
	t.Cleanup(srv.Close)
	return srv.URL, m
}

// errorBody is the JSON error every failed request gets.
type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// deadAddr is a loopback address that refuses connections for the whole
// test: a port bound by a socket that never listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused from now on; a parallel test could rebind it, none here does
	return addr
}

// TestUpstreamErrorMapping: each way an upstream exchange fails maps to
// its status and error code, on both forwarding paths (a bodyless GET
// takes the direct path, a POST with a body ReverseProxy), with the JSON
// error shape, the request id echoed, no caching, and the failure counted
// under its kind.
func TestUpstreamErrorMapping(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(hang) // before Close, which waits for the handlers
		slow.Close()
	})
	// reset reads the request head and closes the connection unanswered.
	resetLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resetLn.Close() })
	go func() {
		for {
			c, err := resetLn.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				c.Close()
			}()
		}
	}()

	url, m := serveRoutes(t, `
backends:
  dead: {endpoints: ["http://`+deadAddr(t)+`"], retry: {disable: true}}
  slow: {endpoints: ["`+slow.URL+`"], timeout: 200ms, retry: {disable: true}}
  reset: {endpoints: ["http://`+resetLn.Addr().String()+`"], retry: {disable: true}}
routes:
  - {name: dead, match: {path_prefix: /dead}, backend: dead}
  - {name: slow, match: {path_prefix: /slow}, backend: slow}
  - {name: reset, match: {path_prefix: /reset}, backend: reset}
`)
	for _, tc := range []struct {
		path, kind string
		status     int
		code       string
	}{
		{"/dead", "connect", http.StatusBadGateway, "upstream_connect_failed"},
		{"/slow", "timeout", http.StatusGatewayTimeout, "upstream_timeout"},
		{"/reset", "reset", http.StatusBadGateway, "upstream_reset"},
	} {
		for _, method := range []string{"GET", "POST"} {
			var body io.Reader
			if method == "POST" {
				body = strings.NewReader(`{"a":1}`)
			}
			req, _ := http.NewRequest(method, url+tc.path+"/x", body)
			req.Header.Set(HeaderRequestID, "req-"+method+tc.kind)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, tc.path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e errorBody
			if resp.StatusCode != tc.status || json.Unmarshal(b, &e) != nil || e.Error != tc.code {
				t.Errorf("%s %s: %d %s, want %d with error %q", method, tc.path, resp.StatusCode, b, tc.status, tc.code)
				continue
			}
			if e.RequestID != "req-"+method+tc.kind || resp.Header.Get(HeaderRequestID) != e.RequestID {
				t.Errorf("%s %s: request id %q in the body, %q in the header, want the client's", method, tc.path, e.RequestID, resp.Header.Get(HeaderRequestID))
			}
			if !strings.Contains(e.Message, tc.path[1:]) || !strings.Contains(e.Message, tc.kind) {
				t.Errorf("%s %s: message %q names neither the backend nor the kind", method, tc.path, e.Message)
			}
			if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
				t.Errorf("%s %s: Content-Type %q Cache-Control %q", method, tc.path, ct, cc)
			}
		}
		if n := counter(t, m, "umbra_upstream_errors_total", "route", tc.path[1:], "kind", tc.kind); n != 2 {
			t.Errorf("umbra_upstream_errors_total{route=%s,kind=%s} = %v, want 2", tc.path[1:], tc.kind, n)
		}
	}
}

// TestClientGoneIs499: a client that leaves while the upstream thinks is
// recorded as 499 (nginx's code), not as a 5xx, and its upstream request
// is cancelled.
func TestClientGoneIs499(t *testing.T) {
	var cancelled atomic.Bool
	arrived := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled.Store(true)
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(up.Close)
	url, m := serveRoutes(t, `
backends:
  up: {endpoints: ["`+up.URL+`"], retry: {disable: true}}
routes:
  - {name: hang, backend: up}
`)
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the upstream")
	}
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for counter(t, m, "umbra_requests_total", "route", "hang", "code", "499") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no 499 counted; 5xx: %v", counter(t, m, "umbra_requests_total", "route", "hang", "code", "502"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := counter(t, m, "umbra_upstream_errors_total", "route", "hang", "kind", "canceled"); n != 1 {
		t.Errorf("canceled upstream errors %v, want 1", n)
	}
	if !cancelled.Load() {
		t.Error("the upstream request was not cancelled")
	}
}

// TestUnmatchedIsJSON404: a request no route matches gets the JSON 404
// with a fresh request id (the client's invalid one replaced); HEAD gets
// the head alone.
func TestUnmatchedIsJSON404(t *testing.T) {
	url, m := serveRoutes(t, `
backends:
  up: {endpoints: ["http://127.0.0.1:9"]}
routes:
  - {name: only, match: {path_prefix: /only}, backend: up}
`)
	req, _ := http.NewRequest("GET", url+"/elsewhere", nil)
	req.Header.Set(HeaderRequestID, "bad id with spaces")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e errorBody
	if resp.StatusCode != http.StatusNotFound || json.Unmarshal(b, &e) != nil || e.Error != "no_route" {
		t.Fatalf("%d %s, want a JSON no_route 404", resp.StatusCode, b)
	}
	if e.RequestID == "" || e.RequestID == "bad id with spaces" || resp.Header.Get(HeaderRequestID) != e.RequestID {
		t.Errorf("request id %q (header %q): want a fresh one in both", e.RequestID, resp.Header.Get(HeaderRequestID))
	}
	head, err := http.Head(url + "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := io.ReadAll(head.Body)
	head.Body.Close()
	if head.StatusCode != http.StatusNotFound || len(hb) != 0 {
		t.Errorf("HEAD: %d with %d body bytes", head.StatusCode, len(hb))
	}
	if n := counter(t, m, "umbra_unmatched_requests_total", "method", "GET"); n != 1 {
		t.Errorf("unmatched GETs %v, want 1", n)
	}
}

// counter sums the series of a metric family whose labels include the
// name/value pairs kv.
func counter(t *testing.T, m *metrics.Metrics, name string, kv ...string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			match := true
			for i := 0; i+1 < len(kv); i += 2 {
				match = match && labels[kv[i]] == kv[i+1]
			}
			if match {
				sum += s.GetCounter().GetValue() + s.GetGauge().GetValue()
			}
		}
	}
	return sum
}
