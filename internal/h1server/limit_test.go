package h1server_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/h1server"
)

// TestLimitListener proves that LimitListener keeps at most n accepted
// connections open, that closing one lets the next in, that its
// connections are still sockets to the server (SyscallConn), and that
// Close ends an Accept waiting for a place.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := h1server.LimitListener(inner, 2)
	accepted := make(chan net.Conn, 4)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	var open []net.Conn
	for range 2 {
		select {
		case c := <-accepted:
			if _, ok := c.(syscall.Conn); !ok {
				t.Fatalf("accepted %T, not a syscall.Conn", c)
			}
			open = append(open, c)
		case <-time.After(timeout):
			t.Fatal("the first two connections were not accepted")
		}
	}
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted with two open and a limit of 2")
	case <-time.After(100 * time.Millisecond):
	}
	open[0].Close()
	open[0].Close() // a second Close gives back nothing more
	select {
	case c := <-accepted:
		defer c.Close() // two open again: the next Accept waits for a place
	case <-time.After(timeout):
		t.Fatal("the third connection was not accepted after one closed")
	}
	ln.Close()
	select {
	case <-acceptErr:
	case <-time.After(timeout):
		t.Fatal("Accept did not return after Close")
	}
	open[1].Close()
}
