package h1client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"sync/atomic"
	"time"

	"github.com/umbragw/umbra/internal/reqctx"
)

// aLongTimeAgo is a deadline in the past: setting it wakes up a goroutine
// blocked on the connection at once (how net/http aborts I/O too).
var aLongTimeAgo = time.Unix(1, 0)

// conn is one keep-alive connection, used by one request at a time.
type conn struct {
	pool      *Pool
	nc        net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	reused    bool // taken from the pool for the current request
	// unchecked: taken from the pool and not yet probed; the probe runs
	// just before the request's first byte is written (see write).
	unchecked bool
	// flushing: the request's last bytes are being written (sendLast).
	flushing bool
	nread    int64 // bytes read during the current request
	// headerLimit, while the response head is read, is the nread past
	// which reading fails: a upstream sending endless headers must not
	// grow the gateway's memory (http.Transport caps them too). 0: no cap.
	headerLimit int64
	// readDeadline is the read deadline set, zero for none. It may outlive
	// its request (see roundTrip).
	readDeadline time.Time
	// sock probes the idle socket for unread bytes (see quiet).
	sock socketProbe

	// The current request's context is watched so that it ending aborts
	// the exchange: through hook when it is a *reqctx.Context (h1server's
	// requests; no allocation), else through stopAfter, the stop function
	// of a context.AfterFunc.
	hook      *reqctx.Hook
	watched   *reqctx.Context
	stopAfter func() bool
}

// armReadDeadline makes reads fail after d from now, or up to
// min(d/16, 300 ms) later. Like nginx's timers (NGX_TIMER_LAZY_DELAY), it
// leaves alone a deadline already in that window: a connection carrying
// request after request changes its deadline (a runtime timer update)
// once in a while, not twice per request.
func (c *conn) armReadDeadline(d time.Duration) {
	want := time.Now().Add(d)
	if !c.readDeadline.Before(want) {
		return
	}
	c.readDeadline = want.Add(min(d/16, 300*time.Millisecond))
	c.nc.SetReadDeadline(c.readDeadline)
}

func (c *conn) clearReadDeadline() {
	c.readDeadline = time.Time{}
	c.nc.SetReadDeadline(time.Time{})
}

// quiet reports whether an idle connection can carry another request:
// nothing unread in its buffer or its socket, and not closed by the
// server. A connection that cannot be probed is never quiet.
func (c *conn) quiet() bool {
	return c.br.Buffered() == 0 && c.probe()
}

// errStale: a connection taken from the pool turned out to hold unread
// bytes or to be closed by the server before anything was written on it;
// the request goes on another connection (see Pool.Exchange).
var errStale = errors.New("h1client: pooled connection not quiet")

// connWriter is what the connection's write buffer writes to.
type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) { return w.c.write(p) }

// write sends bytes of a request. The first bytes written on a connection
// taken from the pool are preceded by the probe, however short the idle
// time: bytes that arrived while it was idle are a response nobody asked
// for (a body after HEAD, 204 or 304, more than the Content-Length), and
// this request would read it as its answer, leaving the connection, and
// each later caller on it, one answer behind. A server's close is caught
// the same way. The request's last bytes go through sendLast, which does
// the probe, the write and the wait for the answer in one go.
func (c *conn) write(p []byte) (int, error) {
	if c.flushing {
		return c.sendLast(p)
	}
	return c.sendPlain(p)
}

// sendPlain writes p after the probe a pooled connection still needs.
func (c *conn) sendPlain(p []byte) (int, error) {
	if c.unchecked {
		c.unchecked = false
		if !c.probe() {
			return 0, errStale
		}
	}
	return c.nc.Write(p)
}

// abort wakes up whatever blocks on the connection, for good.
func (c *conn) abort() { c.nc.SetDeadline(aLongTimeAgo) }

// watch makes ctx ending abort the connection until unwatch.
func (c *conn) watch(ctx context.Context) {
	// Only the request context itself: one derived from it may end sooner.
	if rc, ok := ctx.(*reqctx.Context); ok {
		if c.hook == nil {
			c.hook = reqctx.NewHook(c.abort)
		}
		c.watched = rc
		if !rc.Watch(c.hook) {
			c.abort() // ended already
		}
		return
	}
	c.stopAfter = context.AfterFunc(ctx, c.abort)
}

// unwatch ends the watch; it reports false when the context ended during
// it, which left the connection aborted.
func (c *conn) unwatch() bool {
	if rc := c.watched; rc != nil {
		c.watched = nil
		return rc.Unwatch(c.hook)
	}
	stop := c.stopAfter
	c.stopAfter = nil
	return stop()
}

// MaxHeaderBytes caps a response head (status line, 1xx responses and
// headers), as http.DefaultMaxHeaderBytes caps a request head.
const MaxHeaderBytes = http.DefaultMaxHeaderBytes

// ErrHeaderTooLarge is returned for a response head over MaxHeaderBytes.
var ErrHeaderTooLarge = errors.New("h1client: response headers exceed 1 MiB")

// countingReader counts what the current request has read, so RoundTrip
// knows whether a failed exchange can be replayed.
type countingReader struct{ c *conn }

func (r countingReader) Read(p []byte) (int, error) {
	if r.c.headerLimit > 0 && r.c.nread >= r.c.headerLimit {
		return 0, ErrHeaderTooLarge
	}
	n, err := r.c.nc.Read(p)
	r.c.nread += int64(n)
	return n, err
}

