// Package h1client is a synchronous HTTP/1.1 client for one plain-text
// upstream address: a pool of keep-alive connections on which the calling
// goroutine writes the request and reads the response itself.
//
// Why not http.Transport: it gives every connection a read goroutine and a
// write goroutine and hands each request and response between them and
// the caller over channels. On the proxy's hot path (one core, 64
// concurrent clients) that hand-off, its select statements and the extra
// scheduler work cost more CPU than writing and parsing the HTTP itself;
// profiling put http.Transport at ~12% of umbra's CPU. Here the caller's
// goroutine does the exchange and parks only in the network poller.
//
// The wire format is still net/http's: requests are written with
// (*http.Request).Write and responses parsed with http.ReadResponse, the
// functions http.Transport uses, so framing (Content-Length, chunked,
// trailers, HEAD, 204/304) and header validation are the standard
// library's. Callers keep http.Transport for what this client does not do:
// TLS, HTTP/2, protocol upgrades, request bodies, Expect: 100-continue and
// connection limits (see Eligible).
package h1client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"sync"
	"time"
)

// DialFunc opens a connection to addr.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options configure a Pool. Zero values take the defaults named below.
type Options struct {
	// Dial opens connections; a net.Dialer's DialContext by default. The
	// caller may wrap its errors (the backend marks dial failures so it
	// can tell "nothing was sent" from later errors).
	Dial DialFunc
	// HeaderTimeout bounds writing the request and reading the response
	// headers; 0 means no limit.
	HeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections unused this long
	// (DefaultIdleTimeout when 0).
	IdleTimeout time.Duration
	// MaxIdle caps the keep-alive connections kept (DefaultMaxIdle when 0).
	MaxIdle int
}

// Defaults for zero Options fields.
const (
	DefaultIdleTimeout = 90 * time.Second
	DefaultMaxIdle     = 512
)

// bufferSize is the size of each connection's read and write buffers, as
// in http.Transport.
const bufferSize = 4 << 10

// Pool is a set of keep-alive connections to one address. It is safe for
// concurrent use; each request holds a connection exclusively.
type Pool struct {
	addr string
	opts Options

	mu     sync.Mutex
	idle   []*conn // most recently used last: reuse takes the warmest
	closed bool
	sweep  *time.Timer // armed while idle is non-empty
}

// New returns a pool for addr (host:port).
func New(addr string, opts Options) *Pool {
	if opts.Dial == nil {
		opts.Dial = (&net.Dialer{}).DialContext
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = DefaultMaxIdle
	}
	return &Pool{addr: addr, opts: opts}
}

// Eligible reports whether req can go through a Pool: a plain-text
// request without a body, protocol upgrade, 100-continue handshake or
// trailers. Everything else needs http.Transport.
func Eligible(req *http.Request) bool {
	return (req.Body == nil || req.Body == http.NoBody) &&
		req.URL.Scheme == "http" &&
		len(req.Trailer) == 0 &&
		len(req.TransferEncoding) == 0 &&
		req.Header["Upgrade"] == nil &&
		req.Header["Expect"] == nil
}

// Idle is the number of pooled keep-alive connections.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Close closes the idle connections and makes the pool close every
// connection handed back to it later; requests in flight finish.
func (p *Pool) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	if p.sweep != nil {
		p.sweep.Stop()
	}
	p.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// get returns a pooled connection that still looks usable, or dials.
func (p *Pool) get(ctx context.Context) (*conn, error) {
	now := time.Now()
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		// Whatever the idle time, the connection is probed before its
		// request is written (see conn.write); one that cannot be probed
		// is never reused.
		if now.Sub(c.idleSince) < p.opts.IdleTimeout && c.br.Buffered() == 0 && c.probeable() {
			c.reused, c.unchecked = true, true
			return c, nil
		}
		c.nc.Close()
	}
	nc, err := p.opts.Dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return newConn(p, nc), nil
}

// put returns a connection whose last exchange ended cleanly.
func (p *Pool) put(c *conn) {
	c.idleSince = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.opts.MaxIdle {
		p.mu.Unlock()
		c.nc.Close()
		return
	}
	p.idle = append(p.idle, c)
	if len(p.idle) == 1 {
		p.armSweep()
	}
	p.mu.Unlock()
}

// armSweep schedules the idle sweep; p.mu is held.
func (p *Pool) armSweep() {
	if p.sweep == nil {
		p.sweep = time.AfterFunc(p.opts.IdleTimeout, p.sweepIdle)
		return
	}
	p.sweep.Reset(p.opts.IdleTimeout)
}

