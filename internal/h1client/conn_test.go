package h1client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/reqctx"
)

// framingServer answers the first request of each connection with first
// and any later one with a Content-Length response naming the connection
// and request, so a test can tell a reused connection from a new one.
// closeFirst makes the server close the connection after first.
func framingServer(t *testing.T, first string, closeFirst bool) *rawServer {
	return newRawServer(t, scripted(func(id, n int, _ *http.Request) (string, bool) {
		if n == 1 && id == 1 {
			return first, closeFirst
		}
		body := fmt.Sprintf("conn%d req%d", id, n)
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body), false
	}))
}

// TestResponseFraming checks how each kind of response is read and
// whether its connection is reused.
func TestResponseFraming(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		resp       string
		closeFirst bool // server closes after the response
		wantStatus int
		wantBody   string
		wantCL     int64
		wantClose  bool // resp.Close
		wantReuse  bool
		check      func(t *testing.T, resp *http.Response)
	}{
		{
			name:       "content-length",
			resp:       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello",
			wantStatus: 200, wantBody: "hello", wantCL: 5, wantReuse: true,
			check: func(t *testing.T, resp *http.Response) {
				if resp.Header.Get("X-A") != "1" {
					t.Errorf("X-A = %q", resp.Header.Get("X-A"))
				}
			},
		},
		{
			name:       "content-length zero",
			resp:       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			wantStatus: 200, wantBody: "", wantCL: 0, wantReuse: true,
		},
		{
			name:       "chunked",
			resp:       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
			wantStatus: 200, wantBody: "hello world", wantCL: -1, wantReuse: true,
		},
		{
			name:       "HTTP/1.0 keep-alive",
			resp:       "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: 200, wantBody: "ok", wantCL: 2, wantReuse: true,
		},
		{
			name:       "204",
			resp:       "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
			wantStatus: 204, wantBody: "", wantCL: 0, wantReuse: true,
		},
		{
			name:       "304 with Content-Length",
			resp:       "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 1234\r\n\r\n",
			wantStatus: 304, wantBody: "", wantCL: 0, wantReuse: true,
		},
		{
			name:       "HEAD",
			method:     "HEAD",
			resp:       "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
			wantStatus: 200, wantBody: "", wantCL: 1000, wantReuse: true,
		},
		{
			name:       "HEAD chunked",
			method:     "HEAD",
			resp:       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			wantStatus: 200, wantBody: "", wantCL: -1, wantReuse: true,
		},
		{
			name:       "Connection: close",
			resp:       "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: 200, wantBody: "ok", wantCL: 2, wantClose: true,
		},
		{
			name:       "Connection: close, server closes",
			resp:       "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
			closeFirst: true,
			wantStatus: 200, wantBody: "ok", wantCL: 2, wantClose: true,
		},
		{
			name:       "HTTP/1.0 without keep-alive",
			resp:       "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: 200, wantBody: "ok", wantCL: 2, wantClose: true,
		},
		{
			name:       "close-delimited",
			resp:       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
			closeFirst: true,
			wantStatus: 200, wantBody: "until the end", wantCL: -1, wantClose: true,
		},
		{
			name:       "HTTP/1.0 close-delimited",
			resp:       "HTTP/1.0 200 OK\r\n\r\nold style",
			closeFirst: true,
			wantStatus: 200, wantBody: "old style", wantCL: -1, wantClose: true,
		},
		{
			name:       "404 with body",
			resp:       "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
			wantStatus: 404, wantBody: "not found", wantCL: 9, wantReuse: true,
		},
		{
			name:       "101 without Upgrade request",
			resp:       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n",
			wantStatus: 101, wantBody: "", wantCL: 0,
			// After a 101 the server speaks another protocol: the
			// connection must not carry another request.
			wantReuse: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := framingServer(t, tt.resp, tt.closeFirst)
			p, dials := newTestPool(t, srv.addr, Options{})
			method := tt.method
			if method == "" {
				method = "GET"
			}
			resp, err := p.RoundTrip(newReq(t, context.Background(), method, srv.addr, "/"))
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if resp.ContentLength != tt.wantCL {
				t.Errorf("ContentLength %d, want %d", resp.ContentLength, tt.wantCL)
			}
			if resp.Close != tt.wantClose {
				t.Errorf("Close = %v, want %v", resp.Close, tt.wantClose)
			}
			if resp.Body == nil {
				t.Fatal("nil Body")
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading body: %v", err)
			}
			if string(b) != tt.wantBody {
				t.Errorf("body %q, want %q", b, tt.wantBody)
			}
			if err := resp.Body.Close(); err != nil {
				t.Errorf("Body.Close: %v", err)
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
			wantIdle := 0
			if tt.wantReuse {
				wantIdle = 1
			}
			if got := p.Idle(); got != wantIdle {
				t.Errorf("Idle() after the body = %d, want %d", got, wantIdle)
			}
			if !tt.wantReuse && !tt.closeFirst {
				// The client closes the connection it does not keep.
				waitFor(t, 2*time.Second, "server to see the client close", func() bool { return srv.peerClosed.Load() == 1 })
			}

			// The next request reuses the connection or dials.
			wantNext, wantDials := "conn1 req2", int32(1)
			if !tt.wantReuse {
				wantNext, wantDials = "conn2 req1", 2
			}
			mustGet(t, p, srv.addr, "/", wantNext)
			if got := dials.Load(); got != wantDials {
				t.Errorf("dials = %d, want %d", got, wantDials)
			}
		})
	}
}

