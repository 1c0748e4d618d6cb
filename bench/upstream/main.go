// Command upstream is the benchmark origin server: a tiny, fast HTTP/1.1
// server that answers every request (any method, any path) with the same
// small JSON body (Content-Type: application/json). It is the backend behind
// every proxy in bench/run.sh and is also hit directly for the "direct"
// reference row.
//
// On the 2-core bench machine the upstream shares core 1 with wrk, so every
// microsecond it spends per request is taken from the load generator and
// caps the figures of the fastest proxies. It therefore does not use
// net/http: it reads request heads with a bufio.Reader and writes a prebuilt
// response (its Date header refreshed once a second), about 3x cheaper per
// request than net/http. It still speaks enough HTTP/1.1 for any proxy:
// keep-alive, pipelining, request bodies (Content-Length or chunked),
// HTTP/1.0 and Connection: close, HEAD. -nethttp switches to a plain
// net/http server for comparison.
//
// Variants used by the shadow benchmarks:
//
//	-delay 200ms   answer every request after sleeping 200ms (slow shadow)
//	-hang          accept connections, read requests, never answer (dead shadow)
//
// Standard library only; run it pinned to the load-generator core with
// GOMAXPROCS=1 (see bench/lib.sh).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// body is a fixed 143-byte JSON document.
var body = []byte(`{"id":12345,"name":"umbra-bench","status":"ok","tags":["alpha","beta","gamma"],"price":19.99,"in_stock":true,"updated":"2024-01-01T00:00:00Z"}` + "\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:18000", "listen address")
	delay := flag.Duration("delay", 0, "sleep this long before answering each request (slow variant)")
	hang := flag.Bool("hang", false, "accept connections and never answer (dead variant)")
	useNetHTTP := flag.Bool("nethttp", false, "serve with net/http instead of the minimal HTTP/1.1 loop")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("upstream: listen %s: %v", *addr, err)
	}
	mode := "fast"
	switch {
	case *hang:
		mode = "hang"
	case *useNetHTTP:
		mode = "net/http"
	}
	log.Printf("upstream: listening on %s (mode=%s delay=%s, body %d bytes)", ln.Addr(), mode, *delay, len(body))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s := &server{delay: *delay, hang: *hang}
	switch {
	case *useNetHTTP && !*hang:
		serveNetHTTP(ctx, ln, *delay)
	default:
		s.serve(ctx, ln)
	}
}

// responses holds the prebuilt response bytes for the current second.
type responses struct {
	keepAlive []byte // HTTP/1.1 keep-alive (also HTTP/1.0 with Connection: keep-alive, see below)
	ka10      []byte // HTTP/1.0 client asking for keep-alive
	closing   []byte // Connection: close
	headLen   int    // length of the head part of keepAlive (for HEAD)
	head10    int
	headClose int
}

var current atomic.Pointer[responses]

func buildResponses(now time.Time) *responses {
	date := now.UTC().Format(http.TimeFormat)
	mk := func(extra string) ([]byte, int) {
		var b bytes.Buffer
		b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ")
		b.WriteString(strconv.Itoa(len(body)))
		b.WriteString("\r\nDate: ")
		b.WriteString(date)
		b.WriteString("\r\n")
		b.WriteString(extra)
		b.WriteString("\r\n")
		n := b.Len()
		b.Write(body)
		return b.Bytes(), n
	}
	r := &responses{}
	r.keepAlive, r.headLen = mk("")
	r.ka10, r.head10 = mk("Connection: keep-alive\r\n")
	r.closing, r.headClose = mk("Connection: close\r\n")
	return r
}

type server struct {
	delay time.Duration
	hang  bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (s *server) serve(ctx context.Context, ln net.Listener) {
	current.Store(buildResponses(time.Now()))
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				current.Store(buildResponses(now))
			case <-ctx.Done():
				return
			}
		}
	}()
	s.conns = map[net.Conn]struct{}{}
	go func() {
		<-ctx.Done()
		_ = ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fmt.Fprintf(os.Stderr, "upstream: accept: %v\n", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go func() {
			if s.hang {
				_, _ = io.Copy(io.Discard, c)
			} else {
				s.serveConn(c)
			}
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

var errBadRequest = errors.New("bad request")

// request is what serveConn needs to know about one request head.
type request struct {
	head      bool  // HEAD: no body in the response
	http10    bool  // HTTP/1.0
	keepAlive bool  // Connection: keep-alive (matters for HTTP/1.0)
	close     bool  // Connection: close
	chunked   bool  // Transfer-Encoding: chunked request body
	length    int64 // Content-Length of the request body
}

func (s *server) serveConn(c net.Conn) {
	br := bufio.NewReaderSize(c, 16<<10)
	out := make([]byte, 0, 4096)
	for {
		req, err := readHead(br)
		if err != nil {
			if errors.Is(err, errBadRequest) {
				_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			}
			return
		}
		switch {
		case req.chunked:
			if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(br)); err != nil {
				return
			}
			// trailer section: lines up to an empty one
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					break
				}
			}
		case req.length > 0:
			if _, err := br.Discard(int(req.length)); err != nil {
				return
			}
		}
		if s.delay > 0 {
			time.Sleep(s.delay)
		}
		r := current.Load()
		closing := req.close || (req.http10 && !req.keepAlive)
		resp, headLen := r.keepAlive, r.headLen
		switch {
		case closing:
			resp, headLen = r.closing, r.headClose
		case req.http10:
			resp, headLen = r.ka10, r.head10
		}
		if req.head {
			resp = resp[:headLen]
		}
		out = append(out, resp...)
		// Flush unless more pipelined requests are already buffered.
		if closing || br.Buffered() == 0 || len(out) > 32<<10 {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
		if closing {
			return
		}
	}
}

// readHead reads one request line and its header fields.
func readHead(br *bufio.Reader) (request, error) {
	var req request
	line, err := br.ReadSlice('\n')
	// tolerate empty lines before a request line (RFC 9112 2.2)
	for err == nil && len(bytes.TrimRight(line, "\r\n")) == 0 {
		line, err = br.ReadSlice('\n')
	}
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return req, errBadRequest
		}
		return req, err
	}
	line = bytes.TrimRight(line, "\r\n")
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1 {
		return req, errBadRequest
	}
	req.head = string(line[:sp1]) == "HEAD"
	switch string(line[sp2+1:]) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		req.http10 = true
	default:
		return req, errBadRequest
	}
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return req, errBadRequest
			}
			return req, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return req, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return req, errBadRequest
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch len(name) {
		case len("Connection"):
			if bytes.EqualFold(name, []byte("Connection")) {
				for _, tok := range bytes.Split(value, []byte(",")) {
					tok = bytes.TrimSpace(tok)
					switch {
					case bytes.EqualFold(tok, []byte("close")):
						req.close = true
					case bytes.EqualFold(tok, []byte("keep-alive")):
						req.keepAlive = true
					}
				}
			}
		case len("Content-Length"):
			if bytes.EqualFold(name, []byte("Content-Length")) {
				n, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || n < 0 {
					return req, errBadRequest
				}
				req.length = n
			}
		case len("Transfer-Encoding"):
			if bytes.EqualFold(name, []byte("Transfer-Encoding")) {
				if !bytes.EqualFold(value, []byte("chunked")) {
					return req, errBadRequest
				}
				req.chunked = true
			}
		}
	}
}

// serveNetHTTP is the plain net/http variant (-nethttp).
func serveNetHTTP(ctx context.Context, ln net.Listener, delay time.Duration) {
	contentLength := strconv.Itoa(len(body))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{contentLength}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("upstream: serve: %v", err)
	}
}
