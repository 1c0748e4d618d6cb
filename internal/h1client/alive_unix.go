//go:build unix

package h1client

import (
	"net"
	"os"
	"syscall"
)

// socketProbe is what a connection keeps for probing its socket and for
// sendLast. The callbacks are bound once: SyscallConn allocates, and so
// would a closure per call.
type socketProbe struct {
	raw     syscall.RawConn // nil: the connection cannot be probed
	peekFn  func(fd uintptr)
	sendFn  func(fd uintptr) bool
	peekBuf [1]byte
	// quiet is the last peek's result: nothing to read, no EOF.
	quiet bool

	// One sendLast's progress (see sendStep).
	out     []byte
	written int
	check   bool  // peek before writing
	stale   bool  // the peek found the connection unusable
	err     error // the write's error
	waiting bool  // all of out is written: the next call means readable
}

// initProbe prepares the socket probe; a connection that cannot be
// probed (not a socket: a custom Dial's wrapper) is never reused.
func (c *conn) initProbe() {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.sock.raw, c.sock.peekFn, c.sock.sendFn = rc, c.peek, c.sendStep
}

// probeable reports whether the connection's socket can be probed, which
// its reuse needs.
func (c *conn) probeable() bool { return c.sock.raw != nil }

// probe reports whether the socket of an idle connection has nothing to
// read: the server has neither sent anything unasked (a peek would see
// data) nor closed it (a peek would see EOF). It costs one non-blocking
// recvfrom system call and no allocation (BenchmarkReuseCheck). Only a
// request larger than the write buffer uses it on its own; the common
// one gets the same peek inside sendLast, which saves a system call.
func (c *conn) probe() bool {
	if c.sock.raw == nil {
		return false
	}
	// Control, not Read: it ignores the read deadline, which the last
	// request may have left to pass while the connection idled.
	if c.sock.raw.Control(c.sock.peekFn) != nil {
		return false
	}
	return c.sock.quiet
}

func (c *conn) peek(fd uintptr) { c.sock.quiet = peekQuiet(fd, &c.sock.peekBuf) }

// peekQuiet is the probe's system call: a non-blocking peek at one byte.
// Nothing to read yet (EAGAIN) is the only healthy answer: 0 bytes is the
// server's FIN, anything else data or an error.
func peekQuiet(fd uintptr, buf *[1]byte) bool {
	for {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	}
}

// sendLast writes p, the end of a request, and then waits until the
// socket is readable, both inside one RawConn.Read; on a connection taken
// from the pool it peeks first (see Pool.get), in the same call.
//
// Why: the caller reads the response next, and a read right after the
// write almost never finds it there (the server has not even been
// scheduled yet): it costs a system call that says EAGAIN, then the wait.
// Here the wait comes first, and the wait cannot miss the answer, because
// RawConn.Read resets the socket's readiness before calling sendStep, so
// only data that arrives after the write wakes it up. The one read of the
// response that follows finds it. So a reused connection costs the peek,
// the write and one read, the system calls of the build before the peek
// existed (write, a read that said EAGAIN, the read), where a peek of its
// own added a fourth: on this machine each system call is 2-5 µs of a
// request's ~35 µs, and counted with perf, 7 calls per proxied request
// became 6.
func (c *conn) sendLast(p []byte) (int, error) {
	s := &c.sock
	if s.raw == nil {
		return c.sendPlain(p)
	}
	s.out, s.written, s.check, s.stale, s.err, s.waiting = p, 0, c.unchecked, false, nil, false
	c.unchecked = false
	rerr := s.raw.Read(s.sendFn)
	n, werr, stale, waited, checked := s.written, s.err, s.stale, s.waiting, !s.check
	s.out, s.err = nil, nil
	switch {
	case stale:
		return 0, errStale
	case werr != nil:
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: os.NewSyscallError("write", werr)}
	case waited:
		// All written. A wait cut short (the header deadline, an abort,
		// a close) fails the read that follows the same way.
		return n, nil
	case rerr != nil && n == 0:
		// Refused before sendStep ran: the exchange was aborted (its
		// deadline is in the past) or the connection closed.
		if !checked {
			return 0, rerr
		}
	}
	// The socket's send buffer was full (a write said EAGAIN): the rest
	// the usual way, waiting for room, and the response read as usual.
	m, err := c.nc.Write(p[n:])
	return n + m, err
}

// sendStep is sendLast's RawConn.Read callback: returning false waits
// for the socket to become readable and calls it again.
func (c *conn) sendStep(fd uintptr) bool {
	s := &c.sock
	if s.waiting {
		// Readable (or a spurious wake-up: the read that follows waits
		// again).
		return true
	}
	if s.check {
		s.check = false
		if !peekQuiet(fd, &s.peekBuf) {
			s.stale = true
			return true
		}
	}
	for s.written < len(s.out) {
		n, err := syscall.Write(int(fd), s.out[s.written:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			return true // sendLast writes the rest
		case err != nil:
			s.err = err
			return true
		}
		s.written += n
	}
	s.waiting = true
	return false
}
