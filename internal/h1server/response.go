package h1server

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/umbragw/umbra/internal/headers"
)

// response is the http.ResponseWriter of one request. A connection reuses
// one response, and its header map, for all its requests: the writer and
// the map are valid until the handler returns, as with net/http.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header

	status    int  // final status; 0 until WriteHeader or Write
	committed bool // status line and header are in the connection's buffer
	chunked   bool // the body is sent in chunks (length unknown, HTTP/1.1)
	bodyless  bool // HEAD, 204 or 304: the body is not sent
	length    int64
	written   int64
	// fields, from ForwardFields, follow the header's fields in the head;
	// fieldsLength is the body length they declare.
	fields       string
	fieldsLength int64
	fieldsDate   bool
	// closeAfter: the connection ends after this response (client asked,
	// handler asked, body framing ended by close, shutdown).
	closeAfter bool
	hijacked   bool
	// wantContinue: the client waits for 100 Continue before sending the
	// body; the first body read sends it, unless the response went first.
	// continueMu orders sending 100 Continue (from whichever goroutine
	// reads the body) against the response's own writes.
	wantContinue bool
	continueMu   sync.Mutex
	sentContinue bool
	err          error // writing to the client failed
}

func (w *response) reset(c *conn, req *http.Request) {
	h := w.header
	if h == nil {
		h = make(http.Header)
	} else {
		clear(h)
	}
	w.c, w.req, w.header, w.length = c, req, h, -1
	w.fields, w.fieldsDate = "", false
	w.status, w.committed, w.chunked, w.bodyless, w.written = 0, false, false, false, 0
	w.closeAfter, w.hijacked, w.wantContinue, w.sentContinue, w.err = false, false, false, false, nil
}

// ForwardFields has the head carry block after the header's own fields: a
// proxy forwards an upstream's fields this way, as h1client read them
// (h1client.Fields), without building a header map and copying it. block
// is lines of "Name: value\r\n", checked already, with nothing about the
// connection or the framing but a Content-Length of length; hasDate tells
// that it has a Date. The header must not repeat those two. It is for a
// response with a body (a status other than 1xx, 204 and 304), and has no
// effect once the head is written.
func (w *response) ForwardFields(block string, length int64, hasDate bool) {
	if !w.committed {
		w.fields, w.fieldsLength, w.fieldsDate = block, length, hasDate
	}
}

// sendContinue answers "100 Continue" before the first body read, unless
// the response started already (the client must then not send the body).
func (w *response) sendContinue() {
	w.continueMu.Lock()
	defer w.continueMu.Unlock()
	if w.sentContinue || w.committed || w.err != nil {
		return
	}
	w.sentContinue = true
	w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	w.fail(w.c.bw.Flush())
}

// unsentContinue: the client was told no 100 Continue and may or may not
// send the body, so the connection cannot be reused.
func (w *response) unsentContinue() bool {
	if !w.wantContinue {
		return false
	}
	w.continueMu.Lock()
	defer w.continueMu.Unlock()
	return !w.sentContinue
}

// lockContinue keeps sendContinue out while the response writes, when the
// request asked for 100 Continue (otherwise no other goroutine writes).
func (w *response) lockContinue() func() {
	if !w.wantContinue {
		return func() {}
	}
	w.continueMu.Lock()
	return w.continueMu.Unlock
}

