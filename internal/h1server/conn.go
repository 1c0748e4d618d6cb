package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/umbragw/umbra/internal/headers"
	"github.com/umbragw/umbra/internal/reqctx"
)

// conn is one client connection, served by one goroutine.
type conn struct {
	srv    *Server
	rwc    net.Conn
	remote string
	cr     connReader
	br     *bufio.Reader
	bw     *bufio.Writer
	state  atomic.Int32
	// accepted: when, for Shutdown's grace for new connections.
	accepted time.Time
	res      response
	// rctx is the context of the request being served, nil between
	// requests; the hang-up watch and Server.cancelRequests cancel it.
	rctx atomic.Pointer[reqctx.Context]
	// readDeadline is the read deadline last set, if readDeadlineKnown.
	readDeadline      time.Time
	readDeadlineKnown bool
	hijacked          bool
	// stopBaseHook unhooks a hijacked request's context from BaseContext.
	stopBaseHook func() bool
	// handedOff: the connection idled past idleHold and its wait goes on
	// in a new goroutine until waitUntil (zero: no limit).
	handedOff bool
	waitUntil time.Time
	// park: the connection's place in the server's parker while it waits
	// there with no goroutine (see parker).
	park parkState
	// simple is the request parseSimple fills; serveRequest hands the
	// handler a copy with the request's context. It comes and goes with
	// the buffers: an idle connection does not keep its 300 bytes.
	simple *http.Request

	watcher // the client-hang-up watch, see watch.go
}

// maxDrain is how much of a request body the handler left unread is read
// and dropped to keep the connection; with more left, it is closed.
const maxDrain = 256 << 10

var (
	readers  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writers  = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
	requests = sync.Pool{New: func() any { return new(http.Request) }}
)

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{srv: s, rwc: nc, remote: nc.RemoteAddr().String(), accepted: time.Now()}
	c.state.Store(stateNew)
	c.cr.nc = nc
	c.cr.avail.init(nc)
	// No buffers yet: a connection holds them only while it reads or
	// answers a request, and for idleHold after (see awaitRequest).
	c.cond.L = &c.mu
	return c
}

// idleHold is how long a keep-alive connection waits for its next request
// with its read and write buffers (8 KiB); after that it gives them back
// to the pools and waits on a one-byte read, as nginx frees an idle
// connection's buffers: ten thousand idle clients then cost their
// connection state and goroutine, not 80 MB of buffers. A busy client's
// next request comes well within it and is read as before.
const idleHold = time.Second

// takeBuffers gives the connection its read and write buffers.
func (c *conn) takeBuffers() {
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(&c.cr)
	c.bw = writers.Get().(*bufio.Writer)
	c.bw.Reset(c.rwc)
	c.simple = requests.Get().(*http.Request)
	c.srv.buffered.Add(1)
}

// forgetRequest drops what the last request left reachable from the
// connection (the request and its copy, header maps, the request id, the
// upstream's field block) and the watch's timer: an idle connection keeps
// only its own state. The next request makes them anew.
func (c *conn) forgetRequest() {
	c.res = response{}
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
}

// releaseBuffers gives the buffers back to the pools; both are empty.
func (c *conn) releaseBuffers() {
	if c.br == nil {
		return
	}
	c.br.Reset(nil)
	readers.Put(c.br)
	c.bw.Reset(nil)
	writers.Put(c.bw)
	*c.simple = http.Request{}
	requests.Put(c.simple)
	c.br, c.bw, c.simple = nil, nil, nil
	c.srv.buffered.Add(-1)
}

// serve reads and answers requests until the connection ends, or until
// it idles past idleHold: then it is parked (see parker), or where it
// cannot be a new goroutine waits for the next request, and this one
// ends. Its stack grew with the handler's calls (to 8 KiB and more
// through the proxy) and would stay that size, and resident, while the
// connection idles.
func (c *conn) serve() {
	handOff := false
	defer func() {
		p := recover()
		if handOff && p == nil {
			if !c.srv.parker.park(c) {
				go c.resume()
			}
			return
		}
		c.end(p)
	}()
	handOff = c.loop()
}

// resume is the goroutine of a new connection, or of one handed off or
// unparked: it waits for the first byte of a request, then serves. The
// wait is the first thing it does, with no frame of serve's below it, so
// the stack of a connection waiting in a goroutine is small.
func (c *conn) resume() {
	if err := c.awaitFirstByte(); err != nil {
		c.end(nil) // gone, silent or shut down: nothing to answer
		return
	}
	c.serve()
}