// TestChunkedTrailers: resp.Trailer is filled once the body has been
// read to its end.
func TestChunkedTrailers(t *testing.T) {
	srv := framingServer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, X-Other\r\n\r\n"+
		"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\nX-Other: a\r\n\r\n", false)
	p, dials := newTestPool(t, srv.addr, Options{})
	resp, err := p.RoundTrip(newReq(t, context.Background(), "GET", srv.addr, "/"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Trailer["X-Sum"]; !ok {
		t.Errorf("announced trailer X-Sum missing before the body: %v", resp.Trailer)
	}
	if got := resp.Trailer.Get("X-Sum"); got != "" {
		t.Errorf("trailer X-Sum = %q before the body was read", got)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "hello world" {
		t.Fatalf("body %q, err %v", b, err)
	}
	if got := resp.Trailer.Get("X-Sum"); got != "42" {
		t.Errorf("trailer X-Sum = %q after EOF, want 42", got)
	}
	if got := resp.Trailer.Get("X-Other"); got != "a" {
		t.Errorf("trailer X-Other = %q after EOF, want a", got)
	}
	resp.Body.Close()
	if p.Idle() != 1 {
		t.Errorf("Idle() = %d, want 1", p.Idle())
	}
	mustGet(t, p, srv.addr, "/", "conn1 req2")
	if dials.Load() != 1 {
		t.Errorf("dials = %d, want 1", dials.Load())
	}
}

// TestBodyClosedEarly: closing a body before EOF closes the connection;
// the next request gets its own response on a new connection, not the
// rest of the previous body.
func TestBodyClosedEarly(t *testing.T) {
	for _, size := range []int{20, 200 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			long := strings.Repeat("x", size)
			srv := framingServer(t, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", size, long), false)
			p, dials := newTestPool(t, srv.addr, Options{})
			resp, err := p.RoundTrip(newReq(t, context.Background(), "GET", srv.addr, "/"))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "xxxxx" {
				t.Fatalf("read %q, %v", buf, err)
			}
			if err := resp.Body.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if n, err := resp.Body.Read(buf); n != 0 || !errors.Is(err, http.ErrBodyReadAfterClose) {
				t.Errorf("Read after Close = %d, %v; want 0, ErrBodyReadAfterClose", n, err)
			}
			if p.Idle() != 0 {
				t.Errorf("Idle() = %d after an early Close, want 0", p.Idle())
			}
			mustGet(t, p, srv.addr, "/", "conn2 req1")
			if dials.Load() != 2 {
				t.Errorf("dials = %d, want 2", dials.Load())
			}
			if p.Idle() != 1 {
				t.Errorf("Idle() = %d, want 1", p.Idle())
			}
		})
	}
}

// TestBodyReadAfterEOF: reads after EOF keep returning EOF, a Close after
// EOF does not close the pooled connection.
func TestBodyReadAfterEOF(t *testing.T) {
	srv := framingServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
	p, dials := newTestPool(t, srv.addr, Options{})
	resp, err := p.RoundTrip(newReq(t, context.Background(), "GET", srv.addr, "/"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "ok" {
		t.Fatalf("body %q err %v", b, err)
	}
	for i := 0; i < 2; i++ {
		if n, err := resp.Body.Read(make([]byte, 4)); n != 0 || err != io.EOF {
			t.Errorf("Read after EOF = %d, %v; want 0, EOF", n, err)
		}
	}
	resp.Body.Close()
	resp.Body.Close()
	if p.Idle() != 1 {
		t.Fatalf("Idle() = %d, want 1", p.Idle())
	}
	mustGet(t, p, srv.addr, "/", "conn1 req2")
	if dials.Load() != 1 {
		t.Errorf("dials = %d, want 1", dials.Load())
	}
}

// TestTruncatedBody: a body cut short by the server is an error, and the
// connection is not pooled.
func TestTruncatedBody(t *testing.T) {
	for name, resp := range map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
		"bad chunk":      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			srv := framingServer(t, resp, true)
			p, dials := newTestPool(t, srv.addr, Options{})
			_, _, err := do(p, newReq(t, context.Background(), "GET", srv.addr, "/"))
			if err == nil {
				t.Fatal("no error for a truncated body")
			}
			if p.Idle() != 0 {
				t.Errorf("Idle() = %d, want 0", p.Idle())
			}
			mustGet(t, p, srv.addr, "/", "conn2 req1")
			if dials.Load() != 2 {
				t.Errorf("dials = %d, want 2", dials.Load())
			}
		})
	}
}

