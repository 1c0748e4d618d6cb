package shadow

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func TestBreakerStateMachine(t *testing.T) {
	b := &breaker{failures: 3, openFor: 500 * time.Millisecond}
	now := t0
	want := func(s breakerState) {
		t.Helper()
		if got := b.state(now); got != s {
			t.Fatalf("at +%v: state %v, want %v", now.Sub(t0), got, s)
		}
	}

	// Closed: everything passes; failures below the threshold keep it closed.
	want(closed)
	for i := 0; i < 2; i++ {
		if !b.allow(now) {
			t.Fatalf("closed breaker refused copy %d", i)
		}
		if b.record(false, now) {
			t.Fatalf("opened after %d failures, want 3", i+1)
		}
		want(closed)
	}
	// A success resets the consecutive count.
	if !b.allow(now) || b.record(true, now) {
		t.Fatal("success reported as opening")
	}
	for i := 0; i < 2; i++ {
		b.allow(now)
		if b.record(false, now) {
			t.Fatalf("opened after a success and %d failures", i+1)
		}
	}
	want(closed)
	// The third consecutive failure opens it.
	b.allow(now)
	if !b.record(false, now) {
		t.Fatal("third consecutive failure did not open the breaker")
	}
	want(open)
	for _, d := range []time.Duration{0, time.Millisecond, 499 * time.Millisecond} {
		if b.allow(t0.Add(d)) {
			t.Fatalf("open breaker allowed a copy at +%v", d)
		}
	}

	// After open_for: half-open, exactly one probe.
	now = t0.Add(500 * time.Millisecond)
	want(halfOpen)
	if !b.allow(now) {
		t.Fatal("half-open breaker refused the probe")
	}
	for i := 0; i < 5; i++ {
		if b.allow(now) {
			t.Fatal("half-open breaker allowed a second copy while the probe runs")
		}
	}
	// Failed probe: open again for a full open_for from now.
	if !b.record(false, now) {
		t.Fatal("failed probe did not report re-opening")
	}
	want(open)
	if b.allow(now.Add(499 * time.Millisecond)) {
		t.Fatal("re-opened breaker allowed a copy before open_for passed")
	}
	now = now.Add(500 * time.Millisecond)
	want(halfOpen)
	if !b.allow(now) {
		t.Fatal("second half-open refused its probe")
	}
	// Successful probe closes it and resets the count.
	if b.record(true, now) {
		t.Fatal("successful probe reported opening")
	}
	want(closed)
	for i := 0; i < 10; i++ {
		if !b.allow(now) {
			t.Fatal("closed breaker refused a copy after the probe succeeded")
		}
	}
	b.record(false, now)
	b.record(false, now)
	want(closed) // two failures after the reset are below the threshold
}

// TestBreakerProbeUnderConcurrency: when the breaker turns half-open with
// many senders waiting, exactly one of them gets the probe.
func TestBreakerProbeUnderConcurrency(t *testing.T) {
	b := &breaker{failures: 1, openFor: time.Second}
	b.record(false, t0)
	now := t0.Add(time.Second)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.allow(now) {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 1 {
		t.Fatalf("%d probes allowed in half-open, want exactly 1", n)
	}
}

func TestBreakerFailuresOne(t *testing.T) {
	b := &breaker{failures: 1, openFor: time.Second}
	if !b.record(false, t0) {
		t.Fatal("failures: 1 did not open on the first failure")
	}
	if b.allow(t0) {
		t.Fatal("open breaker allowed a copy")
	}
}

func (s breakerState) String() string {
	switch s {
	case closed:
		return "closed"
	case open:
		return "open"
	case halfOpen:
		return "half-open"
	}
	return "?"
}

func TestLogLimiter(t *testing.T) {
	l := &logLimiter{every: 10 * time.Second}
	if n, ok := l.allow(t0); !ok || n != 0 {
		t.Fatalf("first event: (%d, %v), want (0, true)", n, ok)
	}
	for i := 0; i < 7; i++ {
		if _, ok := l.allow(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("event %d within 10s let through", i)
		}
	}
	if _, ok := l.allow(t0.Add(10*time.Second - time.Nanosecond)); ok {
		t.Fatal("event just before 10s let through")
	}
	n, ok := l.allow(t0.Add(10 * time.Second))
	if !ok || n != 8 {
		t.Fatalf("event at +10s: (%d, %v), want (8 suppressed, true)", n, ok)
	}
	// The window restarts from the event let through.
	if _, ok := l.allow(t0.Add(15 * time.Second)); ok {
		t.Fatal("event at +15s let through; the window restarted at +10s")
	}
	if n, ok := l.allow(t0.Add(25 * time.Second)); !ok || n != 1 {
		t.Fatalf("event at +25s: (%d, %v), want (1, true)", n, ok)
	}
	// A long silence: the next event passes with nothing suppressed.
	if n, ok := l.allow(t0.Add(time.Hour)); !ok || n != 0 {
		t.Fatalf("event after an hour: (%d, %v), want (0, true)", n, ok)
	}
}

// TestLogLimiterConcurrent: a burst of simultaneous warnings lets exactly one
// line through and counts all the others.
func TestLogLimiterConcurrent(t *testing.T) {
	l := &logLimiter{every: 10 * time.Second}
	const n = 64
	var passed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok := l.allow(t0); ok {
				passed.Add(1)
			}
		}()
	}
	wg.Wait()
	if p := passed.Load(); p != 1 {
		t.Fatalf("%d of %d simultaneous events passed, want 1", p, n)
	}
	if got, ok := l.allow(t0.Add(10 * time.Second)); !ok || got != n-1 {
		t.Fatalf("next window: (%d, %v), want (%d, true)", got, ok, n-1)
	}
}
