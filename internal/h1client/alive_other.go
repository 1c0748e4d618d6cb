//go:build !unix

package h1client

// alive cannot probe a socket without blocking on this platform; a
// connection the server closed is caught by the retry in RoundTrip.
func (c *conn) alive() bool { return true }
