package shadow

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/iotest"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeIn feeds data to c in pieces of the given size.
func writeIn(c *bodyCopy, data []byte, piece int) {
	for len(data) > 0 {
		n := min(piece, len(data))
		c.write(data[:n])
		data = data[n:]
	}
}

func TestBodyCopyRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 100, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 17, 100 << 10} {
		for _, piece := range []int{1 << 20, 4096, 7} {
			if piece == 7 && size > 2*chunkSize {
				continue // slow and adds nothing
			}
			data := randomBytes(size, uint64(size))
			c := &bodyCopy{}
			writeIn(c, data, piece)
			if c.size != int64(size) {
				t.Fatalf("size %d piece %d: c.size = %d", size, piece, c.size)
			}
			if want := (size + chunkSize - 1) / chunkSize; len(c.chunks) != want {
				t.Fatalf("size %d: %d chunks, want %d", size, len(c.chunks), want)
			}
			for i, ch := range c.chunks {
				if cap(*ch) < chunkSize || len(*ch) > chunkSize || (i < len(c.chunks)-1 && len(*ch) != chunkSize) {
					t.Fatalf("size %d: chunk %d has len %d cap %d", size, i, len(*ch), cap(*ch))
				}
			}
			c.refs.Store(1)
			r := c.reader()
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("size %d piece %d: read back %d bytes (err %v), want the %d written", size, piece, len(got), err, size)
			}
			// Reading at EOF keeps returning EOF.
			if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
				t.Fatalf("read after EOF: %d, %v", n, err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if c.chunks != nil {
				t.Fatalf("size %d: chunks not freed by the last Close", size)
			}
		}
	}
}

// TestChunkReaderIotest runs the standard reader conformance checks.
func TestChunkReaderIotest(t *testing.T) {
	data := randomBytes(2*chunkSize+123, 1)
	c := &bodyCopy{}
	c.write(data)
	if err := iotest.TestReader(&chunkReader{c: c}, data); err != nil {
		t.Fatal(err)
	}
}

func TestBodyCopyHead(t *testing.T) {
	var nilCopy *bodyCopy
	if nilCopy.head(10) != nil {
		t.Fatal("head of nil copy is not nil")
	}
	data := randomBytes(chunkSize+500, 2)
	c := &bodyCopy{}
	c.write(data)
	for _, n := range []int{0, 1, 100, chunkSize, chunkSize + 1, chunkSize + 500, 1 << 20} {
		got := c.head(n)
		want := data[:min(n, len(data))]
		if !bytes.Equal(got, want) {
			t.Fatalf("head(%d): %d bytes, want %d", n, len(got), len(want))
		}
	}
	// head copies: changing the result leaves the body alone.
	h := c.head(10)
	h[0] ^= 0xff
	if (*c.chunks[0])[0] != data[0] {
		t.Fatal("head aliases the copy's chunks")
	}
}

// TestBodyCopySharedReaders: several targets read one copy at the same
// time; each gets the whole body, and the chunks go back to the pool only
// when the last reader closes, once, however often each reader is closed.
func TestBodyCopySharedReaders(t *testing.T) {
	data := randomBytes(100<<10, 3)
	want := sha256.Sum256(data)
	c := &bodyCopy{}
	writeIn(c, data, 1000)
	const readers = 5
	c.refs.Store(readers)
	chunksBefore := append([]*[]byte(nil), c.chunks...)

	rs := make([]io.ReadCloser, readers)
	for i := range rs {
		rs[i] = c.reader()
	}
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := sha256.New()
			buf := make([]byte, 1+i*1777) // every reader a different buffer size
			if _, err := io.CopyBuffer(h, struct{ io.Reader }{r}, buf); err != nil {
				errs <- err
				return
			}
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				errs <- errors.New("reader got a different body")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Closing one reader many times releases one reference.
	for i := 0; i < 10; i++ {
		rs[0].Close()
	}
	if got := c.refs.Load(); got != readers-1 {
		t.Fatalf("refs %d after closing one reader repeatedly, want %d", got, readers-1)
	}
	// Concurrent closes of the rest: freed exactly once, after the last.
	for _, r := range rs[1 : readers-1] {
		wg.Add(1)
		go func() { defer wg.Done(); r.Close(); r.Close() }()
	}
	wg.Wait()
	if c.chunks == nil {
		t.Fatal("chunks freed while a reader still holds a reference")
	}
	rs[readers-1].Close()
	if c.chunks != nil || c.refs.Load() != 0 {
		t.Fatalf("after the last Close: chunks %v refs %d, want freed and 0", c.chunks != nil, c.refs.Load())
	}
	for i, ch := range chunksBefore {
		if len(*ch) != 0 {
			t.Fatalf("chunk %d returned to the pool with length %d, want reset to 0", i, len(*ch))
		}
	}
	// A stray release after the last one does not free again.
	c.chunks = []*[]byte{{}}
	c.release()
	if c.chunks == nil {
		t.Fatal("release below zero freed the copy again")
	}
}

func TestReleaseNilSafe(t *testing.T) {
	var c *bodyCopy
	c.release() // bodyless jobs carry a nil copy
}

// teeRead reads everything from the tee with the given buffer size.
func teeRead(t *testing.T, tr *tee, bufSize int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, bufSize)
	for {
		n, err := tr.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("tee read: %v", err)
		}
	}
}

