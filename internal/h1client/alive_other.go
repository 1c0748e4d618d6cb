//go:build !unix

package h1client

// socketProbe is empty: sockets cannot be peeked without blocking here.
type socketProbe struct{}

// initProbe: sockets cannot be peeked without blocking here.
func (c *conn) initProbe() {}

// probe cannot tell whether an idle connection holds unread bytes on this
// platform, so no connection is reused: a reused one could hand the next
// caller a response meant for nobody (see Pool.get).
func (c *conn) probe() bool { return false }
