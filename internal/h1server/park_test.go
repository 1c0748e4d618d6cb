//go:build linux

package h1server_test

import (
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/h1server"
)

// parkedConns opens n connections to ts, each with one request answered,
// and waits until all of them idled past the hold and were parked.
func parkedConns(t *testing.T, ts *testServer, n int) []*rawConn {
	t.Helper()
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dial(t, ts)
		resp, body := conns[i].roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
		wantStatus(t, resp, 200)
		wantBody(t, body, "hello")
	}
	waitFor(t, "the idle connections to be parked", func() bool { return h1server.ParkedConns(ts.Server) == n })
	return conns
}

// TestIdleConnectionsParkedWithoutGoroutines proves that keep-alive
// connections idle past the hold wait with no goroutine each (the
// figure bench/idlerss measures comes mostly from there), and that each
// is served again when its next request comes: alone, pipelined, in
// pieces.
func TestIdleConnectionsParkedWithoutGoroutines(t *testing.T) {
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler), IdleTimeout: time.Minute})
	base := runtime.NumGoroutine()
	const n = 200
	conns := parkedConns(t, ts, n)
	if g := runtime.NumGoroutine() - base; g > n/10 {
		t.Fatalf("%d goroutines more with %d parked connections, want a few", g, n)
	}
	for i, c := range conns {
		switch i % 3 {
		case 0:
			resp, body := c.roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
			wantStatus(t, resp, 200)
			wantBody(t, body, "hello")
		case 1:
			c.send("GET /length HTTP/1.1\r\nHost: x\r\n\r\nGET /length HTTP/1.1\r\nHost: x\r\n\r\n")
			for range 2 {
				resp, body := c.read("GET")
				wantStatus(t, resp, 200)
				wantBody(t, body, "hello")
			}
		case 2:
			c.send("G")
			time.Sleep(time.Millisecond)
			c.send("ET /length HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body := c.read("GET")
			wantStatus(t, resp, 200)
			wantBody(t, body, "hello")
		}
	}
	// Parked again after their second idle hold.
	waitFor(t, "the connections to be parked again", func() bool { return h1server.ParkedConns(ts.Server) == n })
	if got := h1server.Conns(ts.Server); got != n {
		t.Fatalf("%d connections, want %d", got, n)
	}
}

// TestParkedIdleTimeout proves that a parked connection is still closed
// at IdleTimeout, counted from its last request, and not before.
func TestParkedIdleTimeout(t *testing.T) {
	idle := h1server.IdleHold + 700*time.Millisecond
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler), IdleTimeout: idle})
	begin := time.Now()
	c := parkedConns(t, ts, 1)[0]
	c.expectClosed()
	if d := time.Since(begin); d < idle {
		t.Fatalf("closed after %v, before IdleTimeout %v", d, idle)
	}
	waitFor(t, "the connection to be forgotten", func() bool {
		return h1server.Conns(ts.Server) == 0 && h1server.ParkedConns(ts.Server) == 0
	})
}

// TestParkedPeerClose proves that a parked connection the client closes
// is closed and forgotten at once, not at IdleTimeout.
func TestParkedPeerClose(t *testing.T) {
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler), IdleTimeout: time.Hour})
	conns := parkedConns(t, ts, 3)
	conns[1].Close()
	waitFor(t, "the closed connection to be forgotten", func() bool {
		return h1server.Conns(ts.Server) == 2 && h1server.ParkedConns(ts.Server) == 2
	})
	// The others still serve.
	resp, _ := conns[0].roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
}

// TestShutdownParked proves that Shutdown closes parked connections at
// once, like other idle ones, and returns.
func TestShutdownParked(t *testing.T) {
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler), IdleTimeout: time.Hour})
	conns := parkedConns(t, ts, 5)
	begin := time.Now()
	ts.shutdown(t)
	if d := time.Since(begin); d > 2*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	for _, c := range conns {
		c.expectClosed()
	}
}

// TestCloseParked proves that Close closes parked connections too, and
// that the parker's goroutine ends with the server.
func TestCloseParked(t *testing.T) {
	base := runtime.NumGoroutine()
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler), IdleTimeout: time.Hour})
	conns := parkedConns(t, ts, 5)
	ts.Close()
	for _, c := range conns {
		c.expectClosed()
	}
	waitFor(t, "the connections to be forgotten", func() bool { return h1server.Conns(ts.Server) == 0 })
	ts.wait()
	waitFor(t, "the server's goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

// TestParkedConnectionMemory shows what a parked idle connection costs
// the process in Go memory (heap in use and goroutine stacks, after a
// collection), the part of bench/idlerss's figure the server controls;
// the client's end of each connection, in the same process, is counted
// too. With a goroutine waiting on each, stacks alone were 4 KiB.
func TestParkedConnectionMemory(t *testing.T) {
	ts := start(t, &h1server.Server{Handler: http.HandlerFunc(framingHandler), IdleTimeout: time.Hour})
	const n = 1000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	buf := make([]byte, 4096)
	for range n {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /length HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(timeout))
		if k, err := c.Read(buf); err != nil || !strings.HasSuffix(string(buf[:k]), "hello") {
			t.Fatalf("answer %q, %v", buf[:k], err)
		}
	}
	waitFor(t, "the idle connections to be parked", func() bool { return h1server.ParkedConns(ts.Server) == n })
	runtime.GC()
	runtime.GC() // the buffers' pools are emptied over two collections
	runtime.ReadMemStats(&after)
	heap := (int64(after.HeapInuse) - int64(before.HeapInuse)) / n
	stack := (int64(after.StackInuse) - int64(before.StackInuse)) / n
	t.Logf("per parked connection, both ends: heap %d B, stacks %d B", heap, stack)
	if heap+stack > 3<<10 {
		t.Errorf("a parked connection costs %d B of heap and stacks, want at most 3 KiB", heap+stack)
	}
}
