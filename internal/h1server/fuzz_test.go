package h1server_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/h1server"
	"github.com/umbragw/umbra/test/testkit"
)

// fuzzHandler echoes the method, path and body size, through the writer
// paths picked by the path: flushing, trailers, a 103, a 204.
func fuzzHandler(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	switch r.URL.Path {
	case "/204":
		w.WriteHeader(http.StatusNoContent)
		return
	case "/103":
		w.Header().Set("Link", "</a>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
	case "/trailer":
		w.Header().Set("Trailer", "X-T")
		defer w.Header().Set("X-T", "t")
	}
	fmt.Fprintf(w, "%s %q %d", r.Method, r.URL.Path, n)
	if r.URL.Path == "/flush" {
		w.(http.Flusher).Flush()
		io.WriteString(w, " flushed")
	}
}

// FuzzServe writes arbitrary bytes to a real connection of a running
// Server, half-closes it and reads all the server answers. The server
// must not panic (nor log a recovered panic) or hang (the answer must end
// within the deadline), and what it wrote must parse as a sequence of
// HTTP/1.x responses with valid status lines.
func FuzzServe(f *testing.F) {
	seeds := []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /flush HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /trailer HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /103 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x00\xff garbage \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20000) + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET http://example.com/ HTTP/1.1\r\n\r\nGET http://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /after-close HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv := &h1server.Server{
		Handler:           http.HandlerFunc(fuzzHandler),
		ReadHeaderTimeout: 2 * time.Second,
		IdleTimeout:       2 * time.Second,
		MaxHeaderBytes:    4096,
	}
	// The server recovers panics, of handlers and its own, and logs them:
	// any log line fails the input that caused it.
	var logs *testkit.LogBuffer
	srv.Log, logs = logger()
	go srv.Serve(ln)
	f.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			nc.Write(data) // the server may stop reading: not an error
			nc.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(nc)
		if s := logs.String(); s != "" {
			t.Fatalf("server logged: %s", s)
		}
		reset := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no end of the answer within 5s; read %q", out)
		}
		if err != nil && !reset {
			t.Fatalf("read: %v", err)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		for i := 0; ; i++ {
			if _, err := br.Peek(1); err == io.EOF {
				break // ReadResponse would say ErrUnexpectedEOF
			}
			resp, err := http.ReadResponse(br, nil)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
			}
			if err != nil {
				if reset {
					break // the reset may have cut the answer
				}
				t.Fatalf("response %d: %v; answer %q", i, err, out)
			}
			if resp.ProtoMajor != 1 || resp.StatusCode < 100 || resp.StatusCode > 599 || resp.Status == "" {
				t.Fatalf("response %d: status line %q %q; answer %q", i, resp.Proto, resp.Status, out)
			}
		}
	})
}
