package testkit

import (
	"bytes"
	"strings"
	"sync"
)

// LogBuffer is a bytes.Buffer safe for a gateway's concurrent logging.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines returns the non-empty log lines containing every one of subs.
func (s *LogBuffer) Lines(subs ...string) []string {
	var out []string
	for _, l := range strings.Split(s.String(), "\n") {
		if l != "" && containsAll(l, subs) {
			out = append(out, l)
		}
	}
	return out
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// Tail returns the last n lines of s, after a "..." line when it cut any.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