// TestRequestClose: a request with Close set asks the server to close and
// its connection is not pooled.
func TestRequestClose(t *testing.T) {
	srv := framingServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
	p, dials := newTestPool(t, srv.addr, Options{})
	req := newReq(t, context.Background(), "GET", srv.addr, "/")
	req.Close = true
	if _, body, err := do(p, req); err != nil || body != "ok" {
		t.Fatalf("body %q err %v", body, err)
	}
	if reqs := srv.requestsSeen(); len(reqs) != 1 || !reqs[0].Close || reqs[0].Header.Get("Connection") != "close" {
		t.Errorf("server did not see Connection: close")
	}
	if p.Idle() != 0 {
		t.Errorf("Idle() = %d, want 0", p.Idle())
	}
	waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.peerClosed.Load() == 1 })
	mustGet(t, p, srv.addr, "/", "conn2 req1")
	if dials.Load() != 2 {
		t.Errorf("dials = %d, want 2", dials.Load())
	}
}

// stallServer answers the requests with respond(connID, n) until respond
// returns "", then stalls until the client closes.
func stallServer(t *testing.T, respond func(id, n int) string) *rawServer {
	return newRawServer(t, func(c *srvConn) {
		for n := 1; ; n++ {
			if _, ok := c.readRequest(); !ok {
				return
			}
			r := respond(c.id, n)
			if r == "" {
				c.waitClose()
				return
			}
			c.write(r)
		}
	})
}

// TestHeaderTimeout: a server that never answers fails the request with
// a timeout error once HeaderTimeout has passed.
func TestHeaderTimeout(t *testing.T) {
	srv := stallServer(t, func(int, int) string { return "" })
	p, dials := newTestPool(t, srv.addr, Options{HeaderTimeout: 100 * time.Millisecond})
	resp, elapsed, err := roundTripWithin(t, p, newReq(t, context.Background(), "GET", srv.addr, "/"), 2*time.Second)
	if err == nil {
		resp.Body.Close()
		t.Fatal("RoundTrip succeeded against a silent server")
	}
	if !isTimeout(err) {
		t.Errorf("error %v (%T) is not a net.Error timeout", err, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v is a context error; the context did not end", err)
	}
	if elapsed < 100*time.Millisecond || elapsed > time.Second {
		t.Errorf("returned after %v, want between 100ms and 1s", elapsed)
	}
	if dials.Load() != 1 {
		t.Errorf("dials = %d, want 1", dials.Load())
	}
	if p.Idle() != 0 {
		t.Errorf("Idle() = %d, want 0", p.Idle())
	}
	waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.peerClosed.Load() == 1 })
}

