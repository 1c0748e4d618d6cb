package h1client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeepAliveReuse: sequential requests share one TCP connection.
func TestKeepAliveReuse(t *testing.T) {
	srv := newCountingHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "path=%s", r.URL.Path)
	}))
	p, dials := newTestPool(t, srv.addr(), Options{})
	for i := 0; i < 100; i++ {
		path := fmt.Sprintf("/r%d", i)
		mustGet(t, p, srv.addr(), path, "path="+path)
	}
	if got := srv.opened.Load(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
	if got := dials.Load(); got != 1 {
		t.Errorf("pool dialed %d times, want 1", got)
	}
	if got := p.Idle(); got != 1 {
		t.Errorf("Idle() = %d, want 1", got)
	}
	if got := srv.closed.Load(); got != 0 {
		t.Errorf("server saw %d connections closed, want 0", got)
	}
}

// TestRequestOnTheWire: the server receives the method, path, Host and
// headers of the request.
func TestRequestOnTheWire(t *testing.T) {
	srv := newRawServer(t, staticResponse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	p, _ := newTestPool(t, srv.addr, Options{})
	req := newReq(t, context.Background(), "GET", srv.addr, "/a/b?x=1&y=2")
	req.Host = "example.test"
	req.Header.Set("X-Custom", "v1")
	req.Header.Add("X-Custom", "v2")
	if _, body, err := do(p, req); err != nil || body != "ok" {
		t.Fatalf("do: body %q, err %v", body, err)
	}
	reqs := srv.requestsSeen()
	if len(reqs) != 1 {
		t.Fatalf("server read %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "GET" || r.RequestURI != "/a/b?x=1&y=2" || r.Host != "example.test" || r.Proto != "HTTP/1.1" {
		t.Errorf("got %s %s %s Host %q", r.Method, r.RequestURI, r.Proto, r.Host)
	}
	if got := r.Header.Values("X-Custom"); len(got) != 2 || got[0] != "v1" || got[1] != "v2" {
		t.Errorf("X-Custom = %q, want [v1 v2]", got)
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) != 0 {
		t.Errorf("request has a body: ContentLength %d, TransferEncoding %q", r.ContentLength, r.TransferEncoding)
	}
}

// TestConcurrentMaxIdle: concurrent requests all get their own response,
// and the pool never keeps more than MaxIdle connections, closing the
// extra ones.
func TestConcurrentMaxIdle(t *testing.T) {
	const maxIdle = 4
	srv := newCountingHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond) // keep requests overlapping
		fmt.Fprintf(w, "resp:%s", r.URL.Path)
	}))
	p, dials := newTestPool(t, srv.addr(), Options{MaxIdle: maxIdle})

	var maxSeen atomic.Int32
	stop := make(chan struct{})
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		for {
			if n := int32(p.Idle()); n > maxSeen.Load() {
				maxSeen.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Microsecond):
			}
		}
	}()

	const goroutines, perG = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perG)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				path := fmt.Sprintf("/g%d/r%d", g, i)
				req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+srv.addr()+path, nil)
				resp, body, err := do(p, req)
				if err != nil {
					errs <- fmt.Errorf("%s: %v", path, err)
					continue
				}
				if resp.StatusCode != 200 || body != "resp:"+path {
					errs <- fmt.Errorf("%s: status %d body %q", path, resp.StatusCode, body)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-monitorDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	idle := p.Idle()
	if idle > maxIdle || idle < 1 {
		t.Errorf("Idle() = %d, want 1..%d", idle, maxIdle)
	}
	if m := maxSeen.Load(); m > maxIdle {
		t.Errorf("Idle() reached %d during the run, MaxIdle is %d", m, maxIdle)
	}
	opened := srv.opened.Load()
	if opened != dials.Load() {
		t.Errorf("server saw %d connections, pool dialed %d", opened, dials.Load())
	}
	if opened <= maxIdle {
		t.Fatalf("only %d connections were opened: the test did not exceed MaxIdle", opened)
	}
	// Every connection beyond the idle ones was closed by the pool.
	waitFor(t, 2*time.Second, "extra connections to be closed", func() bool {
		return srv.opened.Load()-srv.closed.Load() == int32(p.Idle())
	})
	t.Logf("%d connections opened, %d idle at the end", opened, idle)
}

