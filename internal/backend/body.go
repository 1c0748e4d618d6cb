package backend

import (
	"io"
	"net/http"
	"sync/atomic"
)

// trackBody ends e's in-flight count when the response is done. For
// round_robin nothing reads the count, so it ends at the headers and the
// body is left alone (no allocation). For least_request a response is
// load until its body is closed, so the body is wrapped.
func (b *Backend) trackBody(e *endpoint, resp *http.Response) {
	if !b.leastRequest || resp.Body == nil || resp.Body == http.NoBody {
		e.end()
		return
	}
	// ReverseProxy takes over a 101 Switching Protocols connection by
	// asserting the body to io.ReadWriteCloser; keep that method visible.
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		resp.Body = &trackedRWBody{trackedBody: trackedBody{ReadCloser: rwc, e: e}, w: rwc}
		return
	}
	resp.Body = &trackedBody{ReadCloser: resp.Body, e: e}
}

// trackedBody ends the in-flight count exactly once, on the first Close.
type trackedBody struct {
	io.ReadCloser
	e    *endpoint
	done atomic.Bool
}

func (t *trackedBody) Close() error {
	err := t.ReadCloser.Close()
	if t.done.CompareAndSwap(false, true) {
		t.e.end()
	}
	return err
}

// trackedRWBody is a trackedBody for upgraded (bidirectional) connections.
type trackedRWBody struct {
	trackedBody
	w io.Writer
}

func (t *trackedRWBody) Write(p []byte) (int, error) { return t.w.Write(p) }
