package h1client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer is a hand-written TCP server: each accepted connection is
// given to handler, which reads requests and writes exact bytes. It
// counts connections accepted, requests read and connections on which it
// saw the client close (EOF or error while reading).
type rawServer struct {
	t       *testing.T
	ln      net.Listener
	addr    string
	handler func(*srvConn)

	accepted   atomic.Int32
	requests   atomic.Int32
	peerClosed atomic.Int32

	done  chan struct{} // closed at cleanup: stalled handlers return
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	reqs  []*http.Request // every request read, in order
}

// srvConn is one accepted connection of a rawServer.
type srvConn struct {
	net.Conn
	br         *bufio.Reader
	id         int // 1-based accept order
	s          *rawServer
	closedOnce sync.Once
}

func newRawServer(t *testing.T, handler func(*srvConn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{t: t, ln: ln, addr: ln.Addr().String(), handler: handler, done: make(chan struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.close)
	return s
}

func (s *rawServer) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		id := int(s.accepted.Add(1))
		s.mu.Lock()
		s.conns = append(s.conns, nc)
		s.mu.Unlock()
		c := &srvConn{Conn: nc, br: bufio.NewReader(nc), id: id, s: s}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer nc.Close()
			s.handler(c)
		}()
	}
}

func (s *rawServer) close() {
	s.ln.Close()
	close(s.done)
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// requestsSeen returns a copy of the requests read so far.
func (s *rawServer) requestsSeen() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func (c *srvConn) markPeerClosed() {
	c.closedOnce.Do(func() { c.s.peerClosed.Add(1) })
}

// readRequest reads one request and its body; false when the client
// closed the connection (or sent garbage).
func (c *srvConn) readRequest() (*http.Request, bool) {
	req, err := http.ReadRequest(c.br)
	if err != nil {
		c.markPeerClosed()
		return nil, false
	}
	io.Copy(io.Discard, req.Body)
	c.s.requests.Add(1)
	c.s.mu.Lock()
	c.s.reqs = append(c.s.reqs, req)
	c.s.mu.Unlock()
	return req, true
}

// write sends s in one write call.
func (c *srvConn) write(s string) {
	c.Conn.Write([]byte(s))
}

// waitClose blocks until the client closes the connection (or the test
// ends) and records the close.
func (c *srvConn) waitClose() {
	io.Copy(io.Discard, c.br)
	select {
	case <-c.s.done:
	default:
		c.markPeerClosed()
	}
}

// scripted returns a handler that answers every request on a connection
// with respond(connID, n, req), n counting the connection's requests from
// 1; closeAfter makes the server close the connection after writing.
// When the client closes first, the close is recorded.
func scripted(respond func(connID, n int, req *http.Request) (resp string, closeAfter bool)) func(*srvConn) {
	return func(c *srvConn) {
		for n := 1; ; n++ {
			req, ok := c.readRequest()
			if !ok {
				return
			}
			resp, closeAfter := respond(c.id, n, req)
			c.write(resp)
			if closeAfter {
				return
			}
		}
	}
}

// staticResponse answers every request with resp and keeps the
// connection open.
func staticResponse(resp string) func(*srvConn) {
	return scripted(func(int, int, *http.Request) (string, bool) { return resp, false })
}

// countingHTTPServer is an httptest.Server counting connections opened
// and closed on the server side.
type countingHTTPServer struct {
	*httptest.Server
	opened atomic.Int32
	closed atomic.Int32
}

func newCountingHTTPServer(t testing.TB, h http.Handler) *countingHTTPServer {
	t.Helper()
	s := &countingHTTPServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// addr is host:port of an httptest.Server.
func (s *countingHTTPServer) addr() string { return s.Listener.Addr().String() }

// newTestPool returns a pool whose Dial counts the connections it opens.
func newTestPool(t *testing.T, addr string, opts Options) (*Pool, *atomic.Int32) {
	t.Helper()
	dials := new(atomic.Int32)
	var d net.Dialer
	opts.Dial = func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, a)
	}
	p := New(addr, opts)
	t.Cleanup(p.Close)
	return p, dials
}

func newReq(t *testing.T, ctx context.Context, method, addr, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// do sends req and reads the whole body.
func do(p *Pool, req *http.Request) (*http.Response, string, error) {
	resp, err := p.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// mustGet sends a GET for path and checks status 200 and the body.
func mustGet(t *testing.T, p *Pool, addr, path, wantBody string) *http.Response {
	t.Helper()
	resp, body, err := do(p, newReq(t, context.Background(), "GET", addr, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d, want 200", path, resp.StatusCode)
	}
	if body != wantBody {
		t.Fatalf("GET %s: body %q, want %q", path, body, wantBody)
	}
	return resp
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isTimeout reports whether err is a net.Error timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// roundTripWithin runs p.RoundTrip(req) and fails the test at once if it
// has not returned within limit (the blocked call is released when the
// test's servers close). It returns the result and how long it took.
func roundTripWithin(t *testing.T, p *Pool, req *http.Request, limit time.Duration) (*http.Response, time.Duration, error) {
	t.Helper()
	type result struct {
		resp *http.Response
		err  error
	}
	start := time.Now()
	ch := make(chan result, 1)
	go func() {
		resp, err := p.RoundTrip(req)
		ch <- result{resp, err}
	}()
	select {
	case r := <-ch:
		return r.resp, time.Since(start), r.err
	case <-time.After(limit):
		t.Fatalf("RoundTrip still blocked after %v", limit)
		return nil, 0, nil
	}
}

// readWithin calls r.Read(buf) and fails the test at once if it has not
// returned within limit.
func readWithin(t *testing.T, r io.Reader, buf []byte, limit time.Duration) (int, time.Duration, error) {
	t.Helper()
	type result struct {
		n   int
		err error
	}
	start := time.Now()
	ch := make(chan result, 1)
	go func() {
		n, err := r.Read(buf)
		ch <- result{n, err}
	}()
	select {
	case res := <-ch:
		return res.n, time.Since(start), res.err
	case <-time.After(limit):
		t.Fatalf("Read still blocked after %v", limit)
		return 0, 0, nil
	}
}