// TestHeaderTimeoutOnReusedConn: a header timeout on a pooled connection
// means the server received the request and did not answer in time; it is
// not a connection the server closed, so the request must not be sent
// again (doubling the wait and the load on a slow server).
func TestHeaderTimeoutOnReusedConn(t *testing.T) {
	srv := stallServer(t, func(id, n int) string {
		if id == 1 && n == 1 {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		}
		return ""
	})
	p, dials := newTestPool(t, srv.addr, Options{HeaderTimeout: 100 * time.Millisecond})
	mustGet(t, p, srv.addr, "/", "ok")
	_, elapsed, err := roundTripWithin(t, p, newReq(t, context.Background(), "GET", srv.addr, "/"), 2*time.Second)
	if !isTimeout(err) {
		t.Fatalf("error %v, want a timeout", err)
	}
	if elapsed > time.Second {
		t.Errorf("returned after %v", elapsed)
	}
	time.Sleep(50 * time.Millisecond)
	if got := srv.requests.Load(); got != 2 {
		t.Errorf("server read %d requests, want 2 (the timed-out one must not be resent)", got)
	}
	if got := dials.Load(); got != 1 {
		t.Errorf("dials = %d, want 1", got)
	}
}

// TestHeaderDeadlineLeftFromLastRequest: a response whose body was all in
// the buffer leaves its header deadline on the connection (one timer
// update fewer per request). A connection idle past that deadline must
// still pass the liveness probe and carry the next request, and a request
// right after one must still time out no sooner than HeaderTimeout.
func TestHeaderDeadlineLeftFromLastRequest(t *testing.T) {
	srv := stallServer(t, func(id, n int) string {
		if n <= 2 {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		}
		return ""
	})
	const timeout = 100 * time.Millisecond
	p, dials := newTestPool(t, srv.addr, Options{HeaderTimeout: timeout})
	mustGet(t, p, srv.addr, "/", "ok")
	time.Sleep(3 * timeout) // the deadline passed before the probe
	mustGet(t, p, srv.addr, "/", "ok")
	if got := dials.Load(); got != 1 {
		t.Fatalf("dials = %d, want 1: the idle connection was taken for dead", got)
	}
	_, elapsed, err := roundTripWithin(t, p, newReq(t, context.Background(), "GET", srv.addr, "/"), 2*time.Second)
	if !isTimeout(err) {
		t.Fatalf("error %v, want a timeout", err)
	}
	if elapsed < timeout {
		t.Errorf("timed out after %v, sooner than HeaderTimeout %v", elapsed, timeout)
	}
}

// TestHeaderTimeoutNotOnBody: HeaderTimeout bounds only the headers; a
// body slower than it is read completely, and the connection reused.
func TestHeaderTimeoutNotOnBody(t *testing.T) {
	srv := newRawServer(t, func(c *srvConn) {
		for n := 1; ; n++ {
			if _, ok := c.readRequest(); !ok {
				return
			}
			c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
			time.Sleep(300 * time.Millisecond)
			c.write("world")
		}
	})
	p, dials := newTestPool(t, srv.addr, Options{HeaderTimeout: 100 * time.Millisecond})
	for i := 0; i < 2; i++ {
		mustGet(t, p, srv.addr, "/", "helloworld")
	}
	if dials.Load() != 1 {
		t.Errorf("dials = %d, want 1", dials.Load())
	}
}

