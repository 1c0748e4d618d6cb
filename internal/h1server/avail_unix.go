//go:build unix

package h1server

import "syscall"

// availReader reads what a socket holds without waiting, so that the
// byte an idle connection's one-byte read got is followed by the rest of
// the head in the same buffer fill (and the head is read in one pass).
type availReader struct {
	raw syscall.RawConn // nil: not a socket; nothing is read
	fn  func(fd uintptr) bool
	p   []byte
	n   int
}

func (a *availReader) init(nc any) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	if raw, err := sc.SyscallConn(); err == nil {
		a.raw, a.fn = raw, a.read // bound once: no allocation per call
	}
}

// readAvailable reads into p what is there now; 0 when nothing is.
func (a *availReader) readAvailable(p []byte) int {
	if a.raw == nil || len(p) == 0 {
		return 0
	}
	a.p, a.n = p, 0
	a.raw.Read(a.fn)
	a.p = nil
	return a.n
}

func (a *availReader) read(fd uintptr) bool {
	n, err := syscall.Read(int(fd), a.p)
	if err == nil && n > 0 {
		a.n = n
	}
	return true // never wait
}
