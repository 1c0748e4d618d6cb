package h1server_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/h1server"
)

// TestRejectsBadRequests proves that a request the server cannot or will
// not serve is answered with the status net/http's server gives it, with
// "Connection: close", without running the handler, and that the server
// then closes the connection.
func TestRejectsBadRequests(t *testing.T) {
	// Like net/http, the cap has slack: 4096 bytes and a buffer beyond it.
	bigHeader := "X-Big: " + strings.Repeat("a", 16<<10) + "\r\n"
	for _, tc := range []struct {
		name     string
		req      string
		code     int
		bodyPart string // the plain-text body must contain this
	}{
		{"garbage request line", "GARBAGE\r\n\r\n", 400, "400 Bad Request"},
		{"bad version", "GET / HTTP/x.y\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
		{"missing host", "GET / HTTP/1.1\r\n\r\n", 400, "missing required Host header"},
		{"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, "missing required Host header"},
		{"malformed host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "400 Bad Request"},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "400 Bad Request"},
		{"invalid header name", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, "400 Bad Request"},
		{"header line without colon", "GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", 400, "400 Bad Request"},
		{"header too large", "GET / HTTP/1.1\r\nHost: x\r\n" + bigHeader + "\r\n", 431, "431 Request Header Fields Too Large"},
		{"HTTP/2.0 version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "unsupported protocol version"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "unsupported protocol version"},
		{"unsupported transfer encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unsupported transfer encoding"},
		{"bad content length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400, "400 Bad Request"},
		{"conflicting content lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "400 Bad Request"},
		{"unknown expectation", "GET / HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n\r\n", 417, "417 Expectation Failed"},
		{"absolute form without host", "GET http://example.com/a HTTP/1.1\r\n\r\n", 400, "missing required Host header"},
		{"absolute form without host, LF only", "GET http://example.com/a HTTP/1.1\nX-A: 1\n\n", 400, "missing required Host header"},
		{"absolute form, host-like field", "GET http://example.com/a HTTP/1.1\r\nX-Host: x\r\nHostname: y\r\n\r\n", 400, "missing required Host header"},
		{"absolute form with a body, without host", "POST http://example.com/a HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", 400, "missing required Host header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			ts := start(t, &h1server.Server{
				Handler:        http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }),
				MaxHeaderBytes: 1024,
			})
			c := dial(t, ts)
			resp, body := c.roundTrip(tc.req)
			wantStatus(t, resp, tc.code)
			if resp.Proto != "HTTP/1.1" || !resp.Close {
				t.Fatalf("proto %q, close %v; want HTTP/1.1 with Connection: close", resp.Proto, resp.Close)
			}
			wantHeader(t, resp.Header, "Content-Type", "text/plain; charset=utf-8")
			if !strings.Contains(body, tc.bodyPart) {
				t.Fatalf("body %q does not contain %q", body, tc.bodyPart)
			}
			c.expectClosed()
			if n := calls.Load(); n != 0 {
				t.Fatalf("handler ran %d times", n)
			}
		})
	}
}

// TestHeaderWithinLimit proves the other side of the 431: a head just
// under MaxHeaderBytes is served.
func TestHeaderWithinLimit(t *testing.T) {
	ts := start(t, &h1server.Server{
		Handler:        http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Header.Get("X-Big")) }),
		MaxHeaderBytes: 1024,
	})
	c := dial(t, ts)
	v := strings.Repeat("b", 900)
	resp, body := c.roundTrip("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + v + "\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, v)
}

// TestBadRequestAfterGoodOne proves that a malformed request on a
// keep-alive connection is refused after the good request before it was
// answered in full.
func TestBadRequestAfterGoodOne(t *testing.T) {
	ts := serve(t, framingHandler)
	c := dial(t, ts)
	c.send("GET /length HTTP/1.1\r\nHost: x\r\n\r\nBROKEN\r\n\r\n")
	resp, body := c.read("GET")
	wantStatus(t, resp, 200)
	wantBody(t, body, "hello")
	resp, _ = c.read("GET")
	wantStatus(t, resp, 400)
	c.expectClosed()
}