// staleServer answers each connection's first request; a second request
// on the connection it reads and closes the connection without answering:
// the server closing an idle connection just as the pool reuses it, which
// no probe can see coming.
func staleServer(t *testing.T) *rawServer {
	return newRawServer(t, func(c *srvConn) {
		req, ok := c.readRequest()
		if !ok {
			return
		}
		body := fmt.Sprintf("conn%d %s", c.id, req.Method)
		c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		http.ReadRequest(c.br) // not recorded: it is never answered
	})
}

// closingServer answers each connection's first request, then closes it
// without announcing it (no Connection: close).
func closingServer(t *testing.T) *rawServer {
	return newRawServer(t, scripted(func(id, n int, req *http.Request) (string, bool) {
		body := fmt.Sprintf("conn%d %s", id, req.Method)
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body), true
	}))
}

// primeStale sends one GET so that the pool holds a connection the server
// will close when the next request arrives on it.
func primeStale(t *testing.T, p *Pool, srv *rawServer) {
	t.Helper()
	mustGet(t, p, srv.addr, "/", "conn1 GET")
	if p.Idle() != 1 {
		t.Fatalf("Idle() = %d after the first request, want 1", p.Idle())
	}
}

// TestStaleConnGETRetried: a GET that fails on a pooled connection the
// server closed is sent again on a new connection.
func TestStaleConnGETRetried(t *testing.T) {
	srv := staleServer(t)
	p, dials := newTestPool(t, srv.addr, Options{})
	primeStale(t, p, srv)
	mustGet(t, p, srv.addr, "/", "conn2 GET")
	if got := dials.Load(); got != 2 {
		t.Errorf("dials = %d, want 2", got)
	}
	if got := srv.accepted.Load(); got != 2 {
		t.Errorf("server accepted %d connections, want 2", got)
	}
}

