//go:build !unix

package h1server

// availReader cannot read a socket without waiting here: the byte an idle
// connection's wait read comes alone, and the head is read by
// http.ReadRequest.
type availReader struct{}

func (a *availReader) init(any) {}

func (a *availReader) readAvailable([]byte) int { return 0 }
