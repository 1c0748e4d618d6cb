//go:build unix

package h1client

import (
	"errors"
	"syscall"
)

// alive reports whether an idle connection can still carry a request: the
// server has not closed it (a peek would see EOF) and has not sent
// anything unasked (a peek would see data). It costs one non-blocking
// system call, which is why the pool only probes connections idle for a
// while.
func (c *conn) alive() bool {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return true
	}
	// The last request's header deadline may have passed while the
	// connection was idle; the peek below would fail on it.
	if !c.readDeadline.IsZero() {
		c.clearReadDeadline()
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// Nothing to read yet (EAGAIN) is the only healthy answer: 0
		// bytes is the server's FIN, anything else data or an error.
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
		return true // never wait: the answer is known now
	})
	return err == nil && alive
}