// loop serves requests; it reports true when the connection went idle
// and is handed to a new goroutine, false when it ended.
func (c *conn) loop() bool {
	for {
		req, err := c.readRequest()
		if err == errHandOff {
			return true
		}
		if err != nil {
			c.reject(err)
			return false
		}
		if !c.serveRequest(req) {
			return false
		}
	}
}

// end runs when serve returns or a handler panics (p, recovered): the
// connection is closed (unless hijacked) and forgotten.
func (c *conn) end(p any) {
	if p != nil && p != http.ErrAbortHandler {
		c.srv.log().Error("http handler panicked", "remote", c.remote, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	}
	c.stopWatch()
	if rc := c.rctx.Swap(nil); rc != nil {
		rc.Cancel()
	}
	if c.stopBaseHook != nil {
		c.stopBaseHook()
	}
	if !c.hijacked {
		c.state.Store(stateClosed)
		c.rwc.Close()
		c.releaseBuffers()
	}
	c.srv.remove(c)
}

// errClosed: Shutdown closed the connection while it waited.
var errClosed = errors.New("h1server: connection closed by shutdown")

// errHandOff: the connection idled past idleHold and gave its buffers
// back; a new goroutine goes on waiting (see serve).
var errHandOff = errors.New("h1server: idle connection handed to a new goroutine")

// readRequest waits for the next request and reads its head.
func (c *conn) readRequest() (*http.Request, error) {
	s := c.srv
	if c.br.Buffered() == 0 {
		if !c.state.CompareAndSwap(stateActive, stateIdle) && c.state.Load() == stateClosed {
			return nil, errClosed
		}
		if err := c.awaitRequest(); err != nil {
			return nil, err
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) && !c.state.CompareAndSwap(stateNew, stateActive) {
			return nil, errClosed
		}
	}
	// A head that is all in the buffer cannot stall; the common kind is
	// read by parseSimple, the rest by http.ReadRequest.
	if n := headLength(c.br); n > 0 {
		head, _ := c.br.Peek(n)
		if headers.FieldLines(head) > s.maxHeaderCount() {
			return nil, errTooManyFields
		}
		if parseSimple(head, c.simple) {
			c.br.Discard(n)
			req := c.simple
			// parseSimple checked the fields as validate does.
			if err := validateHost(req); err != nil {
				return nil, err
			}
			return req, nil
		}
	} else if s.ReadHeaderTimeout > 0 {
		c.setReadDeadline(time.Now().Add(s.ReadHeaderTimeout))
	}
	max := s.MaxHeaderBytes
	if max <= 0 {
		max = http.DefaultMaxHeaderBytes
	}
	c.cr.limit(int64(max) + 4096) // the slack net/http allows too
	// http.ReadRequest takes an absolute-form target's authority for the
	// host and removes any Host field, so whether there was one is read
	// from the head itself, kept for the rare targets not in origin form.
	if !originForm(c.br) {
		buffered, _ := c.br.Peek(c.br.Buffered())
		c.cr.startCapture(buffered)
	}
	req, err := http.ReadRequest(c.br)
	c.cr.unlimit()
	head := c.cr.stopCapture()
	if err != nil {
		if c.cr.hitLimit {
			return nil, statusError{http.StatusRequestHeaderFieldsTooLarge, ""}
		}
		return nil, err
	}
	if err := validate(req); err != nil {
		return nil, err
	}
	if fieldCount(req) > s.maxHeaderCount() {
		return nil, errTooManyFields
	}
	// RFC 9112, section 3.2: an HTTP/1.1 request without a Host field is
	// refused, whatever its target says (net/http's server does too).
	if req.URL.Host != "" && req.ProtoAtLeast(1, 1) && req.Method != http.MethodConnect && !hasHostField(head) {
		return nil, statusError{http.StatusBadRequest, "missing required Host header"}
	}
	if req.Body != http.NoBody {
		c.setReadDeadline(time.Time{}) // the body may take its time
	}
	return req, nil
}

// waitLimit is how long a connection waits for the first byte of a
// request: ReadHeaderTimeout on a new connection (its request is due from
// the accept on, as with net/http: a client that connects and says nothing
// is not given the idle timeout), IdleTimeout between requests; either
// falls back to the other, both 0 is no limit. The header limit of the
// rest of the head is set by readRequest, only when it came in pieces.
func (c *conn) waitLimit() time.Duration {
	s := c.srv
	limit, other := s.IdleTimeout, s.ReadHeaderTimeout
	if c.state.Load() == stateNew {
		limit, other = other, limit
	}
	if limit <= 0 {
		limit = other
	}
	return limit
}

// awaitRequest waits for the next request on a connection that has its
// buffers, reading into them, for up to idleHold (or the wait limit),
// with at most one deadline change per request (a lazy one, see
// armReadDeadline). After idleHold it gives the buffers back, forgets the
// last request and returns errHandOff: a new goroutine waits on (see
// serve and awaitFirstByte) until the wait limit.
func (c *conn) awaitRequest() error {
	limit := c.waitLimit()
	hold := idleHold
	if limit > 0 {
		hold = min(hold, limit)
	}
	c.armReadDeadline(hold)
	_, err := c.br.Peek(1)
	if err == nil || limit > 0 && limit <= hold || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	c.releaseBuffers()
	c.forgetRequest()
	c.waitUntil = time.Time{}
	if limit > 0 {
		c.waitUntil = time.Now().Add(limit - hold)
	}
	c.handedOff = true
	return errHandOff
}

// awaitFirstByte waits, with no buffers, for the first byte of the next
// request of a new connection or of one handed off, then takes the
// buffers, with the byte (and whatever came with it, connReader.avail) in
// the read buffer. It runs first thing in its goroutine: the stack that
// stays resident while a connection idles is only this shallow wait.
func (c *conn) awaitFirstByte() error {
	switch limit := c.waitLimit(); {
	case c.handedOff:
		c.handedOff = false
		c.setReadDeadline(c.waitUntil)
	case limit > 0:
		c.setReadDeadline(time.Now().Add(limit))
	default:
		c.setReadDeadline(time.Time{})
	}
	n, err := c.rwc.Read(c.cr.oneByte[:])
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) && !c.state.CompareAndSwap(stateNew, stateActive) {
		return errClosed
	}
	c.cr.hasByte, c.cr.withRest = true, true
	c.takeBuffers()
	_, err = c.br.Peek(1) // the byte, into the buffer
	return err
}

