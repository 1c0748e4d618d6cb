package h1client

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzResponse feeds arbitrary bytes as the server's response over a real
// loopback connection. Each input is sent twice on one pool: the second
// request meets the connection the server half-closed after the first
// response (the stale-connection retry) or a fresh one. The client must
// not panic or hang, and whenever it reports an error (from RoundTrip or
// from reading the body) the pool must hold no connection.
func FuzzResponse(f *testing.F) {
	seeds := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nraw bytes",
		"HTTP/1.0 200 OK\r\n\r\nclose delimited",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 999 High\r\nContent-Length: 0\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTRP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\n folded: header\r\n\r\n",
		"HTTP/1.1 200\r\n\r\n",
		"\r\n\r\n",
		"",
		"\x00\xff\xfe",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}

	// One listener for the whole fuzz run (per worker process): each
	// connection reads a request, writes the current input, half-closes
	// and waits for the client to close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	addr := ln.Addr().String()
	var script atomic.Pointer[[]byte]
	empty := []byte{}
	script.Store(&empty)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(nc)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				nc.Write(*script.Load())
				nc.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, br)
			}()
		}
	}()
	f.Cleanup(func() { ln.Close() })

	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		script.Store(&data)
		p := New(addr, Options{HeaderTimeout: 2 * time.Second})
		defer p.Close()
		method := "GET"
		if head {
			method = "HEAD"
		}
		for i := 0; i < 2; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := p.RoundTrip(req)
			if err != nil {
				cancel()
				if n := p.Idle(); n != 0 {
					t.Fatalf("request %d: RoundTrip error %v, and %d idle connections", i, err, n)
				}
				continue
			}
			if resp.Body == nil || resp.Header == nil {
				t.Fatalf("request %d: response without Body or Header", i)
			}
			if resp.StatusCode >= 100 && resp.StatusCode <= 199 && resp.StatusCode != 101 {
				t.Fatalf("request %d: 1xx %d returned as final", i, resp.StatusCode)
			}
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if err != nil {
				if n := p.Idle(); n != 0 {
					t.Fatalf("request %d: body error %v, and %d idle connections", i, err, n)
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("request %d: took longer than 3s", i)
			}
			cancel()
			if p.Idle() > 1 {
				t.Fatalf("request %d: %d idle connections, at most 1 expected", i, p.Idle())
			}
		}
	})
}
