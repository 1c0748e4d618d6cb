package shadow

import (
	"bytes"

	"github.com/umbragw/umbra/internal/compare"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// Response is one captured answer, bounded in size.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool          // the answer was larger than the capture limit
	Err       string        // set when there was no answer (error kind or drop reason)
	Latency   time.Duration // to the end of the body
	// Absent marks a side that made no such call, in a comparison of
	// outbound calls (the egress sandbox): an extra or a missing call.
	Absent bool
}

// Exchange is one compared request: the live answer and the answers of the
// candidate (the new version) and, when configured, the secondary (a
// second instance of the live version, which shows what differs anyway).
type Exchange struct {
	Route     string
	Endpoint  string // "GET /v1/shortlinks/{id}"
	Method    string
	URI       string
	Header    http.Header // the request's, as sent to the candidate
	Body      []byte      // the request body, at most SampleBodyLimit bytes
	At        time.Time
	Live      *Response
	Candidate *Response
	Secondary *Response // nil without a secondary, or when it was skipped
	// Comparator, when set, replaces the route's (outbound calls are
	// compared with their egress service's rules).
	Comparator *compare.Comparator
}

// SampleBodyLimit bounds the request body kept with an exchange.
const SampleBodyLimit = 16 << 10

// Sink receives finished exchanges. It must never block: it runs on a
// shadow sender.
type Sink func(*Exchange)

// CompareSpec turns on comparison for a Set.
type CompareSpec struct {
	Candidate *Target
	Secondary *Target // optional
	MaxBody   int64
	Sink      Sink
}

// join collects the answers of one exchange and hands it to the sink when
// the last one arrives. Every path of every job calls done exactly once.
type join struct {
	ex    *Exchange
	parts atomic.Int32
	sink  Sink
}

func (j *join) done() {
	if j.parts.Add(-1) == 0 {
		j.sink(j.ex)
	}
}

// capture is what a compared job records into.
type capture struct {
	join *join
	into **Response
	max  int64
}

// finish records resp (or a failure) and completes this part of the join.
func (c *capture) finish(r *Response) {
	if c == nil {
		return
	}
	*c.into = r
	c.join.done()
}

func (c *capture) fail(reason string) { c.finish(&Response{Err: reason}) }

// readCapped reads at most max bytes of body, reporting whether there was more.
func readCapped(body io.Reader, max int64) ([]byte, bool, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(body, max+1))
	if n > max {
		return buf.Bytes()[:max], true, err
	}
	return buf.Bytes(), false, err
}

// LiveCapture records the live answer on its way to the client: status,
// headers and the first max bytes of the body.
type LiveCapture struct {
	failed    string // the live exchange failed upstream: this kind of error
	max       int64
	status    int
	header    http.Header
	body      []byte
	truncated bool
	start     time.Time
}

// NewLiveCapture returns a capture of at most max body bytes.
func NewLiveCapture(max int64) *LiveCapture {
	return &LiveCapture{max: max, start: time.Now()}
}

// Header records the answer's status and headers when it is sent.
func (c *LiveCapture) Header(status int, h http.Header) {
	if c.header == nil {
		c.status, c.header = status, h.Clone()
	}
}

// Write records body bytes up to the limit.
func (c *LiveCapture) Write(p []byte) {
	if c.truncated {
		return
	}
	if int64(len(c.body)+len(p)) > c.max {
		c.truncated = true
		return
	}
	c.body = append(c.body, p...)
}

// Failed marks the live answer as umbra's own error page (the live
// upstream failed), which says nothing about the candidate.
func (c *LiveCapture) Failed(kind string) { c.failed = kind }

func (c *LiveCapture) response() *Response {
	return &Response{Status: c.status, Header: c.header, Body: c.body, Truncated: c.truncated,
		Err: c.failed, Latency: time.Since(c.start)}
}
