package h1server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/h1server"
	"github.com/umbragw/umbra/test/testkit"
)

// timeout bounds every wait in these tests; it only keeps a broken
// server from hanging the run, nothing asserts that anything is fast.
const timeout = 10 * time.Second

// testServer is an h1server.Server serving a loopback listener.
type testServer struct {
	*h1server.Server
	addr string

	done chan struct{}
	err  error // what Serve returned, once done is closed
}

// start serves srv on a fresh loopback listener. At cleanup the server
// is closed and Serve must have returned http.ErrServerClosed.
func start(t *testing.T, srv *h1server.Server) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		ts.err = srv.Serve(ln)
		close(ts.done)
	}()
	t.Cleanup(func() {
		srv.Close()
		if err := ts.wait(); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return ts
}

// serve starts a server with handler h and default settings.
func serve(t *testing.T, h http.HandlerFunc) *testServer {
	return start(t, &h1server.Server{Handler: h})
}

// wait returns what Serve returned, after Shutdown or Close.
func (ts *testServer) wait() error {
	select {
	case <-ts.done:
		return ts.err
	case <-time.After(timeout):
		return errors.New("Serve did not return")
	}
}

// url is the server's base URL.
func (ts *testServer) url() string { return "http://" + ts.addr }

// shutdown runs Shutdown with the test timeout and wants nil.
func (ts *testServer) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// client is an http.Client for ts with its own transport, whose idle
// connections are closed at cleanup.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// get does a GET with c and returns the response and its whole body.
func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(b)
}

// rawConn is a client connection written and read byte for byte.
type rawConn struct {
	t *testing.T
	net.Conn
	br *bufio.Reader
}

// dial opens a raw connection to ts, closed at cleanup. Every read and
// write on it fails after the test timeout instead of hanging.
func dial(t *testing.T, ts *testServer) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(timeout))
	return &rawConn{t: t, Conn: nc, br: bufio.NewReader(nc)}
}

// send writes s in one write.
func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read reads one response to a request with the given method, and its
// whole body.
func (c *rawConn) read(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

// roundTrip sends req and reads the response to a GET.
func (c *rawConn) roundTrip(req string) (*http.Response, string) {
	c.t.Helper()
	c.send(req)
	return c.read(http.MethodGet)
}

// expectClosed wants the server to have ended the connection: the next
// read finds no more data but the end of the stream (or a reset).
func (c *rawConn) expectClosed() {
	c.t.Helper()
	var buf [64]byte
	n, err := c.br.Read(buf[:])
	if n > 0 {
		c.t.Fatalf("want the connection closed; read %q", buf[:n])
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("want the connection closed; read error %v", err)
	}
}

// expectEOF wants the server to have ended the connection cleanly, with
// a FIN (no reset, which could have destroyed the response).
func (c *rawConn) expectEOF() {
	c.t.Helper()
	var buf [64]byte
	n, err := c.br.Read(buf[:])
	if n > 0 || err != io.EOF {
		c.t.Fatalf("want a clean end of the connection; read %q, %v", buf[:n], err)
	}
}

// wantStatus checks a response's status code.
func wantStatus(t *testing.T, resp *http.Response, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("status %q, want %d", resp.Status, code)
	}
}

// wantHeader checks the exact values of one response header field.
func wantHeader(t *testing.T, h http.Header, key string, want ...string) {
	t.Helper()
	got := h.Values(key)
	if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
		t.Fatalf("%s: %q, want %q", key, got, want)
	}
}

// wantBody checks a body.
func wantBody(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}

// recv waits for a value on ch, failing the test after the timeout.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitFor polls cond until it holds, failing the test after the timeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// handlerWait is for handlers: it waits for ch, or gives up after the
// timeout (reported as false) so a failing test cannot hang on it.
func handlerWait(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(timeout):
		return false
	}
}

// waitCond is waitFor for handlers: it reports false after the timeout.
func waitCond(cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// logger returns a logger writing into a new testkit.LogBuffer.
func logger() (*slog.Logger, *testkit.LogBuffer) {
	b := &testkit.LogBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

// discardLogger drops what a server logs.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
