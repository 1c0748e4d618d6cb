//go:build unix

package testkit

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// DeadAddr returns a loopback address that refuses connections, and keeps
// refusing them for the whole test: the port is bound by a socket that
// never listens, so no other test can be given it (a listen-then-close
// port could be reused by a parallel test's listener).
func DeadAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("dead address %s accepted a connection", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dead address %s: %v, want connection refused", addr, err)
	}
	return addr
}