// TestResponseHeaderSafety proves that a response header value cannot
// split the response (CR and LF become spaces, as with net/http) and
// that a field with an invalid name is left out.
func TestResponseHeaderSafety(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Evil"] = []string{"a\r\nSet-Cookie: stolen=1"}
		h["X-Lf"] = []string{"b\nc"}
		h["Bad Name"] = []string{"v"}
		h["Bad:Name"] = []string{"v"}
		h["X-Ok"] = []string{"  padded\t"}
		io.WriteString(w, "body")
	})
	c := dial(t, ts)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// Read the head as bytes first: the checks below are about the wire.
	var head strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	lines := strings.Split(strings.TrimSuffix(head.String(), "\r\n\r\n"), "\r\n")
	got := map[string]string{}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("malformed header line %q in %q", l, head.String())
		}
		got[k] = v
	}
	if got["X-Evil"] != "a  Set-Cookie: stolen=1" || got["X-Lf"] != "b c" || got["X-Ok"] != "padded" {
		t.Fatalf("header %q", got)
	}
	for _, k := range []string{"Set-Cookie", "Bad Name", "Bad"} {
		if _, ok := got[k]; ok {
			t.Fatalf("header has %q: %q", k, head.String())
		}
	}
	if len(got) != 5 { // X-Evil, X-Lf, X-Ok, Date, Transfer-Encoding
		t.Fatalf("header fields %q", got)
	}
}

// TestContentLengthMismatch proves that a handler writing past its
// declared Content-Length gets http.ErrContentLength (and nothing of that
// write is sent), and that one writing less has the connection closed
// after the short body, so the client cannot mistake what follows.
func TestContentLengthMismatch(t *testing.T) {
	type result struct {
		n   int
		err error
	}
	writes := make(chan result, 2)
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		switch r.URL.Path {
		case "/over":
			n, err := io.WriteString(w, strings.Repeat("x", 20))
			writes <- result{n, err}
			n, err = io.WriteString(w, "0123456789")
			writes <- result{n, err}
		case "/under":
			io.WriteString(w, "12345")
		}
	})
	c := dial(t, ts)
	resp, body := c.roundTrip("GET /over HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "0123456789")
	if r := recv(t, writes, "first Write"); r.n != 0 || !errors.Is(r.err, http.ErrContentLength) {
		t.Fatalf("Write past the length = %d, %v; want 0, http.ErrContentLength", r.n, r.err)
	}
	if r := recv(t, writes, "second Write"); r.n != 10 || r.err != nil {
		t.Fatalf("Write within the length = %d, %v", r.n, r.err)
	}

	// The full body was sent: the connection carries the next request.
	c.send("GET /under HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, 200)
	b, err := io.ReadAll(resp.Body)
	if string(b) != "12345" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body: %q, %v; want \"12345\", unexpected EOF", b, err)
	}
	c.expectClosed()
}