// TestCancelWaitingForHeaders: canceling the context while waiting for
// the response returns context.Canceled at once and closes the
// connection.
func TestCancelWaitingForHeaders(t *testing.T) {
	srv := stallServer(t, func(int, int) string { return "" })
	p, dials := newTestPool(t, srv.addr, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	resp, elapsed, err := roundTripWithin(t, p, newReq(t, ctx, "GET", srv.addr, "/"), 2*time.Second)
	if err == nil {
		resp.Body.Close()
		t.Fatal("RoundTrip succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("returned after %v", elapsed)
	}
	if p.Idle() != 0 || dials.Load() != 1 {
		t.Errorf("Idle() = %d, dials = %d; want 0, 1", p.Idle(), dials.Load())
	}
	waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.peerClosed.Load() == 1 })
}

// TestCancelWaitingForHeadersOnReusedConn: a canceled GET on a pooled
// connection is not retried.
func TestCancelWaitingForHeadersOnReusedConn(t *testing.T) {
	srv := stallServer(t, func(id, n int) string {
		if id == 1 && n == 1 {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		}
		return ""
	})
	p, dials := newTestPool(t, srv.addr, Options{HeaderTimeout: 5 * time.Second})
	mustGet(t, p, srv.addr, "/", "ok")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err := roundTripWithin(t, p, newReq(t, ctx, "GET", srv.addr, "/"), 2*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	if dials.Load() != 1 {
		t.Errorf("dials = %d, want 1", dials.Load())
	}
}

// TestCanceledBeforeRoundTrip: a context already done fails without
// dialing.
func TestCanceledBeforeRoundTrip(t *testing.T) {
	srv := framingServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
	p, dials := newTestPool(t, srv.addr, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.RoundTrip(newReq(t, ctx, "GET", srv.addr, "/"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if dials.Load() != 0 {
		t.Errorf("dials = %d, want 0", dials.Load())
	}
}

// TestCancelDuringBody: canceling the context unblocks a body Read
// waiting for data, with context.Canceled, and closes the connection.
func TestCancelDuringBody(t *testing.T) {
	srv := newRawServer(t, func(c *srvConn) {
		if _, ok := c.readRequest(); !ok {
			return
		}
		c.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
		c.waitClose()
	})
	p, _ := newTestPool(t, srv.addr, Options{HeaderTimeout: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := p.RoundTrip(newReq(t, ctx, "GET", srv.addr, "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// The header timeout must not fire on the stalled body either.
	time.Sleep(150 * time.Millisecond)
	time.AfterFunc(100*time.Millisecond, cancel)
	n, elapsed, err := readWithin(t, resp.Body, buf, 2*time.Second)
	if n != 0 || err == nil {
		t.Fatalf("Read = %d, %v; want an error", n, err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Read error %v, want context.Canceled", err)
	}
	if elapsed < 50*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("Read returned after %v, want it to block until the cancel (100ms) and return promptly", elapsed)
	}
	if _, err := resp.Body.Read(buf); err == nil {
		t.Error("second Read after the cancel returned no error")
	}
	if p.Idle() != 0 {
		t.Errorf("Idle() = %d, want 0", p.Idle())
	}
	waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.peerClosed.Load() == 1 })
}

// TestBodyCloseUnblocksRead: closing the body from another goroutine
// unblocks a Read waiting for data.
func TestBodyCloseUnblocksRead(t *testing.T) {
	srv := newRawServer(t, func(c *srvConn) {
		if _, ok := c.readRequest(); !ok {
			return
		}
		c.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
		c.waitClose()
	})
	p, _ := newTestPool(t, srv.addr, Options{})
	resp, err := p.RoundTrip(newReq(t, context.Background(), "GET", srv.addr, "/"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, func() { resp.Body.Close() })
	done := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(buf)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Read returned no error after Close")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Read still blocked 2s after Close")
	}
	if p.Idle() != 0 {
		t.Errorf("Idle() = %d, want 0", p.Idle())
	}
	waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.peerClosed.Load() == 1 })
}

// TestCancelAfterBody: canceling the context after the body was read
// does not affect the pooled connection.
func TestCancelAfterBody(t *testing.T) {
	srv := framingServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
	p, dials := newTestPool(t, srv.addr, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	if _, body, err := do(p, newReq(t, ctx, "GET", srv.addr, "/")); err != nil || body != "ok" {
		t.Fatalf("body %q err %v", body, err)
	}
	cancel()
	time.Sleep(20 * time.Millisecond)
	mustGet(t, p, srv.addr, "/", "conn1 req2")
	if dials.Load() != 1 {
		t.Errorf("dials = %d, want 1", dials.Load())
	}
}

const earlyHints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"

// Test1xxEarlyHints: informational responses go to the ClientTrace and
// the final response is returned.
func Test1xxEarlyHints(t *testing.T) {
	srv := framingServer(t, earlyHints+
		"HTTP/1.1 100 Continue\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal", false)
	p, dials := newTestPool(t, srv.addr, Options{})
	type info struct {
		code int
		hdr  textproto.MIMEHeader
	}
	var got []info
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
		got = append(got, info{code, hdr})
		return nil
	}}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	resp, body, err := do(p, newReq(t, ctx, "GET", srv.addr, "/"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body != "final" {
		t.Errorf("status %d body %q, want 200 final", resp.StatusCode, body)
	}
	if len(got) != 2 {
		t.Fatalf("Got1xxResponse called %d times, want 2", len(got))
	}
	if got[0].code != 103 || got[0].hdr.Get("Link") != "</style.css>; rel=preload; as=style" {
		t.Errorf("first 1xx: %d %v", got[0].code, got[0].hdr)
	}
	if got[1].code != 100 {
		t.Errorf("second 1xx: %d", got[1].code)
	}
	if p.Idle() != 1 {
		t.Errorf("Idle() = %d, want 1", p.Idle())
	}
	mustGet(t, p, srv.addr, "/", "conn1 req2")
	if dials.Load() != 1 {
		t.Errorf("dials = %d, want 1", dials.Load())
	}
}

// TestExchangeContextAndGot1xx: Exchange takes the context and the 1xx
// callback apart from the request: the callback gets the 103 (the trace
// of the request's own context does not), and the context given, not the
// request's, aborts the exchange.
func TestExchangeContextAndGot1xx(t *testing.T) {
	srv := framingServer(t, earlyHints+"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal", false)
	p, _ := newTestPool(t, srv.addr, Options{})
	reqTrace := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { t.Error("the request's trace was used"); return nil },
	})
	var codes []int
	resp, err := p.Exchange(context.Background(), newReq(t, reqTrace, "GET", srv.addr, "/"), &ExchangeOptions{Got1xx: func(code int, _ textproto.MIMEHeader) error {
		codes = append(codes, code)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "final" || len(codes) != 1 || codes[0] != 103 {
		t.Fatalf("body %q, 1xx codes %v; want final and [103]", b, codes)
	}

	stall := stallServer(t, func(int, int) string { return "" })
	stallPool, _ := newTestPool(t, stall.addr, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = stallPool.Exchange(ctx, newReq(t, context.Background(), "GET", stall.addr, "/"), nil)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("error %v after %v, want context.Canceled soon after 50ms", err, time.Since(start))
	}
}

// TestRequestContextAndDerived: a request context (reqctx, h1server's)
// aborts the exchange through its hook when it ends; a context derived
// from one with a sooner deadline must abort at that deadline, not wait
// for the request context.
func TestRequestContextAndDerived(t *testing.T) {
	stall := stallServer(t, func(int, int) string { return "" })
	p, _ := newTestPool(t, stall.addr, Options{})

	rc := reqctx.New(context.Background())
	time.AfterFunc(50*time.Millisecond, rc.Cancel)
	_, elapsed, err := roundTripWithin(t, p, newReq(t, rc, "GET", stall.addr, "/"), 2*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("request context cancelled: error %v after %v, want context.Canceled", err, elapsed)
	}

	live := reqctx.New(context.Background())
	defer live.Cancel()
	ctx, cancel := context.WithTimeout(live, 50*time.Millisecond)
	defer cancel()
	_, elapsed, err = roundTripWithin(t, p, newReq(t, ctx, "GET", stall.addr, "/"), 2*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("derived context timed out: error %v after %v, want context.DeadlineExceeded", err, elapsed)
	}
}

// Test1xxWithoutTrace: without a trace, 1xx responses are skipped.
func Test1xxWithoutTrace(t *testing.T) {
	srv := framingServer(t, earlyHints+"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal", false)
	p, _ := newTestPool(t, srv.addr, Options{})
	mustGet(t, p, srv.addr, "/", "final")
	mustGet(t, p, srv.addr, "/", "conn1 req2")
}

// Test1xxTraceError: an error from Got1xxResponse fails the request,
// without a retry, and the connection is closed.
func Test1xxTraceError(t *testing.T) {
	srv := framingServer(t, earlyHints+"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal", false)
	p, dials := newTestPool(t, srv.addr, Options{})
	errTrace := errors.New("no hints, thanks")
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { return errTrace },
	})
	_, err := p.RoundTrip(newReq(t, ctx, "GET", srv.addr, "/"))
	if !errors.Is(err, errTrace) {
		t.Fatalf("error %v, want the trace's error", err)
	}
	if p.Idle() != 0 || dials.Load() != 1 {
		t.Errorf("Idle() = %d, dials = %d; want 0, 1", p.Idle(), dials.Load())
	}
	waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.peerClosed.Load() == 1 })
}

// TestMalformedResponse: garbage instead of a response is an error, and
// the connection is closed, not pooled.
func TestMalformedResponse(t *testing.T) {
	for name, resp := range map[string]string{
		"garbage status line": "HTRP/9.9 abc def\r\n\r\n",
		"bad status code":     "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
		"bad header":          "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
		"bad content-length":  "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
		"two lengths":         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"binary":              "\x00\x01\x02\xff\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			srv := framingServer(t, resp, false)
			p, dials := newTestPool(t, srv.addr, Options{})
			r, err := p.RoundTrip(newReq(t, context.Background(), "GET", srv.addr, "/"))
			if err == nil {
				r.Body.Close()
				t.Fatalf("RoundTrip accepted %q: status %d", resp, r.StatusCode)
			}
			if p.Idle() != 0 {
				t.Errorf("Idle() = %d, want 0", p.Idle())
			}
			waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.peerClosed.Load() == 1 })
			mustGet(t, p, srv.addr, "/", "conn2 req1")
			if dials.Load() != 2 {
				t.Errorf("dials = %d, want 2", dials.Load())
			}
		})
	}
}

