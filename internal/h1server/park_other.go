//go:build !linux

package h1server

// parker is empty where there is no epoll: an idle connection waits in a
// goroutine of its own (see the Linux parker).
type parker struct{}

type parkState struct{}

func (p *parker) park(*conn) bool { return false }

func (p *parker) close() {}

func (p *parker) count() int { return 0 }
