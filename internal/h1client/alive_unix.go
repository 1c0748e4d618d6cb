//go:build unix

package h1client

import (
	"errors"
	"os"
	"syscall"
)

// socketProbe is what a connection keeps for probe.
type socketProbe struct {
	raw     syscall.RawConn // nil: the connection cannot be probed
	peekFn  func(fd uintptr) bool
	peekBuf [1]byte
	// peekedNothing is the last peek's result: nothing to read, no EOF.
	peekedNothing bool
}

// initProbe prepares the socket probe of quiet; a connection that cannot
// be probed (not a socket: a custom Dial's wrapper) is never reused.
func (c *conn) initProbe() {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	// Kept for the connection's life: SyscallConn allocates, and so would
	// a closure per probe.
	c.sock.raw, c.sock.peekFn = rc, c.peek
}

// probe reports whether the socket of an idle connection has nothing to
// read: the server has neither sent anything unasked (a peek would see
// data) nor closed it (a peek would see EOF). It costs one non-blocking
// recvfrom system call and no allocation, cheap enough for every reuse
// (BenchmarkReuseCheck); net/http pays for the same knowledge with a
// reader goroutine per connection, parked on the socket while it idles.
func (c *conn) probe() bool {
	if c.sock.raw == nil {
		return false
	}
	err := c.sock.raw.Read(c.sock.peekFn)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The last request's header deadline, kept lazily (see
		// armReadDeadline), passed while the connection was idle; the
		// poller refuses to read past it.
		c.clearReadDeadline()
		err = c.sock.raw.Read(c.sock.peekFn)
	}
	return err == nil && c.sock.peekedNothing
}

// peek is the probe's system call; it never waits (returns true), the
// answer being known at once.
func (c *conn) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), c.sock.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	// Nothing to read yet (EAGAIN) is the only healthy answer: 0 bytes is
	// the server's FIN, anything else data or an error.
	c.sock.peekedNothing = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true
}
