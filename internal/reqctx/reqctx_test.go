package reqctx

import (
	"context"
	"errors"
	"net/http/httptrace"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type valueKey string

// background is a parent as h1server makes it: values, no cancellation.
func background() context.Context {
	base, cancel := context.WithCancel(context.WithValue(context.Background(), valueKey("k"), "v"))
	_ = cancel
	return context.WithValue(context.WithoutCancel(base), valueKey("server"), 1)
}

func TestCancelRunsHooksOnceAndEndsContext(t *testing.T) {
	c := New(background())
	if c.Err() != nil {
		t.Fatalf("Err before Cancel = %v", c.Err())
	}
	var runs [3]atomic.Int32
	hooks := make([]*Hook, 3)
	for i := range hooks {
		hooks[i] = NewHook(func() { runs[i].Add(1) })
		if !c.Watch(hooks[i]) {
			t.Fatalf("Watch %d on a live context = false", i)
		}
	}
	if !c.Unwatch(hooks[1]) {
		t.Fatal("Unwatch before Cancel = false")
	}
	c.Cancel()
	c.Cancel()
	if got := [3]int32{runs[0].Load(), runs[1].Load(), runs[2].Load()}; got != [3]int32{1, 0, 1} {
		t.Fatalf("hook runs = %v, want [1 0 1]", got)
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err = %v, want Canceled", c.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done made after Cancel is not closed")
	}
	if c.Unwatch(hooks[0]) {
		t.Fatal("Unwatch of a hook that ran = true")
	}
	if c.Watch(hooks[1]) {
		t.Fatal("Watch on an ended context = true")
	}
	if runs[1].Load() != 0 {
		t.Fatal("Watch on an ended context ran the hook")
	}
}

func TestHookIsReusableAcrossContexts(t *testing.T) {
	var n atomic.Int32
	h := NewHook(func() { n.Add(1) })
	for i := range 5 {
		c := New(background())
		c.Watch(h)
		if i%2 == 0 {
			c.Cancel()
		} else if !c.Unwatch(h) {
			t.Fatalf("round %d: Unwatch = false", i)
		}
	}
	if n.Load() != 3 {
		t.Fatalf("hook ran %d times, want 3", n.Load())
	}
}

func TestDoneMadeBeforeCancelCloses(t *testing.T) {
	c := New(background())
	done := c.Done()
	if c.Done() != done {
		t.Fatal("Done returned two channels")
	}
	select {
	case <-done:
		t.Fatal("Done closed before Cancel")
	default:
	}
	go c.Cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed by Cancel")
	}
}

func TestValues(t *testing.T) {
	c := New(background())
	if got := c.Value(valueKey("k")); got != "v" {
		t.Fatalf("parent value = %v", got)
	}
	wrapped := httptrace.WithClientTrace(context.WithValue(c, valueKey("x"), 1), &httptrace.ClientTrace{})
	c.Done() // the inner context must not hide the parent's values
	if got := wrapped.Value(valueKey("k")); got != "v" {
		t.Fatalf("parent value through wrappers after Done = %v", got)
	}
	if d, ok := c.Deadline(); ok || !d.IsZero() {
		t.Fatalf("Deadline = %v %v, want none", d, ok)
	}
}

// Contexts derived from a request context, even through value contexts,
// must attach to it rather than start a goroutine each (what the standard
// library does for a parent it does not know), and must end with it.
func TestDerivedContextsAttachWithoutGoroutines(t *testing.T) {
	c := New(background())
	wrapped := httptrace.WithClientTrace(c, &httptrace.ClientTrace{})
	before := runtime.NumGoroutine()
	const n = 200
	children := make([]context.Context, n)
	var afterRuns atomic.Int32
	for i := range children {
		ctx, cancel := context.WithCancelCause(wrapped)
		defer cancel(nil)
		children[i] = ctx
		context.AfterFunc(ctx, func() { afterRuns.Add(1) })
	}
	if g := runtime.NumGoroutine(); g > before+n/10 {
		t.Fatalf("%d goroutines after deriving %d contexts (was %d)", g, n, before)
	}
	c.Cancel()
	for i, ctx := range children {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("child %d not cancelled", i)
		}
		if !errors.Is(context.Cause(ctx), context.Canceled) {
			t.Fatalf("child %d cause = %v", i, context.Cause(ctx))
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for afterRuns.Load() != n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if afterRuns.Load() != n {
		t.Fatalf("%d of %d AfterFuncs ran", afterRuns.Load(), n)
	}
	if !errors.Is(context.Cause(c), context.Canceled) {
		t.Fatalf("Cause = %v", context.Cause(c))
	}
}

func TestConcurrentCancelWatchUnwatch(t *testing.T) {
	for range 200 {
		c := New(background())
		var ran, watched, removed atomic.Int32
		hooks := make([]*Hook, 8)
		for i := range hooks {
			hooks[i] = NewHook(func() { ran.Add(1) })
		}
		var wg sync.WaitGroup
		for _, h := range hooks {
			wg.Go(func() {
				if !c.Watch(h) {
					return // c had ended: never registered
				}
				watched.Add(1)
				if c.Unwatch(h) {
					removed.Add(1)
				}
			})
		}
		wg.Go(func() { <-c.Done() })
		wg.Go(func() { _ = c.Err() })
		c.Cancel()
		wg.Wait()
		// Every hook registered is either removed or run, never both.
		if ran.Load()+removed.Load() != watched.Load() {
			t.Fatalf("ran %d + removed %d != watched %d", ran.Load(), removed.Load(), watched.Load())
		}
	}
}

// The point of the package: a request's context, one upstream watch and
// its end cost one allocation.
func TestRequestCostsOneAllocation(t *testing.T) {
	parent := background()
	h := NewHook(func() {})
	allocs := testing.AllocsPerRun(1000, func() {
		c := New(parent)
		if httptrace.ContextClientTrace(c) != nil { // a lookup that misses
			t.Fatal("a client trace out of nowhere")
		}
		c.Watch(h)
		c.Unwatch(h)
		_ = c.Err()
		c.Cancel()
	})
	if allocs != 1 {
		t.Fatalf("allocations per request = %v, want 1", allocs)
	}
}