// TestMalformedResponseOnReusedConn: bytes were read, so the failed
// request is not resent even though it is a GET on a reused connection.
func TestMalformedResponseOnReusedConn(t *testing.T) {
	srv := newRawServer(t, scripted(func(id, n int, _ *http.Request) (string, bool) {
		if id == 1 && n == 2 {
			return "HTRP/9.9 garbage\r\n\r\n", false
		}
		body := fmt.Sprintf("conn%d req%d", id, n)
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body), false
	}))
	p, dials := newTestPool(t, srv.addr, Options{})
	mustGet(t, p, srv.addr, "/", "conn1 req1")
	if _, err := p.RoundTrip(newReq(t, context.Background(), "GET", srv.addr, "/")); err == nil {
		t.Fatal("no error for a malformed response")
	}
	if dials.Load() != 1 {
		t.Errorf("dials = %d, want 1 (no resend after a partial response)", dials.Load())
	}
	if srv.requests.Load() != 2 {
		t.Errorf("server read %d requests, want 2", srv.requests.Load())
	}
	if p.Idle() != 0 {
		t.Errorf("Idle() = %d, want 0", p.Idle())
	}
	mustGet(t, p, srv.addr, "/", "conn2 req1")
}

// TestUnsolicitedData: bytes the server sends after a response mean the
// connection is out of step; it is not used again.
func TestUnsolicitedData(t *testing.T) {
	const bogus = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nWRONG"
	t.Run("with the response", func(t *testing.T) {
		// Sent in the same write: buffered by the time the body ends.
		srv := framingServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"+bogus, false)
		p, dials := newTestPool(t, srv.addr, Options{})
		mustGet(t, p, srv.addr, "/", "ok")
		mustGet(t, p, srv.addr, "/", "conn2 req1")
		if dials.Load() != 2 {
			t.Errorf("dials = %d, want 2", dials.Load())
		}
		waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.peerClosed.Load() == 1 })
	})
	t.Run("while idle", func(t *testing.T) {
		// Sent later, well under a second after the answer: the probe
		// on reuse sees it.
		srv := newRawServer(t, func(c *srvConn) {
			for n := 1; ; n++ {
				if _, ok := c.readRequest(); !ok {
					return
				}
				body := fmt.Sprintf("conn%d req%d", c.id, n)
				c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
				if c.id == 1 {
					time.Sleep(100 * time.Millisecond)
					c.write(bogus)
				}
			}
		})
		p, dials := newTestPool(t, srv.addr, Options{})
		mustGet(t, p, srv.addr, "/", "conn1 req1")
		time.Sleep(300 * time.Millisecond)
		mustGet(t, p, srv.addr, "/", "conn2 req1")
		if dials.Load() != 2 {
			t.Errorf("dials = %d, want 2", dials.Load())
		}
		waitFor(t, 2*time.Second, "server to see the close", func() bool { return srv.peerClosed.Load() == 1 })
	})
}