// setReadDeadline sets the connection's read deadline and remembers it.
// Every change of the read deadline while the connection is served goes
// through here or forgets the one remembered (readDeadlineKnown false).
func (c *conn) setReadDeadline(t time.Time) {
	c.rwc.SetReadDeadline(t)
	c.readDeadline, c.readDeadlineKnown = t, true
}

// setReadDeadlineErr is setReadDeadline for http.ResponseController,
// which wants the error.
func (c *conn) setReadDeadlineErr(t time.Time) error {
	err := c.rwc.SetReadDeadline(t)
	c.readDeadline, c.readDeadlineKnown = t, err == nil
	return err
}

// armReadDeadline makes reads fail after d from now, or up to lazyDelay(d)
// later. Like nginx's timers (NGX_TIMER_LAZY_DELAY), it leaves alone a
// deadline already in that window: a connection carrying request after
// request changes its deadline (a runtime timer update) once in a while,
// not once per request.
func (c *conn) armReadDeadline(d time.Duration) {
	want := time.Now().Add(d)
	late := want.Add(lazyDelay(d))
	if c.readDeadlineKnown && !c.readDeadline.Before(want) && !c.readDeadline.After(late) {
		return
	}
	c.setReadDeadline(late)
}

// lazyDelay is how much later than asked a timeout of d may fire: nginx's
// 300 ms, less for short timeouts.
func lazyDelay(d time.Duration) time.Duration { return min(d/16, 300*time.Millisecond) }

// headLength is the length of the request head if it is all in the
// buffer already (so reading it cannot block), or 0.
func headLength(br *bufio.Reader) int {
	b, _ := br.Peek(br.Buffered())
	return headers.HeadLength(b)
}

// errTooManyFields refuses a head with more fields than MaxHeaderCount.
var errTooManyFields = statusError{http.StatusRequestHeaderFieldsTooLarge, "too many header fields"}

// fieldCount is the number of field lines http.ReadRequest read (Host,
// which it moved out of the header, included).
func fieldCount(req *http.Request) int {
	n := 0
	for _, vs := range req.Header {
		n += len(vs)
	}
	if req.Host != "" {
		n++
	}
	return n
}

// originForm reports whether the request the buffer begins with has a
// target in origin form ("/path"); false when that cannot be seen yet.
func originForm(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	sp := bytes.IndexByte(b, ' ')
	return sp >= 0 && sp+1 < len(b) && b[sp+1] == '/'
}

