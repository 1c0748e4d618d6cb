package proxy

import (
	"bufio"
	"net"
	"net/http"
	"sync"

	"github.com/umbragw/umbra/internal/shadow"
)

// recorder notes the status and body size of a response on its way to the
// client. It is pooled: one per request would be the proxy's largest
// remaining allocation.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	capture *shadow.LiveCapture // non-nil when the answer is compared
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

func newRecorder(w http.ResponseWriter) *recorder {
	r := recorders.Get().(*recorder)
	r.ResponseWriter = w
	return r
}

func (r *recorder) release() {
	*r = recorder{}
	recorders.Put(r)
}

// WriteHeader records the final status; 1xx informational answers pass
// through without being taken for the final one.
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
		if r.capture != nil {
			r.capture.Header(code, r.ResponseWriter.Header())
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
		if r.capture != nil {
			r.capture.Header(http.StatusOK, r.ResponseWriter.Header())
		}
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	if r.capture != nil {
		r.capture.Write(b[:n])
	}
	return n, err
}

// Flush lets ReverseProxy stream SSE and chunked bodies promptly.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack serves protocol upgrades (WebSocket): ReverseProxy writes the 101
// itself on the hijacked connection, so it is recorded here.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// Unwrap gives http.ResponseController access to the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) finalStatus() int {
	if r.status == 0 {
		return http.StatusOK // handler wrote nothing: net/http sends 200
	}
	return r.status
}
