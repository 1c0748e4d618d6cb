package h1server

import (
	"net"
	"sync"
	"syscall"
)

// LimitListener returns a listener that keeps at most n of l's accepted
// connections open: past that, Accept waits for one to close, and new
// clients wait in the kernel's accept queue. It is
// golang.org/x/net/netutil.LimitListener, except that its connections
// keep SyscallConn: the server parks idle connections and reads what an
// idle one's first byte brought through it, which netutil's wrapper
// hides (a limited listener's idle connections would each keep a
// goroutine).
func LimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	closeOnce sync.Once
	done      chan struct{} // closed by Close: Accept stops waiting
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	lc := &limitConn{Conn: c, release: func() { <-l.sem }}
	if sc, ok := c.(syscall.Conn); ok {
		return &limitSyscallConn{limitConn: lc, sc: sc}, nil
	}
	return lc, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitConn gives its place back when it is first closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// limitSyscallConn is a limitConn over a socket.
type limitSyscallConn struct {
	*limitConn
	sc syscall.Conn
}

func (c *limitSyscallConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }
