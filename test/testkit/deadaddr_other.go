//go:build !unix

package testkit

import (
	"net"
	"testing"
)

// DeadAddr returns a loopback address that refuses connections: a port
// that was listened on and closed (on unix a never-listening bound socket
// reserves it; see deadaddr_unix.go).
func DeadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
