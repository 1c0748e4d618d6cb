package shadow

import (
	"sync"
	"time"
)

// breaker is a consecutive-failure circuit breaker. Closed: copies flow.
// After `failures` failures in a row it opens for `openFor`: copies are
// skipped. Then it lets a single probe through (half-open); the probe's
// success closes it, its failure opens it again.
type breaker struct {
	failures int
	openFor  time.Duration

	mu        sync.Mutex
	fails     int
	openUntil time.Time
	probing   bool
}

type breakerState int

const (
	closed breakerState = iota
	open
	halfOpen
)

// allow reports whether a copy may be sent now.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.stateLocked(now) {
	case closed:
		return true
	case halfOpen:
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
	return false
}

func (b *breaker) stateLocked(now time.Time) breakerState {
	switch {
	case b.fails < b.failures:
		return closed
	case now.Before(b.openUntil):
		return open
	}
	return halfOpen
}

// state is for the gauge and tests.
func (b *breaker) state(now time.Time) breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stateLocked(now)
}

// record notes a copy's result and reports whether the breaker just opened.
func (b *breaker) record(ok bool, now time.Time) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if ok {
		b.fails = 0
		return false
	}
	b.fails++
	if b.fails >= b.failures {
		b.openUntil = now.Add(b.openFor)
		return true
	}
	return false
}
