package h1server

import "net/http"

// Hooks for the black-box tests: the client-hang-up watch runs on its own
// goroutine and nothing outside the package can tell when it reads.

// WatchOn reports whether the connection of w is being watched: a
// goroutine is blocked reading it for the client hanging up.
func WatchOn(w http.ResponseWriter) bool {
	c := w.(*response).c
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watch == watchOn
}

// WatchHasByte reports whether the watch of w's connection read the first
// byte of the client's next request (to be handed on to the parser).
func WatchHasByte(w http.ResponseWriter) bool {
	c := w.(*response).c
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cr.hasByte
}

// ShuttingDown reports whether Shutdown or Close was called on s.
func ShuttingDown(s *Server) bool { return s.closing.Load() }

// Conns is how many connections s serves (hijacked ones excluded).
func Conns(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// ActiveConns is how many connections of s have begun a request.
func ActiveConns(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.state.Load() == stateActive {
			n++
		}
	}
	return n
}

// BufferedConns is how many connections of s hold read and write buffers.
func BufferedConns(s *Server) int64 { return s.buffered.Load() }

// IdleHold is how long an idle connection keeps its buffers.
const IdleHold = idleHold

// ParkedConns is how many idle connections of s wait without a goroutine.
func ParkedConns(s *Server) int { return s.parker.count() }