// TestExtraDataBeforeEOF: a Content-Length body followed at once by more
// bytes: the body ends at its length, and the extra bytes never become
// the next response.
func TestExtraDataBeforeEOF(t *testing.T) {
	srv := framingServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", false)
	p, _ := newTestPool(t, srv.addr, Options{})
	mustGet(t, p, srv.addr, "/", "ok")
	for i := 0; i < 3; i++ {
		resp, body, err := do(p, newReq(t, context.Background(), "GET", srv.addr, "/"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || strings.Contains(body, "EXTRA") || !strings.HasPrefix(body, "conn") {
			t.Fatalf("request %d: status %d body %q", i, resp.StatusCode, body)
		}
	}
}

// TestHeaderTooLarge: an upstream that sends headers without end gets
// ErrHeaderTooLarge once MaxHeaderBytes have been read, not unbounded
// memory, and its connection is closed; normal large headers still pass.
func TestHeaderTooLarge(t *testing.T) {
	line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
	srv := newRawServer(t, func(c *srvConn) {
		req, ok := c.readRequest()
		if !ok {
			return
		}
		if req.URL.Path == "/big-but-fine" {
			c.write("HTTP/1.1 200 OK\r\n" + strings.Repeat(line, 100) + "Content-Length: 2\r\n\r\nok")
			c.waitClose()
			return
		}
		c.write("HTTP/1.1 200 OK\r\n")
		for i := 0; i < 4*MaxHeaderBytes/len(line); i++ {
			if _, err := c.Conn.Write([]byte(line)); err != nil {
				return // the client gave up, as it should
			}
		}
		c.waitClose()
	})
	p, _ := newTestPool(t, srv.addr, Options{})
	resp, _, err := roundTripWithin(t, p, newReq(t, context.Background(), "GET", srv.addr, "/endless"), 5*time.Second)
	if err == nil {
		resp.Body.Close()
		t.Fatal("RoundTrip accepted 4 MiB of headers")
	}
	if !errors.Is(err, ErrHeaderTooLarge) {
		t.Fatalf("err = %v, want ErrHeaderTooLarge", err)
	}
	if p.Idle() != 0 {
		t.Errorf("Idle() = %d after an oversized head, want 0", p.Idle())
	}
	resp, _, err = roundTripWithin(t, p, newReq(t, context.Background(), "GET", srv.addr, "/big-but-fine"), 5*time.Second)
	if err != nil {
		t.Fatalf("100 KB of headers refused: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || len(resp.Header.Get("X-Filler")) != 1000 {
		t.Fatalf("got %d %q, X-Filler of %d bytes", resp.StatusCode, body, len(resp.Header.Get("X-Filler")))
	}
}
