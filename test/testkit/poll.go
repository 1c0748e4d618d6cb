package testkit

import (
	"testing"
	"time"
)

// Poll bounds a wait for a condition: it is checked every Interval and
// the test fails when it still does not hold after Timeout.
type Poll struct {
	Timeout  time.Duration
	Interval time.Duration
}

// Until checks cond until it holds. what names the awaited state and
// cond's message describes the last state seen, for the failure message.
func (p Poll) Until(t testing.TB, what string, cond func() (ok bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(p.Timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", p.Timeout, what, last)
		}
		time.Sleep(p.Interval)
	}
}

// UntilTrue is Until for a condition with no state to report.
func (p Poll) UntilTrue(t testing.TB, what string, cond func() bool) {
	t.Helper()
	p.Until(t, what, func() (bool, string) { return cond(), "false" })
}
