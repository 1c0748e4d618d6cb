package proxy

import (
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"

	"github.com/umbragw/umbra/internal/h1client"
	"github.com/umbragw/umbra/internal/headers"
	"github.com/umbragw/umbra/internal/match"
	"github.com/umbragw/umbra/internal/shadow"
)

// The direct path forwards requests without a body (most API reads) with
// the same rules as httputil.ReverseProxy in Rewrite mode plus umbra's
// rewrite, but builds the outgoing request from pooled parts instead of
// cloning the incoming one: ReverseProxy's Request.Clone, Header.Clone and
// one Header.Del per hop-by-hop name (each canonicalizing the name) were
// ~8% of the CPU on the proxy benchmark. Everything else (bodies, which
// need concurrent streaming; upgrades; Expect: 100-continue) keeps using
// ReverseProxy. Both paths are covered by the same integration tests.

// directEligible reports whether r can take the direct path.
func directEligible(r *http.Request) bool {
	return r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody) &&
		len(r.TransferEncoding) == 0 &&
		r.Header["Upgrade"] == nil && r.Header["Expect"] == nil
}

// outgoing is the pooled upstream request of one direct exchange.
type outgoing struct {
	req    http.Request
	url    url.URL
	header http.Header
	w      http.ResponseWriter // for 1xx forwarding
	// opts carries got1xx, bound once (a method value made per request
	// would allocate), and, when the response can go to the client as it
	// came, fields.
	opts   h1client.ExchangeOptions
	fields h1client.Fields
}

var outgoings = sync.Pool{New: func() any {
	o := &outgoing{header: make(http.Header, 8)}
	o.opts.Got1xx = o.got1xx
	o.fields.Accept = forwardable
	return o
}}

// fieldForwarder is a response writer that can send an upstream's field
// block unchanged (h1server's; see ForwardFields there).
type fieldForwarder interface {
	ForwardFields(block string, length int64, hasDate bool)
}

// forwardable takes the upstream fields that go to the client as they
// are: not hop-by-hop (h1client leaves a response with a Connection field
// in a map anyway, so none is named there), not X-Request-Id (the
// client's id replaces it) and not an event stream, which is flushed as
// it comes.
func forwardable(k, v string) bool {
	switch k {
	case HeaderRequestID:
		return false
	case "Content-Type":
		return !isEventStreamType(v)
	}
	return !headers.IsHopByHop(k)
}

// got1xx forwards informational responses (103 Early Hints) to the
// client as ReverseProxy does.
func (o *outgoing) got1xx(code int, header textproto.MIMEHeader) error {
	h := o.w.Header()
	for k, v := range header {
		h[k] = v
	}
	o.w.WriteHeader(code)
	// The final response must not inherit the 1xx's headers.
	clear(h)
	return nil
}

func (o *outgoing) release() {
	clear(o.header)
	*o = outgoing{header: o.header, opts: h1client.ExchangeOptions{Got1xx: o.opts.Got1xx},
		fields: h1client.Fields{Accept: o.fields.Accept}}
	outgoings.Put(o)
}

// serveDirect forwards r, which directEligible accepted, to t.
func (t *Target) serveDirect(w http.ResponseWriter, r *http.Request) {
	o := outgoings.Get().(*outgoing)
	defer o.release()
	o.w = w
	// The fields of the response can go to the client as they came when
	// nothing reads them on the way (a comparison captures the header).
	var fw fieldForwarder
	if rec, ok := w.(*recorder); ok && rec.capture == nil {
		if fw, ok = rec.ResponseWriter.(fieldForwarder); ok {
			o.opts.Fields = &o.fields
		}
	}
	resp, err := t.Backend.Exchange(r.Context(), o.build(r), &o.opts)
	if err != nil {
		t.upstreamError(w, r, err)
		return
	}
	defer resp.Body.Close()
	announced := 0
	if o.fields.Block != "" {
		fw.ForwardFields(o.fields.Block, resp.ContentLength, o.fields.HasDate)
	} else {
		announced = copyResponseHeader(w.Header(), resp)
	}
	if id := r.Header[HeaderRequestID]; len(id) > 0 {
		w.Header()[HeaderRequestID] = id[:1]
	}
	w.WriteHeader(resp.StatusCode)
	if err := copyBody(w, resp); err != nil {
		// Headers are out: the only honest signal left is to abort the
		// client connection, as ReverseProxy does.
		panic(http.ErrAbortHandler)
	}
	copyTrailers(w.Header(), resp, announced)
}