// Header implements http.ResponseWriter.
func (w *response) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter. Informational answers (1xx
// other than 101) are sent at once; the first final status is kept and
// later ones are ignored, as net/http does.
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("h1server: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.hijacked || w.status != 0 {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.status = code
}

// writeInformational sends a 1xx with the current header (103 Early Hints
// carries Link fields). HTTP/1.0 clients do not understand 1xx.
func (w *response) writeInformational(code int) {
	defer w.lockContinue()()
	if !w.req.ProtoAtLeast(1, 1) || w.err != nil {
		return
	}
	bw := w.c.bw
	writeStatusLine(bw, true, code)
	headers.WriteFields(bw, w.header, isFraming) // a 1xx has no body
	bw.WriteString("\r\n")
	w.fail(bw.Flush())
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.committed {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		w.commit(false)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.bodyless {
		if bodyAllowed(w.status) {
			return len(p), nil // HEAD: the body is not sent
		}
		return 0, http.ErrBodyNotAllowed
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	bw := w.c.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunked {
		bw.WriteString("\r\n")
	}
	w.fail(err)
	return n, err
}

// Flush implements http.Flusher: the header and what the handler wrote so
// far go to the client now.
func (w *response) Flush() {
	if w.hijacked {
		return
	}
	if !w.committed {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		w.commit(false)
	}
	w.fail(w.c.bw.Flush())
}

// FlushError is Flush for http.ResponseController, with the error.
func (w *response) FlushError() error {
	w.Flush()
	return w.err
}

// Hijack implements http.Hijacker for protocol upgrades: the caller owns
// the connection (and its buffered input) from now on.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.committed {
		return nil, nil, errors.New("h1server: Hijack after the response started")
	}
	c := w.c
	c.stopWatch()
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	// The idle deadline of the request wait must not cut the upgraded
	// connection short.
	c.rwc.SetDeadline(time.Time{})
	// A byte the watch read is not in c.br's buffer yet: put it there, so
	// a caller that takes Buffered() bytes and then reads rwc gets it (as
	// net/http does).
	if c.cr.hasByte {
		c.br.Peek(c.br.Buffered() + 1)
	}
	w.hijacked = true
	c.hijacked = true
	// Not waited for by Shutdown nor closed by Close from now on, though
	// the handler may run on (as net/http's StateHijacked). Nor reached by
	// cancelRequests: the request's context now ends with BaseContext
	// through a hook of its own.
	c.srv.remove(c)
	if base := c.srv.BaseContext; base != nil && base.Done() != nil {
		if rc := c.rctx.Load(); rc != nil {
			c.stopBaseHook = context.AfterFunc(base, rc.Cancel)
		}
	}
	return c.rwc, bufio.NewReadWriter(c.br, c.bw), nil
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error  { return w.c.setReadDeadlineErr(t) }
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex serves http.ResponseController: reading the request
// body while writing the response always works here.
func (w *response) EnableFullDuplex() error { return nil }

func (w *response) fail(err error) {
	if err != nil && w.err == nil {
		w.err = err
		w.closeAfter = true
	}
}

// commit writes the status line and header into the connection's buffer
// and decides how the body is framed. final is true when the handler has
// returned, so a body nobody wrote is known to be empty.
func (w *response) commit(final bool) {
	defer w.lockContinue()()
	w.committed = true
	if w.wantContinue && !w.sentContinue {
		w.closeAfter = true // see unsentContinue
	}
	h := w.header
	req := w.req
	is11 := req.ProtoAtLeast(1, 1)
	if w.c.srv.closing.Load() || req.Close || httpguts.HeaderValuesContainsToken(h["Connection"], "close") {
		w.closeAfter = true
	}
	delete(h, "Transfer-Encoding") // framing is ours to decide
	switch {
	case !bodyAllowed(w.status):
		w.bodyless = true
		if w.status == http.StatusNoContent {
			delete(h, "Content-Length")
		}
	case req.Method == http.MethodHead:
		w.bodyless = true // a declared Content-Length describes the GET
	default:
		if w.fields != "" {
			w.length = w.fieldsLength
		} else {
			w.length = declaredLength(h)
		}
		switch {
		case w.length >= 0:
		case final && !(is11 && w.hasTrailers()):
			// Trailers need chunks, even around an empty body (as from
			// net/http): "Content-Length: 0" would drop them.
			w.length = 0
			h["Content-Length"] = zeroLength
		case is11:
			w.chunked = true
		default:
			w.closeAfter = true // HTTP/1.0: the body ends with the connection
		}
	}
	if !w.fieldsDate {
		if _, ok := h["Date"]; !ok {
			h["Date"] = date()
		}
	}
	switch {
	case w.closeAfter:
		switch {
		case httpguts.HeaderValuesContainsToken(h["Connection"], "close"):
		case is11:
			h["Connection"] = connectionClose
		default:
			// HTTP/1.0 closes by default: a "keep-alive" the handler set
			// must not promise otherwise (net/http drops it too).
			delete(h, "Connection")
		}
	case !is11:
		h["Connection"] = keepAlive
	}
	bw := w.c.bw
	writeStatusLine(bw, is11, w.status)
	headers.WriteFields(bw, h, isTrailerKey)
	bw.WriteString(w.fields)
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
}

// isFraming: the fields describing a body; 1xx answers have none.
func isFraming(k string) bool { return k == "Content-Length" || k == "Transfer-Encoding" }

// isTrailerKey: keys with http.TrailerPrefix hold trailers, not fields.
func isTrailerKey(k string) bool { return strings.HasPrefix(k, http.TrailerPrefix) }

// Values the response puts into the handler's header map when it starts,
// shared by all responses: like the map itself after that point, they are
// not to be modified.
var (
	zeroLength      = []string{"0"}
	connectionClose = []string{"close"}
	keepAlive       = []string{"keep-alive"}
)

// hasTrailers reports whether the handler declared or set trailers: a
// "Trailer" field, or keys with http.TrailerPrefix (which are not written
// as fields; a field declared in "Trailer" and set before the body is sent
// in the header too, as by net/http).
func (w *response) hasTrailers() bool {
	if len(w.header["Trailer"]) > 0 {
		return true
	}
	for k := range w.header {
		if isTrailerKey(k) {
			return true
		}
	}
	return false
}

// finish ends the response after the handler returned: header if none was
// written, last chunk and trailers, flush. It reports whether the
// connection can carry another request.
func (w *response) finish() bool {
	if w.hijacked {
		return false
	}
	if !w.committed {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		w.commit(true)
	}
	bw := w.c.bw
	if w.chunked && w.err == nil {
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	w.fail(bw.Flush())
	if w.length >= 0 && w.written != w.length && !w.bodyless {
		// The handler promised more than it wrote: the client would wait
		// for the rest, or take the next response for it.
		w.closeAfter = true
	}
	return !w.closeAfter
}

// writeTrailers sends the values of declared trailers and of keys with
// http.TrailerPrefix.
func (w *response) writeTrailers() {
	bw := w.c.bw
	h := w.header
	for _, decl := range h["Trailer"] {
		for _, name := range strings.Split(decl, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			if !validTrailer(name) {
				continue
			}
			for _, v := range h[name] {
				headers.WriteField(bw, name, v)
			}
		}
	}
	for k, vs := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && validTrailer(name) {
			for _, v := range vs {
				headers.WriteField(bw, name, v)
			}
		}
	}
}

// declaredLength is the handler's valid Content-Length, or -1.
func declaredLength(h http.Header) int64 {
	v, ok := h["Content-Length"]
	if !ok || len(v) != 1 {
		delete(h, "Content-Length")
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
	if err != nil || n < 0 {
		delete(h, "Content-Length")
		return -1
	}
	return n
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// validTrailer: a well-formed name that may be a trailer (not framing,
// routing or a precondition; RFC 9110 section 6.5.1).
func validTrailer(name string) bool {
	return httpguts.ValidHeaderFieldName(name) && httpguts.ValidTrailerHeader(name)
}