// hasHostField reports whether the request head at the start of b (as
// http.ReadRequest read it: lines ending in LF or CRLF) has a Host field.
func hasHostField(b []byte) bool {
	_, b, _ = bytes.Cut(b, []byte("\n")) // the request line
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return false // the end of the head
		}
		if len(line) >= 5 && strings.EqualFold(string(line[:5]), "host:") {
			return true
		}
	}
	return false
}

// statusError is a request refused with a status and a reason.
type statusError struct {
	code   int
	reason string
}

func (e statusError) Error() string { return fmt.Sprintf("%d %s", e.code, e.reason) }

// validate applies the checks net/http's server makes after parsing.
func validate(req *http.Request) error {
	if req.ProtoMajor != 1 {
		return statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	if err := validateHost(req); err != nil {
		return err
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return statusError{http.StatusBadRequest, "invalid header name"}
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return statusError{http.StatusBadRequest, "invalid header value"}
			}
		}
	}
	if e, ok := req.Header["Expect"]; ok && !(len(e) == 1 && strings.EqualFold(e[0], "100-continue")) {
		return statusError{http.StatusExpectationFailed, ""}
	}
	return nil
}

// validateHost checks the Host field, which http.ReadRequest moved to
// req.Host (and refused several). An empty one is taken for a missing one:
// RFC 9112 allows it only for targets without an authority, which a
// gateway does not serve.
func validateHost(req *http.Request) error {
	switch {
	case req.Host == "" && req.ProtoAtLeast(1, 1) && req.Method != http.MethodConnect:
		return statusError{http.StatusBadRequest, "missing required Host header"}
	case !httpguts.ValidHostHeader(req.Host):
		return statusError{http.StatusBadRequest, "malformed Host header"}
	}
	return nil
}

// reject answers a request that could not be read, unless the client is
// gone or silent, and closes the connection.
func (c *conn) reject(err error) {
	var se statusError
	switch {
	case errors.As(err, &se):
	case quiet(err):
		return
	case strings.Contains(err.Error(), "unsupported transfer encoding"):
		se = statusError{http.StatusNotImplemented, "unsupported transfer encoding"}
	default:
		se = statusError{http.StatusBadRequest, ""}
	}
	if c.bw == nil {
		c.takeBuffers()
	}
	text := fmt.Sprintf("%d %s", se.code, http.StatusText(se.code))
	if se.reason != "" {
		text += ": " + se.reason
	}
	c.rwc.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		se.code, http.StatusText(se.code), len(text), text)
	if c.bw.Flush() == nil {
		c.lingerClose()
	}
}

// lingerClose half-closes and reads what the client still sends for a
// moment: closing with unread input would send a reset, and the client
// could lose the answer (net/http does the same).
func (c *conn) lingerClose() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.rwc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, io.LimitReader(c.rwc, maxDrain))
}

// quiet errors end a connection without an answer: the client left, went
// silent past a timeout, or Shutdown closed the connection.
func quiet(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, errClosed) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ne) && ne.Timeout()
}

// serveRequest runs the handler for req and ends the response. It reports
// whether the connection can carry another request.
func (c *conn) serveRequest(req *http.Request) bool {
	rc := reqctx.New(c.srv.values)
	c.rctx.Store(rc)
	if c.srv.baseEnded.Load() {
		rc.Cancel()
	}
	req = req.WithContext(rc)
	req.RemoteAddr = c.remote
	w := &c.res
	w.reset(c, req)
	body := req.Body
	var rb *requestBody
	if body != http.NoBody {
		// The handler gets a wrapper: Close of http.ReadRequest's body reads
		// the whole rest of the body (net/http's server turns that off with
		// a field only it can set), which blocks on a client that is slow,
		// sends a large body, or waits for a 100 Continue.
		rb = &requestBody{body: body}
		req.Body = rb
		if _, ok := req.Header["Expect"]; ok && req.ProtoAtLeast(1, 1) {
			w.wantContinue = true
			rb.w = w
		}
	}
	// A request without a body is watched if it runs long, unless the
	// client's next request is here already; one with a body once the
	// handler read it to the end.
	seq := c.beginWatch(body == http.NoBody && c.br.Buffered() == 0)
	if rb != nil {
		rb.c, rb.seq = c, seq
	}
	c.srv.Handler.ServeHTTP(w, req)
	c.stopWatch()
	c.rctx.Store(nil)
	rc.Cancel()
	if c.stopBaseHook != nil {
		c.stopBaseHook()
	}
	keep := w.finish()
	if w.hijacked {
		return false
	}
	if rb != nil {
		rb.closed.Store(true) // reads by goroutines the handler left fail
		if d := c.srv.BodyReadTimeout; d > 0 {
			// The body's reads set deadlines the connection does not
			// remember; this one bounds the drain below too.
			c.setReadDeadline(time.Now().Add(d))
		}
		if keep && (w.unsentContinue() || !drained(body, req.ContentLength-rb.n.Load())) {
			// Part of the body is left unread: closing now would send a
			// reset, which can destroy the response on its way (net/http
			// lingers too, closeWriteAndWait).
			keep = false
			c.lingerClose()
		}
	}
	return keep && !c.clientGone
}

