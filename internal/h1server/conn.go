package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	// simple is the request parseSimple fills; serveRequest hands the
	// handler a copy with the request's context.
	simple http.Request

	watcher // the client-hang-up watch, see watch.go
}

// maxDrain is how much of a request body the handler left unread is read
// and dropped to keep the connection; with more left, it is closed.
const maxDrain = 256 << 10

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{srv: s, rwc: nc, remote: nc.RemoteAddr().String(), accepted: time.Now()}
	c.state.Store(stateNew)
	c.cr.nc = nc
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(&c.cr)
	c.bw = writers.Get().(*bufio.Writer)
	c.bw.Reset(nc)
	c.cond.L = &c.mu
	return c
}

// serve reads and answers requests until the connection ends.
func (c *conn) serve() {
	defer c.end()
	for {
		req, err := c.readRequest()
		if err != nil {
			c.reject(err)
			return
		}
		if !c.serveRequest(req) {
			return
		}
	}
}

// end runs when serve returns or a handler panics: the connection is
// closed (unless hijacked) and forgotten.
func (c *conn) end() {
	if p := recover(); p != nil && p != http.ErrAbortHandler {
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
		c.br.Reset(nil)
		readers.Put(c.br)
		c.bw.Reset(nil)
		writers.Put(c.bw)
	}
	c.srv.remove(c)
}

// errClosed: Shutdown closed the connection while it waited.
var errClosed = errors.New("h1server: connection closed by shutdown")

// readRequest waits for the next request and reads its head.
func (c *conn) readRequest() (*http.Request, error) {
	s := c.srv
	if c.br.Buffered() == 0 {
		if !c.state.CompareAndSwap(stateActive, stateIdle) && c.state.Load() == stateClosed {
			return nil, errClosed
		}
		// At most one deadline change per request: the idle limit (or
		// none). The header limit below is needed only when the head came
		// in pieces.
		idle := s.IdleTimeout
		if idle <= 0 {
			idle = s.ReadHeaderTimeout // as documented, and as net/http
		}
		if idle > 0 {
			c.armReadDeadline(idle)
		} else if !c.readDeadlineKnown || !c.readDeadline.IsZero() {
			c.setReadDeadline(time.Time{})
		}
		if _, err := c.br.Peek(1); err != nil {
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
		if parseSimple(head, &c.simple) {
			c.br.Discard(n)
			req := &c.simple
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
	if c.readDeadlineKnown && !c.readDeadline.Before(want) {
		return
	}
	c.setReadDeadline(want.Add(lazyDelay(d)))
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
		r.remain--
		if r.capturing {
			r.capture = append(r.capture, p[0])
		}
		return 1, nil
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