// build fills the outgoing request from r. It carries no context: the
// backend gets r's apart (Backend.Exchange), so nothing is allocated.
func (o *outgoing) build(r *http.Request) *http.Request {
	o.url = *r.URL
	o.url.Scheme, o.url.Host = "", "" // set by the backend per endpoint
	o.url.RawQuery = cleanQuery(o.url.RawQuery)
	o.req = http.Request{
		Method:     r.Method,
		URL:        &o.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     o.header,
		Host:       r.Host,
	}
	copyRequestHeader(o.header, r)
	return &o.req
}

// cleanQuery drops query parameters Go cannot parse (a ';' or a bad
// escape) by re-encoding the parsable ones, as ReverseProxy does, so the
// backend and umbra agree on what the query says.
func cleanQuery(q string) string {
	if match.ParsableQuery(q) {
		return q
	}
	v, _ := url.ParseQuery(q)
	return v.Encode()
}

// noUserAgent is shared, never modified: header values are not written
// to after a request is sent.
var noUserAgent = []string{""}

// copyRequestHeader copies r's headers to out without hop-by-hop headers,
// the headers Connection names, inbound forwarding headers and umbra's own
// copy marks, then sets X-Forwarded-For/-Host/-Proto.
func copyRequestHeader(out http.Header, r *http.Request) {
	in := r.Header
	named := in["Connection"]
	for k, v := range in {
		if !headers.EndToEnd(k, named) || forwardingHeader(k) {
			continue
		}
		out[k] = v
	}
	// ReverseProxy keeps "TE: trailers", the only TE value HTTP/1.1
	// allows end to end (gRPC needs it).
	if te := in["Te"]; te != nil && containsToken(te, "trailers") {
		out["Te"] = []string{"trailers"}
	}
	if _, ok := in["User-Agent"]; !ok {
		out["User-Agent"] = noUserAgent // no Go default user agent
	}
	headers.SetForwarded(out, r)
}

// forwardingHeader reports inbound headers ReverseProxy's Rewrite mode
// drops (the client must not forge them) and umbra's copy marks (only
// umbra marks copies).
func forwardingHeader(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		shadow.HeaderShadow, shadow.HeaderSandbox:
		return true
	}
	return false
}

func containsToken(values []string, token string) bool {
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(tok), token) {
				return true
			}
		}
	}
	return false
}

// copyResponseHeader copies the upstream response headers to the client
// without hop-by-hop headers and the ones Connection names, and announces
// the trailers the upstream declared; it returns how many.
func copyResponseHeader(dst http.Header, resp *http.Response) int {
	named := resp.Header["Connection"]
	for k, v := range resp.Header {
		if headers.IsHopByHop(k) || (named != nil && headers.Named(named, k)) {
			continue
		}
		if prior := dst[k]; prior != nil {
			// Fields the gateway set already (the canary's Set-Cookie) stay,
			// as with ReverseProxy, which adds.
			v = append(prior[:len(prior):len(prior)], v...)
		}
		dst[k] = v
	}
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	return len(resp.Trailer)
}

// copyTrailers sends the upstream trailers once the body is done. If the
// upstream sent only the trailers it announced they go by name; otherwise
// all of them go with net/http's TrailerPrefix, as in ReverseProxy.
func copyTrailers(dst http.Header, resp *http.Response, announced int) {
	for k, v := range resp.Trailer {
		if len(resp.Trailer) == announced {
			dst[k] = v
		} else {
			dst[http.TrailerPrefix+k] = v
		}
	}
}

// copyBody streams the response body to the client. Bodies of unknown
// length (chunked) and event streams are flushed after every read, as
// ReverseProxy does, so SSE and long polls reach the client promptly.
func copyBody(w http.ResponseWriter, resp *http.Response) error {
	if resp.Body == http.NoBody {
		return nil
	}
	flush := resp.ContentLength == -1 || isEventStream(resp.Header)
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush {
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && isEventStreamType(ct[0])
}

func isEventStreamType(contentType string) bool {
	return strings.HasPrefix(contentType, "text/event-stream")
}
