//go:build !unix

package h1client

// socketProbe is empty: sockets cannot be peeked without blocking here.
type socketProbe struct{}

// initProbe: sockets cannot be peeked without blocking here.
func (c *conn) initProbe() {}

// probeable is false: no connection is reused on this platform, since a
// reused one could hand the next caller a response meant for nobody (see
// Pool.get).
func (c *conn) probeable() bool { return false }

// probe cannot tell whether an idle connection holds unread bytes here.
func (c *conn) probe() bool { return false }

// sendLast writes the end of a request the usual way.
func (c *conn) sendLast(p []byte) (int, error) { return c.sendPlain(p) }