// TestStaleConnHEADRetried: HEAD is replayable too.
func TestStaleConnHEADRetried(t *testing.T) {
	srv := staleServer(t)
	p, dials := newTestPool(t, srv.addr, Options{})
	primeStale(t, p, srv)
	resp, _, err := do(p, newReq(t, context.Background(), "HEAD", srv.addr, "/"))
	if err != nil {
		t.Fatalf("HEAD: %v", err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != int64(len("conn2 HEAD")) {
		t.Errorf("HEAD: status %d, ContentLength %d", resp.StatusCode, resp.ContentLength)
	}
	if got := dials.Load(); got != 2 {
		t.Errorf("dials = %d, want 2", got)
	}
}

// TestStaleConnPOSTNotReplayed: a bodyless POST without an idempotency
// key may have reached the server, so it is not sent again.
func TestStaleConnPOSTNotReplayed(t *testing.T) {
	srv := staleServer(t)
	p, dials := newTestPool(t, srv.addr, Options{})
	primeStale(t, p, srv)
	resp, err := p.RoundTrip(newReq(t, context.Background(), "POST", srv.addr, "/"))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("POST on a stale connection succeeded with status %d, want an error", resp.StatusCode)
	}
	if got := dials.Load(); got != 1 {
		t.Errorf("dials = %d, want 1 (no resend)", got)
	}
	if p.Idle() != 0 {
		t.Errorf("Idle() = %d, want 0", p.Idle())
	}
	time.Sleep(50 * time.Millisecond)
	if got := srv.accepted.Load(); got != 1 {
		t.Errorf("server accepted %d connections, want 1", got)
	}
	// The pool still works afterwards.
	mustGet(t, p, srv.addr, "/", "conn2 GET")
}

// TestStaleConnPOSTIdempotencyKeyReplayed: an Idempotency-Key (or
// X-Idempotency-Key) makes a POST replayable.
func TestStaleConnPOSTIdempotencyKeyReplayed(t *testing.T) {
	for _, key := range []string{"Idempotency-Key", "X-Idempotency-Key"} {
		t.Run(key, func(t *testing.T) {
			srv := staleServer(t)
			p, dials := newTestPool(t, srv.addr, Options{})
			primeStale(t, p, srv)
			req := newReq(t, context.Background(), "POST", srv.addr, "/")
			req.Header.Set(key, "abc")
			resp, body, err := do(p, req)
			if err != nil {
				t.Fatalf("POST with %s: %v", key, err)
			}
			if resp.StatusCode != 200 || body != "conn2 POST" {
				t.Errorf("status %d body %q, want 200 %q", resp.StatusCode, body, "conn2 POST")
			}
			if got := dials.Load(); got != 2 {
				t.Errorf("dials = %d, want 2", got)
			}
			reqs := srv.requestsSeen()
			if len(reqs) != 2 || reqs[1].Header.Get(key) != "abc" {
				t.Errorf("server saw %d requests; the resent one must carry %s", len(reqs), key)
			}
		})
	}
}

// TestStaleConnProbe: a pooled connection is probed before every reuse,
// however short its idle time; one the server closed is discarded
// without sending anything on it, so even a non-replayable POST succeeds.
func TestStaleConnProbe(t *testing.T) {
	srv := closingServer(t)
	p, dials := newTestPool(t, srv.addr, Options{})
	mustGet(t, p, srv.addr, "/", "conn1 GET")
	// Let the server's FIN arrive: well under a second.
	waitFor(t, 2*time.Second, "server to finish conn 1", func() bool { return srv.requests.Load() == 1 })
	time.Sleep(20 * time.Millisecond)
	resp, body, err := do(p, newReq(t, context.Background(), "POST", srv.addr, "/"))
	if err != nil {
		t.Fatalf("POST after the probe: %v", err)
	}
	if resp.StatusCode != 200 || body != "conn2 POST" {
		t.Errorf("status %d body %q, want 200 %q", resp.StatusCode, body, "conn2 POST")
	}
	if got := dials.Load(); got != 2 {
		t.Errorf("dials = %d, want 2", got)
	}
	if got := srv.requests.Load(); got != 2 {
		t.Errorf("server read %d requests, want 2", got)
	}
}

// TestProbeKeepsLiveConn: a healthy connection passes the probe and is
// reused, right away or after a while.
func TestProbeKeepsLiveConn(t *testing.T) {
	srv := newRawServer(t, scripted(func(id, n int, _ *http.Request) (string, bool) {
		body := fmt.Sprintf("conn%d req%d", id, n)
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body), false
	}))
	p, dials := newTestPool(t, srv.addr, Options{})
	mustGet(t, p, srv.addr, "/", "conn1 req1")
	mustGet(t, p, srv.addr, "/", "conn1 req2")
	time.Sleep(300 * time.Millisecond)
	mustGet(t, p, srv.addr, "/", "conn1 req3")
	if got := dials.Load(); got != 1 {
		t.Errorf("dials = %d, want 1", got)
	}
}

