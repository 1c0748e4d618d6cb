// Package reqctx is the context of one request on umbra's plain-HTTP/1.x
// listener: a context.Context that costs one allocation and can run a
// caller's hook when it ends without allocating.
//
// Why not context.WithCancel: a gateway request ends in two ways (the
// client hangs up, or the handler returns) and one party listens (the
// upstream exchange, which aborts its connection). With the standard
// library that is WithCancel per request, registered in the parent's
// children map, plus context.AfterFunc per upstream exchange, itself a
// cancelCtx with a map entry, two closures and a channel: about ten
// allocations and two map updates per request, ~4% of the proxy's CPU on
// the core benchmark. Here the request's context is one struct, its Done
// channel is made only for code that asks for it (net/http's Transport,
// ReverseProxy), and a listener registers a Hook it owns and reuses.
package reqctx

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Context is one request's context. It is cancelled with Cancel, which the
// server calls when the client hangs up, when the handler returns, or when
// the server's base context ends.
type Context struct {
	parent context.Context
	ended  atomic.Bool // Cancel ran; err is set

	mu    sync.Mutex
	err   error
	hooks *Hook // registered, not yet run
	// inner is made on the first Done call: a standard cancel context
	// whose channel Done returns, so that contexts derived from this one
	// attach to it (context.WithCancel finds it through Value) instead of
	// starting a goroutine each to watch a foreign Done channel.
	inner       atomic.Pointer[context.Context]
	cancelInner context.CancelFunc
}

// New returns a live request context whose values and deadline are
// parent's. Cancellation does not flow from parent: the server cancels
// its requests itself when its base context ends, with one hook for all
// of them rather than one per request. Pass a parent without
// cancellation (context.WithoutCancel), so that the standard library,
// looking for a cancel context through Value, never finds the parent's;
// wrapped in a value context (context.WithValue) so that lookups do not
// allocate (withoutCancelCtx.Value boxes its receiver).
func New(parent context.Context) *Context {
	return &Context{parent: parent}
}

// Cancel ends the context with context.Canceled: hooks run (on this
// goroutine), Done closes. Later calls do nothing.
func (c *Context) Cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	c.ended.Store(true)
	h := c.hooks
	c.hooks = nil
	for p := h; p != nil; p = p.next {
		p.ctx = nil // Unwatch now reports that the hook ran
	}
	cancel := c.cancelInner
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	for h != nil {
		next := h.next // stale links are harmless: Watch sets them anew
		h.fn()
		h = next
	}
}

// Deadline is the parent's.
func (c *Context) Deadline() (time.Time, bool) { return c.parent.Deadline() }

// Err is nil until Cancel, then context.Canceled.
func (c *Context) Err() error {
	if !c.ended.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done returns a channel closed by Cancel. It is made on the first call.
func (c *Context) Done() <-chan struct{} {
	if p := c.inner.Load(); p != nil {
		return (*p).Done()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.inner.Load(); p != nil {
		return (*p).Done()
	}
	// Parented on Background, not c.parent: cancellation comes from
	// Cancel alone (see New).
	inner, cancel := context.WithCancel(context.Background())
	if c.err != nil {
		cancel()
	} else {
		c.cancelInner = cancel
	}
	c.inner.Store(&inner)
	return inner.Done()
}

// Value answers, once Done was called, the standard library's private
// cancel-context key (through the inner context); every other key is the
// parent's.
func (c *Context) Value(k any) any {
	if p := c.inner.Load(); p != nil {
		if v := (*p).Value(k); v != nil {
			return v
		}
	}
	return c.parent.Value(k)
}

func (c *Context) String() string { return "reqctx.Context" }

// Hook is a function to run when a Context ends. Its owner allocates it
// once (NewHook) and registers it with Watch for each request; a Hook is
// registered with at most one Context at a time.
//
// Code that registers one recognizes a request context by its type
// (ctx.(*Context)), not through Value: a context derived from it
// (WithCancel, WithTimeout) can end sooner, and must be watched the
// standard way.
type Hook struct {
	fn         func()
	ctx        *Context // registered with, nil once run or removed
	prev, next *Hook
}

// NewHook returns a hook running fn, which must be quick and must not
// block: it runs on the goroutine that calls Cancel.
func NewHook(fn func()) *Hook { return &Hook{fn: fn} }

// Watch registers h to run when c ends. It reports false, registering
// nothing and running nothing, when c has ended already.
func (c *Context) Watch(h *Hook) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	h.ctx, h.prev, h.next = c, nil, c.hooks
	if c.hooks != nil {
		c.hooks.prev = h
	}
	c.hooks = h
	return true
}

// Unwatch removes h from c. It reports true when h was removed before
// running, false when c ended after Watch: h then ran or is running on
// Cancel's goroutine, and may be registered again only once its function
// has returned (h1client never does: the connection it aborted closes).
func (c *Context) Unwatch(h *Hook) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.ctx != c {
		return false
	}
	if h.prev != nil {
		h.prev.next = h.next
	} else {
		c.hooks = h.next
	}
	if h.next != nil {
		h.next.prev = h.prev
	}
	h.ctx, h.prev, h.next = nil, nil, nil
	return true
}