// drained reads what the handler left of a request body, up to maxDrain,
// and reports whether the body ended (so the next request can be read).
// Like net/http, it gives up at once when more than maxDrain is declared
// to remain (left < 0: unknown, chunked).
func drained(body io.Reader, left int64) bool {
	if left > maxDrain {
		return false
	}
	_, err := io.CopyN(io.Discard, body, maxDrain+1)
	return errors.Is(err, io.EOF)
}

// connReader is the connection as the request reader sees it: reading the
// head is capped, and a byte the client-hang-up watch read is handed on.
type connReader struct {
	nc       net.Conn
	limited  bool
	remain   int64
	hitLimit bool
	hasByte  bool
	oneByte  [1]byte
	// withRest: the byte is an idle connection's first (awaitFirstByte);
	// avail reads with it what came after it (see availReader).
	withRest bool
	avail    availReader
	// capture, while capturing, collects what is read (see startCapture).
	capturing bool
	capture   []byte
}

func (r *connReader) limit(n int64) { r.limited, r.remain, r.hitLimit = true, n, false }
func (r *connReader) unlimit()      { r.limited = false }

// startCapture keeps a copy of buffered, the bytes read already, and of
// everything read from now on, until stopCapture; the head limit bounds it.
func (r *connReader) startCapture(buffered []byte) {
	r.capturing, r.capture = true, append([]byte(nil), buffered...)
}

// stopCapture ends a capture and returns what it kept (nil if none). The
// memory is not kept with the connection.
func (r *connReader) stopCapture() []byte {
	b := r.capture
	r.capturing, r.capture = false, nil
	return b
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.limited {
		if r.remain <= 0 {
			r.hitLimit = true
			return 0, io.EOF
		}
		if int64(len(p)) > r.remain {
			p = p[:r.remain]
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.hasByte {
		r.hasByte = false
		p[0] = r.oneByte[0]
		n := 1
		if r.withRest {
			r.withRest = false
			n += r.avail.readAvailable(p[1:])
		}
		r.remain -= int64(n)
		if r.capturing {
			r.capture = append(r.capture, p[:n]...)
		}
		return n, nil
	}
	n, err := r.nc.Read(p)
	r.remain -= int64(n)
	if r.capturing {
		r.capture = append(r.capture, p[:n]...)
	}
	return n, err
}

// requestBody is the request body as the handler sees it. Close only
// marks it closed (later reads fail, as with net/http): what is left of
// the body is for serveRequest to drain or give up on. With w set (the
// request asked for it), the first read sends "100 Continue", unless the
// response went first.
type requestBody struct {
	w      *response
	body   io.ReadCloser
	closed atomic.Bool  // Close may come from another goroutine (http.Transport)
	n      atomic.Int64 // bytes read
	// c and seq arm the client-hang-up watch when the body ends.
	c   *conn
	seq uint64
}

func (r *requestBody) Read(p []byte) (int, error) {
	if r.closed.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	if r.w != nil {
		r.w.sendContinue()
	}
	if d := r.c.srv.BodyReadTimeout; d > 0 {
		// Straight on the socket: this may run on another goroutine than
		// the connection's (http.Transport writing the body upstream), so
		// the deadline the connection remembers is forgotten after the
		// request instead (serveRequest).
		r.c.rwc.SetReadDeadline(time.Now().Add(d))
	}
	n, err := r.body.Read(p)
	r.n.Add(int64(n))
	if err == io.EOF {
		r.c.bodyDone(r.seq)
	}
	return n, err
}

func (r *requestBody) Close() error {
	r.closed.Store(true)
	return nil
}
