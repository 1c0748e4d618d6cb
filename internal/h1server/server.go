// Package h1server serves HTTP/1.x over plain TCP to an http.Handler with
// one goroutine per connection that reads a request, runs the handler in
// that same goroutine and writes the response, and nothing else running
// between requests.
//
// Why not net/http's server: at umbra's request rates its per-request
// machinery costs more than the proxying itself. For every request it
// starts a background read to notice a client hanging up (a goroutine, a
// system call that finds nothing, and two read-deadline changes), sorts
// the response headers, and writes through two buffered layers; together
// about a tenth of the gateway's CPU (docs/benchmarks.md). fasthttp and
// the event-loop servers avoid that but do not serve an http.Handler, and
// every feature of umbra is one. This package keeps the handler contract
// and the request parser (http.ReadRequest, the code net/http uses) and
// replaces only the connection loop and the response writer:
//
//   - A client hanging up is watched for only once a request has run for
//     WatchAfter; quick requests, nearly all of them, never pay for it.
//   - Response headers are written in map order (HTTP does not order
//     distinct fields), without sorting, straight into the connection's
//     buffer.
//
// TLS listeners (and with them HTTP/2) stay on net/http.
package h1server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.0 and HTTP/1.1 connections. Its zero value, with a
// Handler, is usable; the limits default as documented.
type Server struct {
	Handler http.Handler
	// BaseContext is the parent of every request's context; cancelling it
	// cancels them all. Nil: context.Background().
	BaseContext context.Context
	// ReadHeaderTimeout bounds reading a request's head once its first
	// byte arrived, and a new connection's wait for that byte. 0: no
	// limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. 0: ReadHeaderTimeout; both 0: no limit. The first
	// request of a connection is due within ReadHeaderTimeout (IdleTimeout
	// when that is 0), as with net/http.
	IdleTimeout time.Duration
	// BodyReadTimeout bounds each wait for more of a request body (the
	// time between reads, as nginx's client_body_timeout, not the whole
	// upload): a client that stops sending halfway no longer holds a
	// handler, an upstream exchange and its buffers forever. 0: no limit.
	BodyReadTimeout time.Duration
	// MaxHeaderBytes caps a request head; a bigger one gets 431. 0:
	// http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxHeaderCount caps the field lines of a request head; more get 431.
	// Within MaxHeaderBytes a client could otherwise send a hundred
	// thousand tiny fields, each a map entry and a string to the gateway.
	// 0: DefaultMaxHeaderCount; negative: no limit.
	MaxHeaderCount int
	// WatchAfter is how long a request runs before its connection is
	// watched for the client hanging up, which cancels the request's
	// context: from its start for a request without a body, from the end
	// of its body otherwise (nothing else may read the connection then).
	// 0: 10ms; negative: at once.
	WatchAfter time.Duration
	// Log receives handler panics and accept errors. Nil: slog.Default().
	Log *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool // Shutdown or Close called: no new requests
	// buffered counts the connections holding read and write buffers.
	buffered atomic.Int64
	// parker keeps idle connections without goroutines.
	parker parker

	// Requests' contexts (internal/reqctx) take their values from values,
	// BaseContext without its cancellation; BaseContext ending cancels
	// them through one hook for the whole server, not one per request.
	baseOnce  sync.Once
	values    context.Context
	baseEnded atomic.Bool
}

// DefaultMaxHeaderCount is the field limit of a request head when
// MaxHeaderCount is 0: Envoy's and Apache's default (HAProxy's is 101);
// browsers send a few dozen.
const DefaultMaxHeaderCount = 100

func (s *Server) maxHeaderCount() int {
	switch {
	case s.MaxHeaderCount == 0:
		return DefaultMaxHeaderCount
	case s.MaxHeaderCount < 0:
		return int(^uint(0) >> 1)
	}
	return s.MaxHeaderCount
}

// Connection states, for Shutdown: idle connections are closed at once,
// active ones finish their request first.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
	// stateNew: accepted, first request not begun. Its request may be on
	// the way, and clients do not retry a request that failed on a fresh
	// connection: Shutdown closes it only after newConnGrace (as net/http).
	stateNew
)

// newConnGrace is how long Shutdown lets a new connection bring its first
// request; net/http waits 5 s too.
const newConnGrace = 5 * time.Second

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// Serve accepts connections on l until Shutdown or Close, and serves each
// in its own goroutine. It always returns a non-nil error.
func (s *Server) Serve(l net.Listener) error {
	if !s.track(l) {
		l.Close()
		return ErrServerClosed
	}
	defer s.untrack(l)
	s.initBase()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			// Out of file descriptors and the like: wait and go on, as
			// net/http does, rather than stop serving.
			if ne, ok := err.(net.Error); ok && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log().Warn("accept failed; retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := s.newConn(nc)
		if !s.add(c) {
			nc.Close()
			return ErrServerClosed
		}
		go c.resume()
	}
}

func (s *Server) initBase() {
	s.baseOnce.Do(func() {
		base := s.BaseContext
		if base == nil {
			base = context.Background()
		}
		// The value context on top is for speed: a lookup that misses
		// (httptrace's, on every proxied request) allocates when it starts
		// at a withoutCancelCtx, which boxes itself, and not when the
		// standard library's walk reaches one from a value context.
		s.values = context.WithValue(context.WithoutCancel(base), serverKey{}, s)
		if base.Done() != nil {
			context.AfterFunc(base, s.cancelRequests)
		}
	})
}

type serverKey struct{}

// cancelRequests cancels the request each connection is serving, once
// BaseContext ended; serveRequest cancels the ones that begin after.
func (s *Server) cancelRequests() {
	s.baseEnded.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if rc := c.rctx.Load(); rc != nil {
			rc.Cancel()
		}
	}
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) untrack(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// remove forgets a connection that closed or was hijacked: Shutdown waits
// for neither.
func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// closeListeners stops accepting; it reports whether this call did it.
func (s *Server) closeListeners() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.closing.Swap(true)
	for l := range s.listeners {
		l.Close()
	}
	return first
}

// Shutdown stops accepting, closes idle connections, lets active ones
// finish their request (the response says Connection: close) and waits
// for them until ctx ends. A connection accepted but without a request
// yet is given newConnGrace to bring one. Hijacked connections are not
// waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	s.parker.close() // parked connections wait in goroutines, to be closed
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// closeIdle closes the connections waiting for a request and returns how
// many connections are left.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) ||
			time.Since(c.accepted) > newConnGrace && c.state.CompareAndSwap(stateNew, stateClosed) {
			c.rwc.Close()
		}
	}
	return len(s.conns)
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	s.closeListeners()
	s.parker.close()
	s.mu.Lock()
	for c := range s.conns {
		c.state.Store(stateClosed)
		c.rwc.Close()
	}
	s.mu.Unlock()
	return nil
}