func newTee(body io.Reader, limit int64) *tee {
	return &tee{body: io.NopCloser(body), copy: &bodyCopy{}, limit: limit, mu: &sync.Mutex{}}
}

func TestTeeUnderAndAtLimit(t *testing.T) {
	for _, tc := range []struct {
		size  int
		limit int64
	}{{0, 10}, {1000, 64 << 10}, {64 << 10, 64 << 10}, {100 << 10, 1 << 20}} {
		data := randomBytes(tc.size, uint64(tc.size)+7)
		tr := newTee(iotest.HalfReader(bytes.NewReader(data)), tc.limit)
		got := teeRead(t, tr, 5000)
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: live side read %d bytes, want the body intact", tc.size, len(got))
		}
		if !tr.eof || tr.overflow {
			t.Fatalf("size %d limit %d: eof %v overflow %v, want true false", tc.size, tc.limit, tr.eof, tr.overflow)
		}
		tr.copy.refs.Store(1)
		cp, _ := io.ReadAll(tr.copy.reader())
		if !bytes.Equal(cp, data) || tr.copy.size != int64(tc.size) {
			t.Fatalf("size %d: copy has %d bytes (size %d), want the body", tc.size, len(cp), tr.copy.size)
		}
	}
}

// TestTeeOverflow: past the limit the copy is dropped at once (never kept
// truncated) while the live side keeps streaming every byte.
func TestTeeOverflow(t *testing.T) {
	for _, tc := range []struct {
		size  int
		limit int64
		buf   int
	}{{64<<10 + 1, 64 << 10, 32 << 10}, {200 << 10, 64 << 10, 4096}, {200 << 10, 64 << 10, 1 << 20}, {10, 0, 3}} {
		data := randomBytes(tc.size, 11)
		tr := newTee(bytes.NewReader(data), tc.limit)
		got := teeRead(t, tr, tc.buf)
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: live side got %d bytes, want %d intact", tc.size, len(got), tc.size)
		}
		if !tr.overflow {
			t.Fatalf("size %d limit %d: no overflow", tc.size, tc.limit)
		}
		if tr.copy.chunks != nil {
			t.Fatalf("size %d: overflowed copy still holds %d chunks", tc.size, len(tr.copy.chunks))
		}
		if tr.copy.size > tc.limit {
			t.Fatalf("copy grew to %d past limit %d", tr.copy.size, tc.limit)
		}
	}
}

// TestTeeClaimed: once Dispatch has claimed the tee, reads by a transport
// still streaming the live body are no longer recorded.
func TestTeeClaimed(t *testing.T) {
	data := randomBytes(1000, 5)
	tr := newTee(bytes.NewReader(data), 1<<20)
	buf := make([]byte, 100)
	if _, err := io.ReadFull(tr, buf); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	tr.claimed = true
	tr.mu.Unlock()
	rest, err := io.ReadAll(tr)
	if err != nil || len(rest) != 900 {
		t.Fatalf("live read after claim: %d bytes, %v", len(rest), err)
	}
	if tr.copy.size != 100 || tr.eof {
		t.Fatalf("claimed tee still recording: size %d eof %v", tr.copy.size, tr.eof)
	}
}

// TestTeeIncomplete: an upload that fails half way never looks complete.
func TestTeeIncomplete(t *testing.T) {
	data := randomBytes(5000, 6)
	tr := newTee(iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader(data))), 1<<20)
	buf := make([]byte, 10)
	var err error
	for err == nil {
		_, err = tr.Read(buf)
	}
	if err == io.EOF || tr.eof {
		t.Fatalf("tee of a failing body reports eof (err %v)", err)
	}
}

type closeCounter struct {
	io.Reader
	n int
}

func (c *closeCounter) Close() error { c.n++; return nil }

func TestTeeClosePassesThrough(t *testing.T) {
	cc := &closeCounter{Reader: bytes.NewReader(nil)}
	tr := &tee{body: cc, copy: &bodyCopy{}, limit: 10, mu: &sync.Mutex{}}
	if err := tr.Close(); err != nil || cc.n != 1 {
		t.Fatalf("Close: %v, body closed %d times", err, cc.n)
	}
}

// TestTeeConcurrentWithClaim runs a live transport reading through the tee
// while Dispatch claims it, under the race detector.
func TestTeeConcurrentWithClaim(t *testing.T) {
	data := randomBytes(256<<10, 8)
	pr, pw := io.Pipe()
	tr := &tee{body: pr, copy: &bodyCopy{}, limit: 1 << 20, mu: &sync.Mutex{}}
	go func() {
		for i := 0; i < len(data); i += 1000 {
			if _, err := pw.Write(data[i:min(i+1000, len(data))]); err != nil {
				return
			}
		}
		pw.Close()
	}()
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(tr)
		done <- b
	}()
	tr.mu.Lock()
	tr.claimed = true
	size := tr.copy.size
	tr.mu.Unlock()
	got := <-done
	if !bytes.Equal(got, data) {
		t.Fatal("live side lost bytes")
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.copy.size != size {
		t.Fatalf("copy grew from %d to %d after being claimed", size, tr.copy.size)
	}
}
