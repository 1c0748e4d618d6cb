package proxy

import (
	"io"
	"net/http"
	"sync"

	"github.com/umbragw/umbra/internal/adoption"
)

// A request's adoption record (internal/adoption): the caller, and the
// first bytes of a JSON body for routes with field rules.

// usage is one request's adoption record: who called, and the start of
// its JSON body when the route has field rules.
type usage struct {
	caller string
	body   *prefixReader
}

// beginAdoption identifies the caller and, for routes with field rules,
// keeps the first bytes of a JSON body while it streams to the backend.
// Routes without adoption rules pay nothing.
func beginAdoption(snap *Snapshot, route *Route, r *http.Request) *usage {
	if snap.Callers == nil || route.Adoption == nil {
		return nil
	}
	u := &usage{caller: snap.Callers.Caller(r)}
	if max, ok := route.Adoption.WantsBody(); ok && r.Body != nil && r.Body != http.NoBody &&
		adoption.IsJSON(r.Header.Get("Content-Type")) {
		u.body = &prefixReader{ReadCloser: r.Body, max: max + 1}
		r.Body = u.body
	}
	return u
}

// observe records the request; the body prefix counts only when the live
// backend read the body to its end within the limit. It returns the
// adoption fields the body used, as adoption.Route.Observe does.
func (u *usage) observe(route *Route, endpoint string) uint64 {
	if u == nil {
		return 0
	}
	var body []byte
	complete := false
	if u.body != nil {
		body, complete = u.body.claim()
	}
	return route.Adoption.Observe(endpoint, u.caller, body, complete)
}

// prefixReader keeps the first max bytes read through it. The live
// transport may still read after the handler is done (a backend can answer
// before reading the whole body), so claim freezes it under a lock.
type prefixReader struct {
	io.ReadCloser
	mu      sync.Mutex
	buf     []byte
	max     int
	eof     bool
	claimed bool
}

func (p *prefixReader) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.claimed {
		return n, err
	}
	if room := p.max - len(p.buf); room > 0 && n > 0 {
		p.buf = append(p.buf, b[:min(n, room)]...)
	}
	if err == io.EOF {
		p.eof = true
	}
	return n, err
}

// claim returns the kept bytes and whether they are the whole body.
func (p *prefixReader) claim() ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.claimed = true
	return p.buf, p.eof && len(p.buf) < p.max
}
