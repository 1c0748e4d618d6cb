package testkit

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// RawServer accepts TCP connections on loopback and serves each with a
// function of the raw net.Conn, for tests that must see or write bytes
// net/http would hide or normalise. Cleanup closes it.
type RawServer struct {
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
	accepted atomic.Int64
}

// NewRawServer starts a RawServer serving each connection with serve in
// its own goroutine.
func NewRawServer(t testing.TB, serve func(c net.Conn)) *RawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &RawServer{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.acceptLoop(serve)
	t.Cleanup(s.Close)
	return s
}

func (s *RawServer) acceptLoop(serve func(c net.Conn)) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			serve(c)
		}()
	}
}

// URL is the server's http:// base URL.
func (s *RawServer) URL() string { return "http://" + s.ln.Addr().String() }

// Accepted is the number of connections accepted so far.
func (s *RawServer) Accepted() int64 { return s.accepted.Load() }

// Close stops accepting, closes every connection and waits for the
// serving goroutines; it is idempotent.
func (s *RawServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
