package backend

import (
	"bufio"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
)

// TestKeepAliveReuse: sequential requests share one pooled connection.
func TestKeepAliveReuse(t *testing.T) {
	var newConns atomic.Int64
	srv := httptest.NewUnstartedServer(echoHandler("a"))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	b := newBackend(t, config.Backend{}, srv.URL)
	for i := range 1000 {
		if _, err := do(t, b, http.MethodGet, nil); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := newConns.Load(); n != 1 {
		t.Errorf("1000 sequential requests opened %d connections, want 1", n)
	}
}

func TestTransportTuning(t *testing.T) {
	b := newBackend(t, config.Backend{}, "http://127.0.0.1:1", "http://127.0.0.1:2")
	tr := b.transport
	checks := []struct {
		name      string
		got, want any
	}{
		{"DisableCompression", tr.DisableCompression, true},
		{"Proxy is nil", tr.Proxy == nil, true},
		{"MaxIdleConnsPerHost", tr.MaxIdleConnsPerHost, DefaultMaxIdlePerEndpoint},
		{"MaxIdleConns", tr.MaxIdleConns, 2 * DefaultMaxIdlePerEndpoint},
		{"MaxConnsPerHost", tr.MaxConnsPerHost, 0},
		{"IdleConnTimeout", tr.IdleConnTimeout, DefaultIdleTimeout},
		{"ResponseHeaderTimeout", tr.ResponseHeaderTimeout, DefaultResponseHeaderTimeout},
		{"ExpectContinueTimeout", tr.ExpectContinueTimeout, time.Second},
		{"ForceAttemptHTTP2 (plain http)", tr.ForceAttemptHTTP2, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if b.s.connectTimeout != DefaultConnectTimeout || b.s.maxFails != DefaultMaxFails ||
		b.s.ejectFor != DefaultEjectFor || b.s.retries != DefaultRetryAttempts {
		t.Errorf("defaults not applied: %+v", b.s)
	}

	custom := newBackend(t, config.Backend{
		Timeout: ms(1500), ConnectTimeout: ms(200), IdleTimeout: ms(3000),
		MaxIdlePerEndpoint: 8, MaxConnsPerEndpoint: 16,
	}, "http://127.0.0.1:1")
	ct := custom.transport
	if ct.ResponseHeaderTimeout != 1500*time.Millisecond || ct.IdleConnTimeout != 3*time.Second ||
		ct.MaxIdleConnsPerHost != 8 || ct.MaxIdleConns != 8 || ct.MaxConnsPerHost != 16 ||
		custom.s.connectTimeout != 200*time.Millisecond {
		t.Errorf("config not applied: %+v", ct)
	}
}

// TestNoAcceptEncodingAdded: a proxy must pass the client's headers as
// they are; Go's transport would otherwise ask for gzip itself.
func TestNoAcceptEncodingAdded(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Accept-Encoding")
	}))
	t.Cleanup(srv.Close)
	b := newBackend(t, config.Backend{}, srv.URL)
	do(t, b, http.MethodGet, nil)
	if ae := <-got; ae != "" {
		t.Errorf("upstream got Accept-Encoding %q, want none", ae)
	}
}

func TestIgnoresEnvironmentProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", closedPort(t))
	srv := echoServer(t, "direct")
	b := newBackend(t, config.Backend{}, srv.URL)
	if name, err := do(t, b, http.MethodGet, nil); err != nil || name != "direct" {
		t.Errorf("%q, %v: want a direct connection", name, err)
	}
}

func TestHTTPSWithCAFileAndHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(echoHandler("tls"))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	b := newBackend(t, config.Backend{TLS: &config.UpstreamTLS{CAFile: caFile, ServerName: "example.com"}}, srv.URL)
	resp, err := b.RoundTrip(outgoing(t, t.Context(), http.MethodGet, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2 to an https endpoint", resp.Proto)
	}

	insecure := newBackend(t, config.Backend{TLS: &config.UpstreamTLS{InsecureSkipVerify: true}}, srv.URL)
	if _, err := do(t, insecure, http.MethodGet, nil); err != nil {
		t.Errorf("insecure_skip_verify: %v", err)
	}
	untrusted := newBackend(t, config.Backend{}, srv.URL)
	if _, err := do(t, untrusted, http.MethodGet, nil); err == nil {
		t.Error("an untrusted certificate was accepted")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	badCA := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(badCA, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		name string
		cfg  config.Backend
	}{
		{"no endpoints", config.Backend{}},
		{"bad scheme", config.Backend{Endpoints: []string{"ftp://127.0.0.1:21"}}},
		{"no host", config.Backend{Endpoints: []string{"http://"}}},
		{"unparsable", config.Backend{Endpoints: []string{"http://[::1"}}},
		{"unknown balance", config.Backend{Endpoints: []string{"http://127.0.0.1:1"}, Balance: "random"}},
		{"negative retries", config.Backend{Endpoints: []string{"http://127.0.0.1:1"}, Retry: config.Retry{Attempts: -1}}},
		{"missing CA file", config.Backend{Endpoints: []string{"https://127.0.0.1:1"}, TLS: &config.UpstreamTLS{CAFile: "/nonexistent/ca.pem"}}},
		{"CA file without PEM", config.Backend{Endpoints: []string{"https://127.0.0.1:1"}, TLS: &config.UpstreamTLS{CAFile: badCA}}},
	} {
		cfg := tc.cfg
		cfg.Name = "x"
		if _, err := New(&cfg); err == nil || !strings.Contains(err.Error(), `backend "x"`) {
			t.Errorf("%s: err = %v, want an error naming the backend", tc.name, err)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	// Endpoints are parsed by New, down to scheme://host:port.
	b, err := New(&config.Backend{Endpoints: []string{"http://127.0.0.1:1/", "https://[::1]:8443", "http://Svc.Internal"}})
	if err != nil || len(b.eps) != 3 {
		t.Fatalf("New with raw endpoints: %v", err)
	}
	want := []string{"http://127.0.0.1:1", "https://[::1]:8443", "http://Svc.Internal"}
	for i, e := range b.eps {
		if e.url.String() != want[i] {
			t.Errorf("endpoint %d = %s, want %s", i, e.url, want[i])
		}
	}
	b.Close()
}

// TestUpgradeThroughReverseProxy: with least_request the response body is
// wrapped; ReverseProxy must still see a writable body for a 101 upgrade.
func TestUpgradeThroughReverseProxy(t *testing.T) {
	upstream := rawServer(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		io.Copy(c, br) // echo
	})
	b := newBackend(t, config.Backend{Balance: BalanceLeastRequest}, upstream)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(*httputil.ProxyRequest) {},
		Transport: b,
	})
	t.Cleanup(proxy.Close)

	c, err := net.Dial("tcp", proxy.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade response: %v, %v", resp, err)
	}
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through upgraded connection: %q, %v", buf, err)
	}
	if got := statusOf(t, b, upstream).InFlight; got != 1 {
		t.Errorf("in flight during the upgraded connection = %d, want 1", got)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for statusOf(t, b, upstream).InFlight != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := statusOf(t, b, upstream).InFlight; got != 0 {
		t.Errorf("in flight after the upgraded connection closed = %d, want 0", got)
	}
}

// TestReverseProxyEndToEnd runs the backend as ReverseProxy's transport.
func TestReverseProxyEndToEnd(t *testing.T) {
	a, b2 := echoServer(t, "a"), echoServer(t, "b")
	b := newBackend(t, config.Backend{Host: HostEndpoint}, a.URL, b2.URL)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetXForwarded() },
		Transport: b,
	})
	t.Cleanup(proxy.Close)
	seen := map[string]bool{}
	for range 4 {
		resp, err := http.Get(proxy.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen[string(body)] = true
		if resp.Header.Get("X-Host") == "" || strings.HasPrefix(resp.Header.Get("X-Host"), proxy.Listener.Addr().String()) {
			t.Errorf("upstream Host %q, want the endpoint's", resp.Header.Get("X-Host"))
		}
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("saw %v, want both endpoints", seen)
	}
}
