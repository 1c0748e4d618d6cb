package shadowtest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

func randBody(n int) ([]byte, string) {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// hideLength makes the client send a body chunked (unknown length).
type hideLength struct{ io.Reader }

// TestBodies: a body under max_body reaches live and shadow intact, with a
// known length and chunked; a body over max_body reaches live intact and
// the shadow not at all (skipped_body_too_large), decided up front with a
// Content-Length and while streaming without one; an upload that breaks
// off is never copied (skipped_body_incomplete); an upgrade is not copied.
func TestBodies(t *testing.T) {
	live := newUpstream(t, "live", nil)
	big := newUpstream(t, "big", nil)
	small := newUpstream(t, "small", nil)
	m1, m2, m3 := newUpstream(t, "m1", nil), newUpstream(t, "m2", nil), newUpstream(t, "m3", nil)
	g := startGW(t, fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  big: {endpoints: [%q]}
  small: {endpoints: [%q]}
  m1: {endpoints: [%q]}
  m2: {endpoints: [%q]}
  m3: {endpoints: [%q]}
routes:
  - name: mixed
    match: {path_prefix: /mixed}
    backend: live
    shadow:
      - {backend: m1, percent: 100, unsafe: allow}
      - {backend: m2, percent: 100, unsafe: allow, max_body: 512KiB}
      - {backend: m3, percent: 100, unsafe: allow, max_body: 64KiB}
  - name: upload
    match: {path_prefix: /upload}
    backend: live
    shadow:
      - {backend: big, percent: 100, unsafe: allow}
  - name: limited
    match: {path_prefix: /limited}
    backend: live
    shadow:
      - {backend: small, percent: 100, unsafe: allow, max_body: 64KiB}
`, live.URL, big.URL, small.URL, m1.URL, m2.URL, m3.URL))
	c := testkit.NewClient(t, 2, testkit.Wait.Timeout)
	const okBody = "answer from live\n"

	// Targets with different max_body on one route share one copy of the
	// body: those whose limit it fits get it intact, the other none.
	for i, chunked := range []bool{false, true} {
		body, sum := randBody(100 << 10)
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = hideLength{r}
		}
		id := fmt.Sprint("mixed-", chunked)
		if res := testkit.Do(t, c, "PUT", g.URL+"/mixed", r, "X-Request-Id", id); res.Status != 200 {
			t.Fatalf("mixed: %d", res.Status)
		}
		g.waitShadow(t, "mixed", "m3", "skipped_body_too_large", eq(float64(i+1)), "")
		for _, u := range []*testkit.Upstream{m1, m2} {
			g.waitShadow(t, "mixed", u.Name, "ok", eq(float64(i+1)), "")
			if s := u.ByHeader("X-Request-Id", id); len(s) != 1 || s[0].SHA != sum {
				t.Errorf("mixed (chunked %v): %s did not get the body intact", chunked, u.Name)
			}
		}
		if l := live.ByHeader("X-Request-Id", id); len(l) != 1 || l[0].SHA != sum {
			t.Errorf("mixed (chunked %v): live did not get the body intact", chunked)
		}
	}
	if n := m3.Hits.Load(); n != 0 {
		t.Errorf("m3 (64KiB) got %d copies of 100 KiB bodies", n)
	}

	// 100 KiB under the default 1 MiB: intact at both, either framing.
	for _, chunked := range []bool{false, true} {
		body, sum := randBody(100 << 10)
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = hideLength{r}
		}
		id := fmt.Sprint("up-", chunked)
		if res := testkit.Do(t, c, "POST", g.URL+"/upload", r, "X-Request-Id", id); res.Status != 200 || string(res.Body) != okBody {
			t.Fatalf("upload (chunked %v): %d %q", chunked, res.Status, res.Body)
		}
		g.waitShadow(t, "upload", "big", "ok", eq(float64(map[bool]int{false: 1, true: 2}[chunked])), "")
		l, s := live.ByHeader("X-Request-Id", id), big.ByHeader("X-Request-Id", id)
		if len(l) != 1 || l[0].SHA != sum || l[0].Size != len(body) {
			t.Errorf("chunked %v: live got %+v, want the 100 KiB body intact", chunked, l)
		}
		if len(s) != 1 || s[0].SHA != sum || s[0].Size != len(body) {
			t.Errorf("chunked %v: shadow got %d copies, want the 100 KiB body intact", chunked, len(s))
		} else if s[0].Header.Get("Content-Length") != "" && s[0].Header.Get("Content-Length") != fmt.Sprint(len(body)) {
			t.Errorf("copy Content-Length %q", s[0].Header.Get("Content-Length"))
		}
	}

	// 200 KiB over a 64 KiB limit: live intact, shadow nothing.
	for i, chunked := range []bool{false, true} {
		body, sum := randBody(200 << 10)
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = hideLength{r}
		}
		id := fmt.Sprint("over-", chunked)
		if res := testkit.Do(t, c, "POST", g.URL+"/limited", r, "X-Request-Id", id); res.Status != 200 || string(res.Body) != okBody {
			t.Fatalf("over limit (chunked %v): %d %q", chunked, res.Status, res.Body)
		}
		m := g.waitShadow(t, "limited", "small", "skipped_body_too_large", eq(float64(i+1)), "")
		if l := live.ByHeader("X-Request-Id", id); len(l) != 1 || l[0].SHA != sum {
			t.Errorf("over limit (chunked %v): live did not get the body intact", chunked)
		}
		if n := small.Hits.Load(); n != 0 {
			t.Errorf("over limit (chunked %v): shadow got %d requests, want none (never truncated)", chunked, n)
		}
		if o := m.outcomes("limited", "small"); sent(o) != 0 || total(o) != float64(i+1) {
			t.Errorf("over limit: outcomes %v", o)
		}
	}
	// Exactly at the limit is fine.
	body, sum := randBody(64 << 10)
	testkit.Do(t, c, "POST", g.URL+"/limited", hideLength{bytes.NewReader(body)}, "X-Request-Id", "at-limit")
	g.waitShadow(t, "limited", "small", "ok", eq(1), "the copy of a body exactly at max_body")
	if s := small.ByHeader("X-Request-Id", "at-limit"); len(s) != 1 || s[0].SHA != sum {
		t.Errorf("body at max_body not copied intact")
	}

	// An upload that breaks off half way: live fails, nothing is copied.
	conn, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("a", 5000))
	time.Sleep(50 * time.Millisecond)
	conn.Close()
	g.waitShadow(t, "upload", "big", "skipped_body_incomplete", eq(1), "the broken upload")
	if n := big.Hits.Load(); n != 2 {
		t.Errorf("big target got %d copies, want only the 2 complete uploads", n)
	}

	// An upgrade request is never copied.
	testkit.Do(t, c, "GET", g.URL+"/upload/ws", nil, "Connection", "Upgrade", "Upgrade", "websocket")
	g.waitShadow(t, "upload", "big", "skipped_upgrade", eq(1), "")
}

// TestUploadStreamedWithShadow: with shadowing on, the live backend gets
// the first part of an upload before the client has sent the rest (the
// tee does not buffer), and the shadow still gets the whole body.
func TestUploadStreamedWithShadow(t *testing.T) {
	firstSeen := make(chan string, 1)
	live := newUpstream(t, "live", func(w http.ResponseWriter, r *http.Request) {
		first := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			firstSeen <- "error: " + err.Error()
			return
		}
		firstSeen <- string(first)
		rest, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s|%s", first, rest)
	})
	v2 := newUpstream(t, "v2", nil)
	g := startGW(t, fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: up
    backend: live
    shadow:
      - {backend: v2, percent: 100, unsafe: allow}
`, live.URL, v2.URL))

	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	type res struct {
		r   testkit.Response
		err error
	}
	done := make(chan res, 1)
	c := testkit.NewClient(t, 1, testkit.Wait.Timeout)
	go func() {
		r, err := testkit.Send(c, "POST", g.URL+"/upload", pr)
		done <- res{r, err}
	}()
	if _, err := pw.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-firstSeen:
		if got != "first" {
			t.Fatalf("live read %q", got)
		}
	case <-time.After(testkit.Wait.Timeout):
		t.Fatal("live backend did not get the first chunk before the client sent the rest: the upload is buffered")
	}
	if _, err := pw.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var r res
	select {
	case r = <-done:
	case <-time.After(testkit.Wait.Timeout):
		t.Fatal("no response")
	}
	if r.err != nil || r.r.Status != 200 || string(r.r.Body) != "first|second" {
		t.Fatalf("live answer %v %d %q", r.err, r.r.Status, r.r.Body)
	}
	g.waitShadow(t, "up", "v2", "ok", eq(1), "")
	sum := sha256.Sum256([]byte("firstsecond"))
	if s := v2.Seen(); len(s) != 1 || s[0].SHA != hex.EncodeToString(sum[:]) {
		t.Fatalf("shadow got %+v, want the whole streamed body", s)
	}
}
