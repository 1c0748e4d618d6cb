//go:build !unix

package shadowtest

import (
	"net"
	"testing"
)

// deadAddr returns a loopback address that refuses connections: a port
// that was listened on and closed.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
