package h1server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/h1server"
)

// TestIdleTimeout proves that IdleTimeout ends a keep-alive connection
// waiting for its next request, and one on which no request came at all.
func TestIdleTimeout(t *testing.T) {
	// The limit leaves the first request time to arrive on a busy machine.
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler), IdleTimeout: 300 * time.Millisecond})
	c, silent := dial(t, ts), dial(t, ts)
	resp, body := c.roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "hello")
	c.expectClosed()
	silent.expectClosed()
}

// TestIdleTimeoutRenewedByRequests proves that each request restarts the
// idle limit, which the server updates lazily (not for every request): a
// connection busy for longer than IdleTimeout is not cut, and is once it
// goes quiet.
func TestIdleTimeoutRenewedByRequests(t *testing.T) {
	const idle = 200 * time.Millisecond
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler), IdleTimeout: idle})
	c := dial(t, ts)
	for end := time.Now().Add(4 * idle); time.Now().Before(end); time.Sleep(idle / 5) {
		resp, body := c.roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
		wantStatus(t, resp, 200)
		wantBody(t, body, "hello")
	}
	c.expectClosed()
}

// TestIdleTimeoutFromReadHeaderTimeout proves the documented default: with
// IdleTimeout 0, ReadHeaderTimeout bounds the wait for a request (as with
// net/http), so an idle connection is not kept for ever.
func TestIdleTimeoutFromReadHeaderTimeout(t *testing.T) {
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler), ReadHeaderTimeout: 300 * time.Millisecond})
	c, silent := dial(t, ts), dial(t, ts)
	resp, _ := c.roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	c.expectClosed()
	silent.expectClosed()
}

// TestReadHeaderTimeout proves that a client sending part of a request
// head and then nothing has its connection ended, without a response,
// by ReadHeaderTimeout (the idle limit, and the client's, are far longer),
// and that the handler never runs.
func TestReadHeaderTimeout(t *testing.T) {
	ts := start(t, &h1server.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Error("handler ran")
		}),
		ReadHeaderTimeout: 100 * time.Millisecond,
		IdleTimeout:       time.Minute,
	})
	c := dial(t, ts)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n")
	c.expectClosed()
}

// TestReadHeaderTimeoutNotOnBody proves that ReadHeaderTimeout bounds only
// the head: the head comes in two pieces (so the limit is set) and the
// body arrives after the limit, and is read in full.
func TestReadHeaderTimeoutNotOnBody(t *testing.T) {
	const limit = 300 * time.Millisecond
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(echoBody), ReadHeaderTimeout: limit, IdleTimeout: time.Minute})
	c := dial(t, ts)
	c.send("POST / HTTP/1.1\r\n")
	// Once the server began the request, it has read the first piece and
	// not the second: it must set the limit.
	waitFor(t, "the request to begin", func() bool { return h1server.ActiveConns(ts.Server) == 1 })
	c.send("Host: x\r\nContent-Length: 4\r\n\r\nab")
	time.Sleep(2 * limit)
	c.send("cd")
	resp, body := c.read("POST")
	wantStatus(t, resp, 200)
	wantBody(t, body, "abcd")
}

// TestShutdownIdle proves that Shutdown closes idle keep-alive
// connections at once and returns nil, that Serve returns
// http.ErrServerClosed, and that no new connection is accepted (nor can
// Serve run again).
func TestShutdownIdle(t *testing.T) {
	ts := serve(t, framingHandler)
	c := dial(t, ts)
	resp, _ := c.roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	ts.shutdown(t)
	c.expectClosed()
	if err := ts.wait(); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if nc, err := net.Dial("tcp", ts.addr); err == nil {
		nc.Close()
		t.Fatal("dial after Shutdown succeeded")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Serve after Shutdown left its listener open")
	}
}

// TestShutdownNewConnection proves that Shutdown does not close a
// connection accepted just before it whose first request is still on its
// way (as net/http gives new connections 5 s): the request is served,
// with "Connection: close". A client does not retry a request that failed
// on a fresh connection, so closing it would lose the request.
func TestShutdownNewConnection(t *testing.T) {
	ts := serve(t, framingHandler)
	c := dial(t, ts)
	waitFor(t, "the connection to be accepted", func() bool { return h1server.Conns(ts.Server) == 1 })
	shut := make(chan error, 1)
	go func() { shut <- ts.Shutdown(context.Background()) }()
	waitFor(t, "Shutdown", func() bool { return h1server.ShuttingDown(ts.Server) })
	c.send("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := c.read("GET")
	wantStatus(t, resp, 200)
	wantBody(t, body, "hello")
	if !resp.Close {
		t.Fatal("response during Shutdown without Connection: close")
	}
	c.expectClosed()
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// blocker is a handler that signals entered and waits for release.
type blocker struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}, 10), release: make(chan struct{})}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.entered <- struct{}{}
	if handlerWait(b.release) {
		io.WriteString(w, "finished")
	}
}