// roundTrip writes req and reads the response headers. On success the
// response body owns the connection until it is read or closed.
func (c *conn) roundTrip(ctx context.Context, req *http.Request, opts *ExchangeOptions) (*http.Response, error) {
	c.nread = 0
	// A client that goes away aborts the upstream exchange wherever it is:
	// writing, waiting for headers or streaming the body.
	c.watch(ctx)
	// Only the read side gets the header timeout: the request (headers
	// only, no body) fits in the socket buffer, so writing it does not
	// block, and one deadline is half the timer work of two.
	if t := c.pool.opts.HeaderTimeout; t > 0 {
		c.armReadDeadline(t)
	}
	c.headerLimit = MaxHeaderBytes
	resp, err := c.exchange(ctx, req, opts)
	c.headerLimit = 0
	if err != nil {
		c.unwatch()
		if errors.Is(err, errStale) {
			return nil, err
		}
		return nil, c.explain(ctx, err)
	}
	// A body still to come from the network may take its time: the
	// header deadline goes. One that is in the buffer already is read
	// without the network, so the deadline can stay for the next request.
	if !c.readDeadline.IsZero() && !bodyBuffered(resp) {
		c.clearReadDeadline()
		// The client may have left between the exchange and clearing the
		// deadline; the abort has then already run, so abort again.
		if ctx.Err() != nil {
			c.abort()
		}
	}
	// After a 101 the server speaks another protocol on the connection
	// (upgrades are not eligible, so the response is bogus anyway): it
	// must not carry another request.
	reusable := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	if resp.Body == http.NoBody || resp.Body == nil {
		c.release(reusable)
		resp.Body = http.NoBody
		return resp, nil
	}
	b, ok := resp.Body.(*fixedBody)
	var wrapper *body
	if ok {
		wrapper = &b.wrapper
	} else {
		wrapper = new(body)
	}
	wrapper.rc, wrapper.c, wrapper.ctx, wrapper.reusable = resp.Body, c, ctx, reusable
	resp.Body = wrapper
	return resp, nil
}

// exchange writes req and reads the final response, passing 1xx
// informational responses (103 Early Hints) to opts.Got1xx, or else to the
// httptrace.ClientTrace of ctx as http.Transport does, which is how
// httputil.ReverseProxy forwards them.
func (c *conn) exchange(ctx context.Context, req *http.Request, opts *ExchangeOptions) (*http.Response, error) {
	if err := writeRequest(c.bw, req); err != nil {
		return nil, err
	}
	c.flushing = true
	err := c.bw.Flush()
	c.flushing = false
	if err != nil {
		return nil, err
	}
	var got1xx Got1xx
	var fields *Fields
	if opts != nil {
		got1xx, fields = opts.Got1xx, opts.Fields
	}
	for {
		resp, err := readResponse(c.br, req, fields)
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			return resp, nil
		}
		// Upgrades are not eligible, so a 101 is final and malformed for
		// this request; the proxy reports it as a bad response.
		if got1xx == nil {
			if trace := httptrace.ContextClientTrace(ctx); trace != nil {
				got1xx = trace.Got1xxResponse
			}
		}
		if got1xx != nil {
			if err := got1xx(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// explain turns an I/O error caused by the client leaving into the
// context's error, so the caller sees "canceled", not a timeout.
func (c *conn) explain(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if c.nread == 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
		return &NoResponseError{Err: err}
	}
	return err
}

// NoResponseError is an exchange that failed before any byte of a
// response arrived (the server closed or reset the connection, or the
// request could not be written), and not by a timeout: the caller may send
// an idempotent request elsewhere, as nginx's proxy_next_upstream error
// does, knowing nothing of an answer was lost.
type NoResponseError struct{ Err error }

func (e *NoResponseError) Error() string { return e.Err.Error() }
func (e *NoResponseError) Unwrap() error { return e.Err }

// release ends the request's hold on the connection: back to the pool
// when the exchange ended cleanly, closed otherwise.
func (c *conn) release(reusable bool) {
	// unwatch reports false when the context ended: the deadline is in
	// the past and the connection is unusable. Bytes already read past
	// the response's end (a body after HEAD, 204 or 304, more than the
	// Content-Length) are a response nobody asked for: the connection is
	// out of step and closed now rather than pooled.
	if c.unwatch() && reusable && c.br.Buffered() == 0 {
		c.reused = false
		c.pool.put(c)
		return
	}
	c.nc.Close()
}

// body is the response body. The first io.EOF hands the connection back
// to the pool; Close before that closes the connection, since the rest of
// the response would otherwise be read as the next one.
//
// Read and Close may run concurrently (a Close from another goroutine
// must unblock a Read), so the state is atomic and Read holds no lock
// while it waits on the network.
type body struct {
	rc       io.ReadCloser
	c        *conn
	ctx      context.Context
	reusable bool
	state    atomic.Int32 // bodyOpen, bodyEOF or bodyClosed
}

const (
	bodyOpen int32 = iota
	bodyEOF
	bodyClosed
)

func (b *body) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case bodyEOF:
		return 0, io.EOF
	case bodyClosed:
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		if b.state.CompareAndSwap(bodyOpen, bodyEOF) {
			b.c.release(b.reusable)
		}
	case err != nil:
		if b.state.CompareAndSwap(bodyOpen, bodyClosed) {
			b.c.unwatch()
			b.c.nc.Close()
		}
		err = b.c.explain(b.ctx, err)
	}
	return n, err
}

func (b *body) Close() error {
	if b.state.CompareAndSwap(bodyOpen, bodyClosed) {
		b.c.unwatch()
		b.c.nc.Close()
	}
	return nil
}