// TestAbsoluteFormHost: RFC 9112, section 3.2: an HTTP/1.1 request in
// absolute form needs a Host field like any other (the target's authority
// then wins over it); one without is refused, however its head arrives.
// HTTP/1.0 needs none.
func TestAbsoluteFormHost(t *testing.T) {
	var calls atomic.Int32
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, r.Host+" "+r.URL.Path)
	})})
	t.Run("served with a Host field", func(t *testing.T) {
		for _, req := range []string{
			"GET http://example.com/a HTTP/1.1\r\nHost: other.example\r\n\r\n",
			"GET http://example.com/a HTTP/1.1\r\nX-A: 1\r\nhOsT: other.example\r\n\r\n",
			"GET http://example.com/a HTTP/1.0\r\n\r\n",
		} {
			c := dial(t, ts)
			resp, body := c.roundTrip(req)
			wantStatus(t, resp, 200)
			wantBody(t, body, "example.com /a")
		}
	})
	t.Run("refused when the head comes in pieces", func(t *testing.T) {
		before := calls.Load()
		for _, parts := range [][]string{
			{"GET http://exa", "mple.com/a HTTP/1.1\r\n", "X-A: 1\r\n", "\r\n"},
			{"GET", " http://example.com/a HTTP/1.1\r\nX-A: 1\r\n\r\n"},
			{"GET http://example.com/a HTTP/1.1\r\nX-A: 1\r\n", "Hos", "tname: x\r\n\r\n"},
		} {
			c := dial(t, ts)
			for _, p := range parts {
				c.send(p)
				time.Sleep(20 * time.Millisecond)
			}
			resp, body := c.read("GET")
			wantStatus(t, resp, 400)
			if !strings.Contains(body, "missing required Host header") {
				t.Fatalf("body %q", body)
			}
			c.expectClosed()
		}
		if calls.Load() != before {
			t.Fatalf("the handler ran for a request without Host")
		}
	})
	t.Run("served when the Host field comes in a later piece", func(t *testing.T) {
		c := dial(t, ts)
		c.send("GET http://example.com/a HTTP/1.1\r\nX-A: 1\r\n")
		time.Sleep(20 * time.Millisecond)
		c.send("Host: example.com\r\n\r\n")
		resp, body := c.read("GET")
		wantStatus(t, resp, 200)
		wantBody(t, body, "example.com /a")
	})
}

// TestHeaderCountLimit proves that a head with more field lines than
// MaxHeaderCount gets 431 without the handler running, whether it is read
// in one pass or by http.ReadRequest (a body, a head in pieces), and that
// a head at the limit is served. The default takes 100,000 one-byte
// fields (400 KB, well inside the 1 MiB head) as nginx does: refused.
func TestHeaderCountLimit(t *testing.T) {
	fields := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-F%d: 1\r\n", i)
		}
		return b.String()
	}
	var calls atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.Copy(io.Discard, r.Body)
	})
	limited := start(t, &h1server.Server{Handler: h, MaxHeaderCount: 10})
	for _, tc := range []struct {
		name, req string
		split     bool
		code      int
	}{
		{"one pass, at the limit", "GET / HTTP/1.1\r\nHost: x\r\n" + fields(9) + "\r\n", false, 200},
		{"one pass, over", "GET / HTTP/1.1\r\nHost: x\r\n" + fields(10) + "\r\n", false, 431},
		{"with a body, at the limit", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n" + fields(8) + "\r\nab", false, 200},
		{"with a body, over", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n" + fields(9) + "\r\nab", false, 431},
		{"in pieces, over", "GET / HTTP/1.1\r\nHost: x\r\n" + fields(10) + "\r\n", true, 431},
		{"in pieces, same name, over", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("A: 1\r\n", 10) + "\r\n", true, 431},
	} {
		before := calls.Load()
		c := dial(t, limited)
		if tc.split {
			half := len(tc.req) / 2
			c.send(tc.req[:half])
			time.Sleep(20 * time.Millisecond)
			c.send(tc.req[half:])
		} else {
			c.send(tc.req)
		}
		resp, body := c.read("GET")
		if resp.StatusCode != tc.code {
			t.Fatalf("%s: status %d %q, want %d", tc.name, resp.StatusCode, body, tc.code)
		}
		if tc.code == 431 {
			if !strings.Contains(body, "too many header fields") || calls.Load() != before {
				t.Fatalf("%s: body %q, handler calls %d", tc.name, body, calls.Load()-before)
			}
			c.expectClosed()
		}
	}
	// The default: 100,000 one-byte header lines are refused.
	def := start(t, &h1server.Server{Handler: h})
	c := dial(t, def)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("a:\r\n", 100000) + "\r\n")
	resp, _ := c.read("GET")
	wantStatus(t, resp, 431)
	c = dial(t, def)
	resp, _ = c.roundTrip("GET / HTTP/1.1\r\nHost: x\r\n" + fields(99) + "\r\n")
	wantStatus(t, resp, 200)
}