// TestIdleTimeoutSweep: the sweep closes connections idle longer than
// IdleTimeout.
func TestIdleTimeoutSweep(t *testing.T) {
	srv := newCountingHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	p, _ := newTestPool(t, srv.addr(), Options{IdleTimeout: 200 * time.Millisecond})
	mustGet(t, p, srv.addr(), "/", "ok")
	if p.Idle() != 1 {
		t.Fatalf("Idle() = %d right after the request, want 1", p.Idle())
	}
	time.Sleep(600 * time.Millisecond)
	if got := p.Idle(); got != 0 {
		t.Errorf("Idle() = %d after 3x IdleTimeout, want 0", got)
	}
	waitFor(t, 2*time.Second, "server to see the connection close", func() bool { return srv.closed.Load() == 1 })

	// The sweep is re-armed for connections pooled later.
	mustGet(t, p, srv.addr(), "/", "ok")
	if got := srv.opened.Load(); got != 2 {
		t.Errorf("server saw %d connections, want 2", got)
	}
	waitFor(t, 2*time.Second, "second sweep", func() bool { return p.Idle() == 0 && srv.closed.Load() == 2 })
}

// TestIdleTimeoutSweepKeepsRecent: the sweep closes only the connections
// idle for IdleTimeout; a recently used one stays.
func TestIdleTimeoutSweepKeepsRecent(t *testing.T) {
	release := make(chan struct{})
	srv := newCountingHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	}))
	const idleTimeout = 400 * time.Millisecond
	p, _ := newTestPool(t, srv.addr(), Options{IdleTimeout: idleTimeout})

	// Two connections: the slow request holds one while a second is used.
	slowDone := make(chan error, 1)
	go func() {
		_, _, err := do(p, newReq(t, context.Background(), "GET", srv.addr(), "/slow"))
		slowDone <- err
	}()
	waitFor(t, 2*time.Second, "slow request to reach the server", func() bool { return srv.opened.Load() == 1 })
	time.Sleep(20 * time.Millisecond)
	mustGet(t, p, srv.addr(), "/", "ok") // second connection, pooled first
	pooledAt := time.Now()
	time.Sleep(idleTimeout / 2)
	close(release)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	if p.Idle() != 2 {
		t.Fatalf("Idle() = %d, want 2", p.Idle())
	}
	// After the first connection's timeout, only the more recent remains.
	waitFor(t, 2*time.Second, "sweep of the older connection", func() bool { return srv.closed.Load() >= 1 })
	if got, since := p.Idle(), time.Since(pooledAt); got != 1 && since < idleTimeout+idleTimeout/2-50*time.Millisecond {
		t.Errorf("Idle() = %d %v after the older connection was pooled, want 1", got, since)
	}
	waitFor(t, 2*time.Second, "sweep of both connections", func() bool { return p.Idle() == 0 && srv.closed.Load() == 2 })
}

// TestCloseClosesIdle: Close closes the pooled connections.
func TestCloseClosesIdle(t *testing.T) {
	srv := newCountingHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	p, dials := newTestPool(t, srv.addr(), Options{})
	mustGet(t, p, srv.addr(), "/", "ok")
	if p.Idle() != 1 {
		t.Fatalf("Idle() = %d, want 1", p.Idle())
	}
	p.Close()
	if got := p.Idle(); got != 0 {
		t.Errorf("Idle() = %d after Close, want 0", got)
	}
	waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.closed.Load() == 1 })

	// A request after Close still works, but its connection is not kept.
	mustGet(t, p, srv.addr(), "/", "ok")
	if got := dials.Load(); got != 2 {
		t.Errorf("dials = %d, want 2", got)
	}
	if got := p.Idle(); got != 0 {
		t.Errorf("Idle() = %d after a request on a closed pool, want 0", got)
	}
	waitFor(t, 2*time.Second, "server to see the second close", func() bool { return srv.closed.Load() == 2 })
}

// TestCloseDuringInFlight: a request in flight during Close finishes, and
// its connection is closed instead of pooled when the body ends.
func TestCloseDuringInFlight(t *testing.T) {
	srv := newRawServer(t, func(c *srvConn) {
		if _, ok := c.readRequest(); !ok {
			return
		}
		c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
		select {
		case <-c.s.done:
			return
		case <-time.After(200 * time.Millisecond):
		}
		c.write("world")
		c.waitClose()
	})
	p, _ := newTestPool(t, srv.addr, Options{})
	resp, err := p.RoundTrip(newReq(t, context.Background(), "GET", srv.addr, "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "helloworld" {
		t.Fatalf("body %q, err %v; want helloworld", b, err)
	}
	if got := p.Idle(); got != 0 {
		t.Errorf("Idle() = %d, want 0", got)
	}
	waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.peerClosed.Load() == 1 })
}

