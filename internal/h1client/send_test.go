//go:build unix

package h1client

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bigReq is a bodyless request whose head is far larger than the write
// buffer, so bufio writes most of it before the last flush.
func bigReq(t *testing.T, method, addr string) *http.Request {
	req := newReq(t, context.Background(), method, addr, "/")
	req.Header.Set("X-Big", strings.Repeat("b", 64<<10))
	return req
}

// TestStaleConnProbeLargeRequest: a request whose head does not fit the
// write buffer starts going out before its last flush; the probe still
// runs before its first byte, so a pooled connection the server closed
// is dropped with nothing sent, even for a POST.
func TestStaleConnProbeLargeRequest(t *testing.T) {
	srv := closingServer(t)
	p, dials := newTestPool(t, srv.addr, Options{})
	mustGet(t, p, srv.addr, "/", "conn1 GET")
	waitFor(t, 2*time.Second, "server to finish conn 1", func() bool { return srv.requests.Load() == 1 })
	time.Sleep(20 * time.Millisecond) // the server's FIN arrives
	resp, body, err := do(p, bigReq(t, "POST", srv.addr))
	if err != nil {
		t.Fatalf("POST after the probe: %v", err)
	}
	if resp.StatusCode != 200 || body != "conn2 POST" {
		t.Errorf("status %d body %q, want 200 %q", resp.StatusCode, body, "conn2 POST")
	}
	if got := dials.Load(); got != 2 {
		t.Errorf("dials = %d, want 2", got)
	}
}

// TestSendLastFullSocketBuffer: when the socket's send buffer is full at
// the request's last flush (small socket buffers on both sides, a server
// that reads late), sendLast's write says EAGAIN and the rest goes out
// the usual way; the exchange and the reuse of the connection are
// unaffected.
func TestSendLastFullSocketBuffer(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// Inherited by accepted sockets, and set before the handshake
			// so that the advertised window is small too.
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	const big = 1 << 20
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		for n := 1; ; n++ {
			time.Sleep(50 * time.Millisecond) // the client fills both buffers
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body := fmt.Sprintf("req%d %d", n, len(req.Header.Get("X-Big")))
			fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	}()
	addr := ln.Addr().String()
	dials := 0
	var d net.Dialer
	p := New(addr, Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials++
		nc, err := d.DialContext(ctx, network, addr)
		if err == nil {
			nc.(*net.TCPConn).SetWriteBuffer(4096)
		}
		return nc, err
	}})
	t.Cleanup(p.Close)
	for n := 1; n <= 3; n++ {
		req := newReq(t, context.Background(), "GET", addr, "/")
		req.Header.Set("X-Big", strings.Repeat("b", big))
		resp, body, err := do(p, req)
		if err != nil {
			t.Fatalf("request %d: %v", n, err)
		}
		if want := fmt.Sprintf("req%d %d", n, big); resp.StatusCode != 200 || body != want {
			t.Errorf("request %d: status %d body %q, want 200 %q", n, resp.StatusCode, body, want)
		}
	}
	if dials != 1 {
		t.Errorf("dials = %d, want 1", dials)
	}
}

// TestCancelWhileAwaitingAnswer: a request canceled while its connection
// waits for the answer (inside sendLast's wait) returns at once with the
// context's error, and the connection is not reused.
func TestCancelWhileAwaitingAnswer(t *testing.T) {
	srv := stallServer(t, func(id, n int) string {
		if n == 1 {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		}
		return "" // never answers
	})
	p, dials := newTestPool(t, srv.addr, Options{})
	mustGet(t, p, srv.addr, "/", "ok")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, elapsed, err := roundTripWithin(t, p, newReq(t, ctx, "GET", srv.addr, "/"), 2*time.Second)
	if err != context.Canceled {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if elapsed > time.Second {
		t.Errorf("returned after %v", elapsed)
	}
	if p.Idle() != 0 {
		t.Errorf("Idle() = %d, want 0: the aborted connection was pooled", p.Idle())
	}
	if got := dials.Load(); got != 1 {
		t.Errorf("dials = %d, want 1", got)
	}
}
