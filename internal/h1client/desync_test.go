//go:build unix

package h1client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A misbehaving upstream sends a whole extra response after its answer
// (a body after HEAD, a 204 or 304 with a body, more bytes than its
// Content-Length), in a later TCP segment. A pool that reuses the
// connection then reads that extra response as the answer to the next
// request, and stays one answer behind: every later caller gets another
// caller's answer. These tests make that timing exact instead of likely:
//
//   - the upstream writes the extra bytes only once the pool has read its
//     answer (so they cannot arrive with it and sit in the pool's buffer),
//   - and the client side of the connection hands the answer to the pool
//     only once the extra bytes are in the socket's receive queue (so they
//     are there before the connection can go back to the pool and on to
//     another request).
//
// Bytes that arrive after a connection was reused cannot be told from the
// next answer by any HTTP/1.1 client; bytes that arrived while it was idle
// can, and must be.

// realMark is in every answer the upstream means and in no extra bytes.
const realMark = "X-Real: "

// misbehaviour names how the upstream sends the extra response.
type misbehaviour string

const (
	afterLength misbehaviour = "more than Content-Length" // GET
	afterHEAD   misbehaviour = "body after HEAD"
	after204    misbehaviour = "body after 204"
	after304    misbehaviour = "body after 304"
)

var misbehaviours = []misbehaviour{afterLength, afterHEAD, after204, after304}

// method is the request method the misbehaviour needs.
func (m misbehaviour) method() string {
	if m == afterHEAD {
		return http.MethodHead
	}
	return http.MethodGet
}

// answer is the response the upstream means for request id.
func (m misbehaviour) answer(id string) string {
	switch m {
	case afterHEAD:
		return "HTTP/1.1 200 OK\r\nContent-Length: 64\r\n" + realMark + id + "\r\n\r\n"
	case after204:
		return "HTTP/1.1 204 No Content\r\n" + realMark + id + "\r\n\r\n"
	case after304:
		return "HTTP/1.1 304 Not Modified\r\n" + realMark + id + "\r\n\r\n"
	}
	body := "answer to " + id
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s%s\r\n\r\n%s", len(body), realMark, id, body)
}

// wantStatus is the status of the answer.
func (m misbehaviour) wantStatus() int {
	switch m {
	case after204:
		return http.StatusNoContent
	case after304:
		return http.StatusNotModified
	}
	return http.StatusOK
}

// extra is the response nobody asked for, sent after the answer to id.
func extra(id string) string {
	body := "stale answer to " + id
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Stale: %s\r\n\r\n%s", len(body), id, body)
}

// desyncUpstream is the misbehaving upstream and the client-side gates of
// the connections the pool dialed to it.
type desyncUpstream struct {
	srv   *rawServer
	gates sync.Map // client address -> *gate
}

// gate links one connection's two ends: its client side reports each
// answer it read, and the upstream answers with the extra bytes.
type gate struct{ answerRead chan struct{} }

func newDesyncUpstream(t *testing.T, m misbehaviour) *desyncUpstream {
	u := &desyncUpstream{}
	u.srv = newRawServer(t, func(c *srvConn) {
		for {
			req, ok := c.readRequest()
			if !ok {
				return
			}
			id := req.URL.Query().Get("id")
			c.write(m.answer(id))
			g, ok := u.gates.Load(c.RemoteAddr().String())
			if !ok {
				t.Errorf("no gate for %s", c.RemoteAddr())
				return
			}
			select {
			case <-g.(*gate).answerRead:
			case <-c.s.done:
				return
			case <-time.After(10 * time.Second):
				t.Errorf("the pool did not read the answer to %s", id)
				return
			}
			c.write(extra(id))
		}
	})
	return u
}

// pool returns a pool whose connections are gatedConns.
func (u *desyncUpstream) pool(t *testing.T) (*Pool, *atomic.Int32) {
	dials := new(atomic.Int32)
	p := New(u.srv.addr, Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		dials.Add(1)
		g := &gate{answerRead: make(chan struct{}, 4)}
		u.gates.Store(nc.LocalAddr().String(), g)
		return &gatedConn{TCPConn: nc.(*net.TCPConn), gate: g}, nil
	}})
	t.Cleanup(p.Close)
	return p, dials
}

