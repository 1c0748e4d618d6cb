package proxy

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"

	"github.com/umbragw/umbra/internal/backend"
	"github.com/umbragw/umbra/internal/headers"
	"github.com/umbragw/umbra/internal/metrics"
	"github.com/umbragw/umbra/internal/shadow"
)

// Target is one backend in one role (live, canary) of one route, with its
// own ReverseProxy so the request path needs no per-request closures or
// context values to know where it goes.
type Target struct {
	Backend *backend.Backend
	Metrics *metrics.Path
	Role    string
	rp      *httputil.ReverseProxy
}

// NewTarget builds the forwarding path of a route to a backend.
func NewTarget(b *backend.Backend, m *metrics.Path, role string, logger *slog.Logger) *Target {
	t := &Target{Backend: b, Metrics: m, Role: role}
	t.rp = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      b,
		BufferPool:     bufferPool{},
		ModifyResponse: echoRequestID,
		ErrorHandler:   t.upstreamError,
		ErrorLog:       log.New(slogWriter{logger}, "", 0),
	}
	return t
}

// rewrite keeps the client's Host (the backend may override it) and path,
// and appends the client address to X-Forwarded-For as nginx's
// $proxy_add_x_forwarded_for does. ReverseProxy has already removed
// hop-by-hop headers and the inbound X-Forwarded-* before calling it.
func rewrite(pr *httputil.ProxyRequest) {
	// Only umbra marks copies: a client must not be able to make the live
	// version treat its request as a shadow or run it in a sandbox profile.
	pr.Out.Header.Del(shadow.HeaderShadow)
	pr.Out.Header.Del(shadow.HeaderSandbox)
	// The request id and X-Umbra-Flags are umbra's own: a client's
	// Connection header naming them must not drop them (ReverseProxy did).
	for _, k := range headers.Owned {
		if v, ok := pr.In.Header[k]; ok {
			pr.Out.Header[k] = v
		}
	}
	if prior, ok := pr.In.Header["X-Forwarded-For"]; ok {
		pr.Out.Header["X-Forwarded-For"] = prior
	}
	pr.SetXForwarded()
}

// echoRequestID returns the request id to the client, so a user's report
// can be matched with umbra's and the backend's logs.
func echoRequestID(resp *http.Response) error {
	if id := resp.Request.Header.Get(HeaderRequestID); id != "" {
		resp.Header.Set(HeaderRequestID, id)
	}
	return nil
}

// upstreamError answers a failed upstream exchange: 503 when no endpoint
// could be tried, 504 on timeouts, 502 otherwise, with a short JSON body.
func (t *Target) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	kind := backend.KindOf(err)
	if rec, ok := w.(*recorder); ok && rec.capture != nil {
		rec.capture.Failed(kind.String())
	}
	t.Metrics.UpstreamError(kind)
	if kind == backend.KindCanceled && r.Context().Err() == context.Canceled {
		// The client went away; nobody reads this answer. 499 is nginx's
		// code for it, and it keeps these out of the 5xx numbers.
		if rec, ok := w.(*recorder); ok {
			rec.status = StatusClientClosed
		}
		return
	}
	status, code := http.StatusBadGateway, "bad_gateway"
	switch kind {
	case backend.KindTimeout:
		status, code = http.StatusGatewayTimeout, "upstream_timeout"
	case backend.KindNoEndpoint:
		status, code = http.StatusServiceUnavailable, "no_endpoint"
	case backend.KindConnect:
		code = "upstream_connect_failed"
	case backend.KindReset:
		code = "upstream_reset"
	}
	writeError(w, r, status, code, "backend "+t.Backend.Name()+": "+kind.String())
}

// StatusClientClosed is recorded when the client left before the answer.
const StatusClientClosed = 499

// bufferPool lends ReverseProxy 32 KiB copy buffers, so streaming a body
// does not allocate a fresh buffer per request.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

// slogWriter routes ReverseProxy's own log lines into the structured log.
type slogWriter struct{ l *slog.Logger }

func (s slogWriter) Write(p []byte) (int, error) {
	s.l.Warn(string(trimNewline(p)), "source", "reverseproxy")
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}