// sweepIdle closes connections idle longer than IdleTimeout, so a burst
// of traffic does not leave hundreds of sockets open (and, once the
// server closes its side, in CLOSE_WAIT) until the next burst.
func (p *Pool) sweepIdle() {
	cutoff := time.Now().Add(-p.opts.IdleTimeout)
	p.mu.Lock()
	// idle is ordered by idleSince: the stale ones are at the front.
	n := 0
	for n < len(p.idle) && !p.idle[n].idleSince.After(cutoff) {
		n++
	}
	stale := make([]*conn, n)
	copy(stale, p.idle[:n])
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	if len(p.idle) > 0 && !p.closed {
		// The oldest remaining connection expires first.
		p.sweep.Reset(p.opts.IdleTimeout - time.Since(p.idle[0].idleSince))
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.nc.Close()
	}
}

// RoundTrip sends req and returns the response with its body still to be
// read; reading the body to its end returns the connection to the pool,
// closing it early closes the connection. req must satisfy Eligible. When
// req.Context() ends, the exchange (including the body) is aborted.
//
// Like http.Transport, a request that failed on a reused connection
// before any byte of a response arrived is sent again once on a new
// connection when it is replayable (GET, HEAD, OPTIONS, TRACE or an
// Idempotency-Key), because the server may have closed the connection
// just as it was taken from the pool.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	return p.Exchange(req.Context(), req, nil)
}

// Got1xx receives an informational (1xx) response before the final one.
type Got1xx func(code int, header textproto.MIMEHeader) error

// ExchangeOptions are the parts of one exchange beside its request; nil
// is none.
type ExchangeOptions struct {
	// Got1xx hears each informational (1xx) response; nil means the
	// httptrace.ClientTrace of the context, if any.
	Got1xx Got1xx
	// Fields, when set, asks for the fields of a simple response as one
	// block instead of a header map (see Fields).
	Fields *Fields
}

// Fields is, for a proxy that forwards a response head unchanged, the
// field block of the response as it came: building a header map and
// copying it into the client's response was a tenth of the gateway's CPU
// on small responses. Only a simple response (see parseSimple) whose
// names are all in canonical form, with nothing the connection or the
// framing depends on but its one Content-Length, and whose every field
// Accept takes, is read this way; any other is read into a header map as
// usual and Block stays empty.
type Fields struct {
	// Accept sees each field's name and trimmed value; nil takes all.
	Accept func(k, v string) bool
	// Block is set when the response was read this way, and its Header is
	// nil then: lines of "Name: value\r\n", each checked as
	// http.ReadResponse checks a field.
	Block string
	// HasDate tells that Block has a Date field.
	HasDate bool
}

// Exchange is RoundTrip with the context and the options given directly
// rather than through req (its context and httptrace): a proxy building
// the outgoing request from pooled parts is spared the request copy
// WithContext makes and a context value per request.
func (p *Pool) Exchange(ctx context.Context, req *http.Request, opts *ExchangeOptions) (*http.Response, error) {
	for attempt := 0; ; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(ctx, req, opts)
		if err == nil {
			return resp, nil
		}
		c.nc.Close()
		if errors.Is(err, errStale) {
			continue // nothing was sent: the next idle connection, or a new one
		}
		// A deadline error (HeaderTimeout) means the server got the
		// request and did not answer in time, not that it had closed
		// the connection: resending would double both the wait and the
		// load on a slow server, so it is not retried (nor is it by
		// http.Transport).
		// Only once: another request may have pooled a connection since
		// dropIdle, and a second stale one must not start a loop.
		if attempt > 0 || !c.reused || c.nread > 0 || !replayable(req) || ctx.Err() != nil ||
			errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, err
		}
		// A fresh connection is dialed next: idle ones may be as stale.
		p.dropIdle()
		attempt++
	}
}

// dropIdle closes every idle connection after one turned out dead: the
// server has probably restarted or closed them all at once.
func (p *Pool) dropIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// replayable mirrors net/http's rule for resending a request that may or
// may not have reached the server.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return req.Header["Idempotency-Key"] != nil || req.Header["X-Idempotency-Key"] != nil
}

// newConn wraps a fresh connection.
func newConn(p *Pool, nc net.Conn) *conn {
	c := &conn{pool: p, nc: nc}
	c.br = bufio.NewReaderSize(countingReader{c}, bufferSize)
	c.bw = bufio.NewWriterSize(connWriter{c}, bufferSize)
	c.initProbe()
	return c
}
