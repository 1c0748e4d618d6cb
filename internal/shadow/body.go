package shadow

import (
	"io"
	"sync"
	"sync/atomic"
)

// chunkSize matches the proxy's copy buffers: one pooled chunk per 32 KiB.
const chunkSize = 32 << 10

var chunks = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

// bodyCopy is a request body teed off the live request into pooled chunks.
// Several shadow targets share one copy; the last reader to close it
// returns the chunks to the pool.
type bodyCopy struct {
	chunks []*[]byte
	size   int64
	refs   atomic.Int32
}

func (c *bodyCopy) write(p []byte) {
	for len(p) > 0 {
		if len(c.chunks) == 0 || len(*c.chunks[len(c.chunks)-1]) == chunkSize {
			c.chunks = append(c.chunks, chunks.Get().(*[]byte))
		}
		last := c.chunks[len(c.chunks)-1]
		n := min(chunkSize-len(*last), len(p))
		*last = append(*last, p[:n]...)
		p = p[n:]
		c.size += int64(n)
	}
}

func (c *bodyCopy) free() {
	for _, ch := range c.chunks {
		*ch = (*ch)[:0]
		chunks.Put(ch)
	}
	c.chunks = nil
}

// head returns a copy of the first n bytes, for samples (nil-safe).
func (c *bodyCopy) head(n int) []byte {
	if c == nil {
		return nil
	}
	out := make([]byte, 0, min(int64(n), c.size))
	for _, ch := range c.chunks {
		if len(out) >= n {
			break
		}
		out = append(out, (*ch)[:min(len(*ch), n-len(out))]...)
	}
	return out
}

// release drops one reference; the last one frees the chunks.
func (c *bodyCopy) release() {
	if c != nil && c.refs.Add(-1) == 0 {
		c.free()
	}
}

// reader returns a fresh reader over the copy. It holds a reference that
// its Close releases: the transport closes a request body when it is done
// with it, possibly after RoundTrip returned, so only Close may free.
func (c *bodyCopy) reader() io.ReadCloser {
	return &chunkReader{c: c}
}

type chunkReader struct {
	c      *bodyCopy
	i, off int
	once   sync.Once
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for r.i < len(r.c.chunks) {
		ch := *r.c.chunks[r.i]
		if r.off < len(ch) {
			n := copy(p, ch[r.off:])
			r.off += n
			return n, nil
		}
		r.i, r.off = r.i+1, 0
	}
	return 0, io.EOF
}

func (r *chunkReader) Close() error {
	r.once.Do(r.c.release)
	return nil
}

// tee wraps the live request body: everything the live backend reads is
// also copied, up to limit. Past the limit the copy is abandoned (never
// sent truncated) and the live body keeps streaming untouched.
//
// The live transport may still be reading the body after the live handler
// is done (a backend can answer before reading the whole upload), so the
// state is guarded by the Pending's mutex and frozen once Dispatch claims it.
type tee struct {
	body     io.ReadCloser
	copy     *bodyCopy
	limit    int64
	mu       *sync.Mutex
	overflow bool
	eof      bool
	claimed  bool
}

func (t *tee) Read(p []byte) (int, error) {
	n, err := t.body.Read(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.claimed {
		return n, err
	}
	if n > 0 && !t.overflow {
		if t.copy.size+int64(n) > t.limit {
			t.overflow = true
			t.copy.free()
		} else {
			t.copy.write(p[:n])
		}
	}
	if err == io.EOF {
		t.eof = true
	}
	return n, err
}

func (t *tee) Close() error { return t.body.Close() }