// TestShutdownInFlight proves that Shutdown lets a running request finish,
// its response saying "Connection: close", closes the connection after it
// and only then returns nil.
func TestShutdownInFlight(t *testing.T) {
	b := newBlocker()
	ts := start(t, &h1server.Server{Handler: b})
	c := dial(t, ts)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	recv(t, b.entered, "the handler")
	shut := make(chan error, 1)
	go func() { shut <- ts.Shutdown(context.Background()) }()
	waitFor(t, "Shutdown", func() bool { return h1server.ShuttingDown(ts.Server) })
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the request finished", err)
	default:
	}
	close(b.release)
	resp, body := c.read("GET")
	wantStatus(t, resp, 200)
	wantBody(t, body, "finished")
	if !resp.Close {
		t.Fatal("response during Shutdown without Connection: close")
	}
	c.expectClosed()
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownContextExpires proves that Shutdown gives up with the
// context's error while a request hangs, and that Close then ends it.
func TestShutdownContextExpires(t *testing.T) {
	b := newBlocker()
	defer close(b.release)
	ts := start(t, &h1server.Server{Handler: b})
	c := dial(t, ts)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	recv(t, b.entered, "the handler")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want context.DeadlineExceeded", err)
	}
	ts.Close()
	c.expectClosed()
}

// TestCloseActive proves that Close ends connections with a request
// running (whose context the closed connection then cancels) and idle
// ones, and that Serve returns http.ErrServerClosed.
func TestCloseActive(t *testing.T) {
	entered := make(chan struct{})
	cancelled := make(chan error, 1)
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(timeout):
			cancelled <- errors.New("not cancelled")
		}
	})
	active, idle := dial(t, ts), dial(t, ts)
	active.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	recv(t, entered, "the handler")
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	active.expectClosed()
	idle.expectClosed()
	if err := recv(t, cancelled, "the handler's end"); !errors.Is(err, context.Canceled) {
		t.Fatalf("context: %v", err)
	}
	if err := ts.wait(); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// TestBaseContext proves that request contexts derive from BaseContext.
func TestBaseContext(t *testing.T) {
	type key struct{}
	base := context.WithValue(context.Background(), key{}, "base")
	ts := start(t, &h1server.Server{BaseContext: base, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Context().Value(key{}))
	})})
	_, body := get(t, client(t), ts.url())
	wantBody(t, body, "base")
}

// TestBaseContextCancel proves that BaseContext ending cancels the
// context of a request being served, of one whose connection was hijacked
// (no longer tracked by the server), and of one that begins afterwards.
func TestBaseContextCancel(t *testing.T) {
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	started := make(chan string, 2)
	ended := make(chan string, 3)
	ts := start(t, &h1server.Server{BaseContext: base, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hijack" {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			defer conn.Close()
		}
		if r.URL.Path != "/late" {
			started <- r.URL.Path
		}
		select {
		case <-r.Context().Done():
			ended <- r.URL.Path + " " + r.Context().Err().Error()
		case <-time.After(10 * time.Second):
			ended <- r.URL.Path + " not cancelled"
		}
	})})
	active, hijacked := dial(t, ts), dial(t, ts)
	active.send("GET /active HTTP/1.1\r\nHost: x\r\n\r\n")
	hijacked.send("GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n")
	got := map[string]bool{recv(t, started, "a handler"): true, recv(t, started, "a handler"): true}
	if !got["/active"] || !got["/hijack"] {
		t.Fatalf("started %v", got)
	}
	cancelBase()
	want := map[string]bool{"/active context canceled": true, "/hijack context canceled": true}
	for range 2 {
		if e := recv(t, ended, "a cancelled handler"); !want[e] {
			t.Fatalf("handler ended with %q", e)
		}
	}
	late := dial(t, ts)
	late.send("GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
	if e := recv(t, ended, "the late handler"); e != "/late context canceled" {
		t.Fatalf("late request: %q", e)
	}
}

// TestPanics proves that a handler panicking with http.ErrAbortHandler
// has its connection closed without a response and without a log line,
// that any other panic is logged, and that the server serves on.
func TestPanics(t *testing.T) {
	log, logs := logger()
	ts := start(t, &h1server.Server{Log: log, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "/boom":
			panic("boom value")
		}
		io.WriteString(w, "fine")
	})})
	c := dial(t, ts)
	c.send("GET /abort HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); string(b) != "partial" || err == nil {
		t.Fatalf("aborted body %q, %v; want \"partial\" and an error", b, err)
	}
	c.expectClosed()
	if s := logs.String(); s != "" {
		t.Fatalf("ErrAbortHandler logged: %s", s)
	}

	c = dial(t, ts)
	c.send("GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
	c.expectClosed()
	s := logs.String()
	if !strings.Contains(s, "panicked") || !strings.Contains(s, "boom value") || !strings.Contains(s, "level=ERROR") {
		t.Fatalf("log %q", s)
	}

	_, body := get(t, client(t), ts.url()+"/ok")
	wantBody(t, body, "fine")
}

// TestNoGoroutineLeak proves that after a mix of requests (keep-alive,
// bodies, pipelined, watched, rejected, hijacked, aborted), closed client
// connections and Shutdown, the goroutine count is back to where it was.
func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		ts := start(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/slow":
				time.Sleep(20 * time.Millisecond)
			case "/abort":
				panic(http.ErrAbortHandler)
			case "/hijack":
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		}), Log: discardLogger()})
		hc := client(t)
		for i := 0; i < 5; i++ {
			get(t, hc, ts.url()+"/")
			get(t, hc, ts.url()+"/slow")
			resp, err := hc.Post(ts.url()+"/", "text/plain", strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		c := dial(t, ts)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		c.read("GET")
		c.read("GET")
		c.Close()
		for _, req := range []string{"BAD\r\n\r\n", "GET /abort HTTP/1.1\r\nHost: x\r\n\r\n", "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n"} {
			c := dial(t, ts)
			c.send(req)
			io.ReadAll(c.br)
			c.Close()
		}
		c = dial(t, ts)
		c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		c.Close() // gone while watched
		hc.Transport.(*http.Transport).CloseIdleConnections()
		ts.shutdown(t)
		if err := ts.wait(); !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	}()
	deadline := time.Now().Add(timeout)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSilentConnectionReadHeaderTimeout proves that a new connection on
// which no byte ever comes is closed after ReadHeaderTimeout, as with
// net/http, not kept for the far longer IdleTimeout: the first request is
// due from the accept on.
func TestSilentConnectionReadHeaderTimeout(t *testing.T) {
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler),
		ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: time.Minute})
	start := time.Now()
	dial(t, ts).expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v, want about ReadHeaderTimeout", d)
	}
	// A keep-alive connection gets IdleTimeout after its request.
	c := dial(t, ts)
	resp, _ := c.roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	time.Sleep(time.Second)
	resp, body := c.roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "hello")
}

// TestIdleConnectionReleasesBuffers proves that a keep-alive connection
// idle for longer than the hold gives its read and write buffers back
// (and a new connection has none until its first byte), and that it then
// serves its next requests as before: one alone, several pipelined, one
// whose head comes in pieces.
func TestIdleConnectionReleasesBuffers(t *testing.T) {
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler), IdleTimeout: time.Minute})
	const n = 20
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dial(t, ts)
	}
	waitFor(t, "all connections accepted", func() bool { return h1server.Conns(ts.Server) == n })
	if b := h1server.BufferedConns(ts.Server); b != 0 {
		t.Fatalf("%d silent new connections hold buffers, want 0", b)
	}
	for _, c := range conns {
		resp, body := c.roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
		wantStatus(t, resp, 200)
		wantBody(t, body, "hello")
	}
	if b := h1server.BufferedConns(ts.Server); b != n {
		t.Fatalf("%d connections hold buffers right after a request, want %d", b, n)
	}
	waitFor(t, "idle connections to give their buffers back", func() bool { return h1server.BufferedConns(ts.Server) == 0 })
	for i, c := range conns {
		switch i % 3 {
		case 0:
			resp, body := c.roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
			wantStatus(t, resp, 200)
			wantBody(t, body, "hello")
		case 1:
			c.send("GET /length HTTP/1.1\r\nHost: x\r\n\r\nGET /length HTTP/1.1\r\nHost: x\r\n\r\n")
			for range 2 {
				resp, body := c.read("GET")
				wantStatus(t, resp, 200)
				wantBody(t, body, "hello")
			}
		case 2:
			c.send("G")
			time.Sleep(20 * time.Millisecond)
			c.send("ET /length HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body := c.read("GET")
			wantStatus(t, resp, 200)
			wantBody(t, body, "hello")
		}
	}
	time.Sleep(h1server.IdleHold / 2)
	if b := h1server.BufferedConns(ts.Server); b != n {
		t.Fatalf("%d connections hold buffers after their next request, want %d", b, n)
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "the connections to end", func() bool { return h1server.Conns(ts.Server) == 0 })
	if b := h1server.BufferedConns(ts.Server); b != 0 {
		t.Fatalf("%d buffers not given back after the connections ended", b)
	}
}