// gatedConn is the pool's side of a connection. When a read brings an
// answer the upstream meant, it tells the upstream, then holds the bytes
// back until the extra response is in the socket's receive queue. The
// embedded *net.TCPConn keeps its SyscallConn, as a dialed one has.
type gatedConn struct {
	*net.TCPConn
	gate *gate
}

func (c *gatedConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if answers := bytes.Count(p[:n], []byte(realMark)); answers > 0 {
		for range answers {
			c.gate.answerRead <- struct{}{}
		}
		c.waitReadable()
	}
	return n, err
}

// waitReadable blocks until the socket has bytes to read (or EOF).
func (c *gatedConn) waitReadable() {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		panic(err)
	}
	var b [1]byte
	rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !errors.Is(err, syscall.EAGAIN)
	})
}

// exchangeOwn sends request id and reports whether the answer is its own.
func exchangeOwn(p *Pool, m misbehaviour, addr, id string) (bool, string) {
	req, err := http.NewRequest(m.method(), "http://"+addr+"/?id="+id, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := p.RoundTrip(req)
	if err != nil {
		return false, "error: " + err.Error()
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, "body error: " + err.Error()
	}
	got := fmt.Sprintf("%d %s=%q X-Stale=%q body %q", resp.StatusCode, strings.TrimSuffix(realMark, ": "),
		resp.Header.Get("X-Real"), resp.Header.Get("X-Stale"), body)
	want := ""
	if m == afterLength {
		want = "answer to " + id
	}
	return resp.StatusCode == m.wantStatus() && resp.Header.Get("X-Real") == id && string(body) == want, got
}

// TestNoResponseMixUp: with an upstream that sends an extra response in
// a later segment after each answer, every one of many sequential and
// concurrent requests gets its own answer: a connection holding unread
// bytes is never reused.
func TestNoResponseMixUp(t *testing.T) {
	const sequential, workers, perWorker = 250, 10, 25
	for _, m := range misbehaviours {
		t.Run(string(m), func(t *testing.T) {
			u := newDesyncUpstream(t, m)
			p, dials := u.pool(t)
			var wrong, total atomic.Int32
			var firstWrong sync.Once
			check := func(id string) {
				total.Add(1)
				if ok, got := exchangeOwn(p, m, u.srv.addr, id); !ok {
					wrong.Add(1)
					firstWrong.Do(func() { t.Logf("request %s got: %s", id, got) })
				}
			}
			for i := range sequential {
				check(fmt.Sprintf("s%d", i))
			}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range perWorker {
						check(fmt.Sprintf("c%d-%d", w, i))
					}
				})
			}
			wg.Wait()
			t.Logf("%s: %d of %d answers were another request's; %d connections dialed",
				m, wrong.Load(), total.Load(), dials.Load())
			if wrong.Load() != 0 {
				t.Errorf("%d of %d requests got another request's answer, want 0", wrong.Load(), total.Load())
			}
		})
	}
}

// TestUnreadBytesCloseAtOnce: extra bytes that came with the answer (read
// into the connection's buffer with it) close the connection when the
// exchange ends instead of leaving it in the pool.
func TestUnreadBytesCloseAtOnce(t *testing.T) {
	for _, m := range misbehaviours {
		t.Run(string(m), func(t *testing.T) {
			srv := newRawServer(t, func(c *srvConn) {
				for {
					req, ok := c.readRequest()
					if !ok {
						return
					}
					id := req.URL.Query().Get("id")
					c.write(m.answer(id) + extra(id)) // one write: one segment
				}
			})
			p, dials := newTestPool(t, srv.addr, Options{})
			for i := range 3 {
				id := fmt.Sprint(i)
				if ok, got := exchangeOwn(p, m, srv.addr, id); !ok {
					t.Fatalf("request %s got: %s", id, got)
				}
				if p.Idle() != 0 {
					t.Fatalf("Idle() = %d after an answer followed by unread bytes, want 0", p.Idle())
				}
			}
			waitFor(t, 2*time.Second, "the server to see the closes", func() bool { return srv.peerClosed.Load() == 3 })
			if dials.Load() != 3 {
				t.Errorf("dials = %d, want 3", dials.Load())
			}
		})
	}
}
