//go:build linux

package h1client

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// readSyscalls is the number of read system calls the process made so
// far (read, readv, pread: what a socket's Read uses; not recvfrom).
func readSyscalls(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no read system call count here: %v", err)
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("syscr: ")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no syscr in /proc/self/io")
	return 0
}

// TestExchangeReadsResponseOnce: on a pooled connection the response is
// read with one read system call, not a read that says EAGAIN (the
// server has not answered yet), then the wait, then the read: sendLast
// waits for the socket to become readable before the first read. With
// one P the order of events is fixed: the client writes and waits, the
// server reads the request, answers, and reads again (EAGAIN), then the
// client reads. So the server's two reads and the client's one make
// three per exchange; the build before sendLast made four. The peek
// (recvfrom) is not counted here; the desync tests show it still runs.
func TestExchangeReadsResponseOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		// Whole request heads arrive in one segment: one read each.
		br := bufio.NewReader(nc)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(nc, answer); err != nil {
				return
			}
		}
	}()
	p := New(ln.Addr().String(), Options{})
	t.Cleanup(p.Close)
	req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	exchange := func() {
		resp, err := p.Exchange(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for range 20 {
		exchange()
	}
	const n = 500
	before := readSyscalls(t)
	for range n {
		exchange()
	}
	perExchange := float64(readSyscalls(t)-before) / n
	t.Logf("%.2f read system calls per exchange (client and server)", perExchange)
	if perExchange > 3.5 {
		t.Errorf("%.2f read system calls per exchange, want 3 (the client's one and the server's two)", perExchange)
	}
}