// TestEligible covers which requests the pool accepts.
func TestEligible(t *testing.T) {
	mk := func(method, url string, body io.Reader, edit func(*http.Request)) *http.Request {
		r, err := http.NewRequest(method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(r)
		}
		return r
	}
	tests := []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"GET", mk("GET", "http://a/", nil, nil), true},
		{"HEAD", mk("HEAD", "http://a/", nil, nil), true},
		{"DELETE no body", mk("DELETE", "http://a/x", nil, nil), true},
		{"POST nil body", mk("POST", "http://a/", nil, nil), true},
		{"NoBody", mk("GET", "http://a/", http.NoBody, nil), true},
		{"empty strings.Reader", mk("POST", "http://a/", strings.NewReader(""), nil), true}, // NewRequest turns it into NoBody
		{"body", mk("POST", "http://a/", strings.NewReader("x"), nil), false},
		{"body unknown length", mk("POST", "http://a/", io.NopCloser(strings.NewReader("x")), nil), false},
		{"https", mk("GET", "https://a/", nil, nil), false},
		{"no scheme", mk("GET", "http://a/", nil, func(r *http.Request) { r.URL.Scheme = "" }), false},
		{"Upgrade", mk("GET", "http://a/", nil, func(r *http.Request) { r.Header.Set("Upgrade", "websocket") }), false},
		{"empty Upgrade", mk("GET", "http://a/", nil, func(r *http.Request) { r.Header["Upgrade"] = []string{} }), false},
		{"Expect", mk("GET", "http://a/", nil, func(r *http.Request) { r.Header.Set("Expect", "100-continue") }), false},
		{"Trailer", mk("GET", "http://a/", nil, func(r *http.Request) { r.Trailer = http.Header{"X-T": nil} }), false},
		{"TransferEncoding", mk("GET", "http://a/", nil, func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }), false},
		{"Connection close", mk("GET", "http://a/", nil, func(r *http.Request) { r.Close = true }), true},
	}
	for _, tt := range tests {
		if got := Eligible(tt.req); got != tt.want {
			t.Errorf("%s: Eligible = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestReplayable covers which requests are resent after a stale
// connection.
func TestReplayable(t *testing.T) {
	tests := []struct {
		method string
		header string
		body   bool
		want   bool
	}{
		{"GET", "", false, true},
		{"HEAD", "", false, true},
		{"OPTIONS", "", false, true},
		{"TRACE", "", false, true},
		{"POST", "", false, false},
		{"PUT", "", false, false},
		{"DELETE", "", false, false},
		{"PATCH", "", false, false},
		{"POST", "Idempotency-Key", false, true},
		{"POST", "X-Idempotency-Key", false, true},
		{"GET", "", true, false},
		{"POST", "Idempotency-Key", true, false},
	}
	for _, tt := range tests {
		var body io.Reader
		if tt.body {
			body = strings.NewReader("x")
		}
		r, err := http.NewRequest(tt.method, "http://a/", body)
		if err != nil {
			t.Fatal(err)
		}
		if tt.header != "" {
			r.Header.Set(tt.header, "k")
		}
		if got := replayable(r); got != tt.want {
			t.Errorf("%s header=%q body=%v: replayable = %v, want %v", tt.method, tt.header, tt.body, got, tt.want)
		}
	}
}

// TestDialError: a dial failure is returned and nothing is pooled.
func TestDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := New(addr, Options{})
	t.Cleanup(p.Close)
	start := time.Now()
	resp, err := p.RoundTrip(newReq(t, context.Background(), "GET", addr, "/"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("RoundTrip to a closed port succeeded")
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "dial" {
		t.Errorf("error %v (%T) is not a dial *net.OpError", err, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if p.Idle() != 0 {
		t.Errorf("Idle() = %d, want 0", p.Idle())
	}
}

// TestDialOption: the Dial option is used, with network "tcp" and the
// pool's address, and its errors are returned unchanged.
func TestDialOption(t *testing.T) {
	srv := newRawServer(t, staticResponse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	errDial := errors.New("dial refused by test")
	var calls atomic.Int32
	var fail atomic.Bool
	var gotNetwork, gotAddr atomic.Value
	type ctxKey struct{}
	var gotCtxValue atomic.Value
	p := New(srv.addr, Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		calls.Add(1)
		gotNetwork.Store(network)
		gotAddr.Store(addr)
		if v, ok := ctx.Value(ctxKey{}).(string); ok {
			gotCtxValue.Store(v)
		}
		if fail.Load() {
			return nil, fmt.Errorf("wrapped: %w", errDial)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	t.Cleanup(p.Close)

	ctx := context.WithValue(context.Background(), ctxKey{}, "request-ctx")
	if _, body, err := do(p, newReq(t, ctx, "GET", srv.addr, "/")); err != nil || body != "ok" {
		t.Fatalf("body %q err %v", body, err)
	}
	if calls.Load() != 1 || gotNetwork.Load() != "tcp" || gotAddr.Load() != srv.addr {
		t.Errorf("Dial called %d times with %v %v, want once with tcp %s", calls.Load(), gotNetwork.Load(), gotAddr.Load(), srv.addr)
	}
	if gotCtxValue.Load() != "request-ctx" {
		t.Errorf("Dial did not get the request's context")
	}

	// With no idle connection, a failing Dial fails the request.
	p.Close()
	p2 := New(srv.addr, Options{Dial: p.opts.Dial})
	t.Cleanup(p2.Close)
	fail.Store(true)
	_, err := p2.RoundTrip(newReq(t, context.Background(), "GET", srv.addr, "/"))
	if !errors.Is(err, errDial) {
		t.Errorf("RoundTrip error %v, want the Dial error", err)
	}
	if calls.Load() != 2 {
		t.Errorf("Dial called %d times, want 2", calls.Load())
	}
}

// TestDialErrorAfterStaleConn: when the retry after a stale connection
// cannot dial, the dial error is returned.
func TestDialErrorAfterStaleConn(t *testing.T) {
	srv := staleServer(t)
	errDial := errors.New("no more dials")
	var calls atomic.Int32
	p := New(srv.addr, Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if calls.Add(1) > 1 {
			return nil, errDial
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	t.Cleanup(p.Close)
	primeStale(t, p, srv)
	_, err := p.RoundTrip(newReq(t, context.Background(), "GET", srv.addr, "/"))
	if !errors.Is(err, errDial) {
		t.Errorf("error %v, want the dial error", err)
	}
	if calls.Load() != 2 {
		t.Errorf("Dial called %d times, want 2", calls.Load())
	}
}

// TestDefaults: zero Options take the documented defaults.
func TestDefaults(t *testing.T) {
	p := New("127.0.0.1:1", Options{})
	defer p.Close()
	if p.opts.Dial == nil || p.opts.IdleTimeout != DefaultIdleTimeout || p.opts.MaxIdle != DefaultMaxIdle || p.opts.HeaderTimeout != 0 {
		t.Errorf("defaults: %+v", p.opts)
	}
	p2 := New("127.0.0.1:1", Options{IdleTimeout: time.Second, MaxIdle: 3, HeaderTimeout: time.Minute})
	defer p2.Close()
	if p2.opts.IdleTimeout != time.Second || p2.opts.MaxIdle != 3 || p2.opts.HeaderTimeout != time.Minute {
		t.Errorf("explicit options changed: %+v", p2.opts)
	}
}
