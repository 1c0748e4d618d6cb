package backend

import (
	"math/rand/v2"
	"slices"
	"time"
)

// pick chooses the endpoint for one attempt, never one in tried. It skips
// ejected endpoints; when every candidate is ejected it enters panic mode
// and uses them anyway, as Envoy does below its panic threshold: passive
// health can be wrong (a shared network blip ejects everything) and
// failing every request is worse than trying. It returns nil only when
// every endpoint is in tried.
func (b *Backend) pick(tried []*endpoint) *endpoint {
	var now int64
	if b.ejected.Load() != 0 {
		now = time.Now().UnixNano()
	}
	var e *endpoint
	if b.leastRequest {
		e = b.pickLeast(now, tried)
	} else {
		e = b.pickRoundRobin(now, tried)
	}
	if e != nil {
		b.leavePanic()
		return e
	}
	return b.pickPanic(tried)
}

// pickRoundRobin takes the next ring position, and for each unusable
// endpoint it meets draws a fresh position rather than stepping to the
// neighbour: stepping would hand a dead endpoint's whole share to the one
// after it. One atomic add per draw, no lock, no allocation; the modulo is
// 32-bit because a 64-bit division costs more than the rest of the pick
// (the counter's wrap every 2^32 requests only shifts the ring once).
func (b *Backend) pickRoundRobin(now int64, tried []*endpoint) *endpoint {
	n := len(b.eps)
	for range n {
		e := b.eps[b.ringStart(n)]
		if !slices.Contains(tried, e) && b.usable(e, now) {
			return e
		}
	}
	// Unlucky draws (or most endpoints unusable): scan once so a usable
	// endpoint is never missed.
	for _, e := range b.eps {
		if !slices.Contains(tried, e) && b.usable(e, now) {
			return e
		}
	}
	return nil
}

// ringStart advances the round-robin position and returns its index.
func (b *Backend) ringStart(n int) int {
	return int(uint32(b.rr.Add(1)-1) % uint32(n))
}

// pickLeast is Envoy's least-request balancer: the less loaded of two
// endpoints chosen at random. Unlike "least loaded of all" it needs no
// scan and no lock, and it does not send a burst of requests to the one
// endpoint that happens to be idle at the same instant.
func (b *Backend) pickLeast(now int64, tried []*endpoint) *endpoint {
	n := len(b.eps)
	if n == 1 {
		return b.candidate(b.eps[0], now, tried)
	}
	i, j := twoDistinct(n)
	x, y := b.candidate(b.eps[i], now, tried), b.candidate(b.eps[j], now, tried)
	switch {
	case x != nil && y != nil:
		if y.inFlight.Load() < x.inFlight.Load() {
			return y
		}
		return x
	case x != nil:
		return x
	case y != nil:
		return y
	}
	return b.scanLeast(now, tried)
}

// twoDistinct returns two different random indexes below n (n >= 2).
// One random word serves both: each 32-bit half is scaled into range by a
// multiply and shift (Lemire's method), which avoids a division; its bias
// is at most n/2^32, irrelevant for balancing.
func twoDistinct(n int) (int, int) {
	r := rand.Uint64()
	i := int((r & 0xffffffff) * uint64(n) >> 32)
	j := int((r >> 32) * uint64(n-1) >> 32)
	if j >= i {
		j++
	}
	return i, j
}

// candidate returns e if it may be picked, else nil.
func (b *Backend) candidate(e *endpoint, now int64, tried []*endpoint) *endpoint {
	if slices.Contains(tried, e) || !b.usable(e, now) {
		return nil
	}
	return e
}

// scanLeast is the fallback when both random choices were unusable: the
// least loaded usable endpoint of all.
func (b *Backend) scanLeast(now int64, tried []*endpoint) *endpoint {
	var best *endpoint
	for _, e := range b.eps {
		if b.candidate(e, now, tried) == nil {
			continue
		}
		if best == nil || e.inFlight.Load() < best.inFlight.Load() {
			best = e
		}
	}
	return best
}

// pickPanic picks among ejected endpoints not yet tried, round robin.
func (b *Backend) pickPanic(tried []*endpoint) *endpoint {
	n := len(b.eps)
	i := b.ringStart(n)
	for range n {
		if e := b.eps[i]; !slices.Contains(tried, e) {
			if tried == nil { // a retry skipping its tried endpoint is no panic
				b.enterPanic()
			}
			return e
		}
		if i++; i == n {
			i = 0
		}
	}
	return nil
}

func (b *Backend) enterPanic() {
	if b.panicking.CompareAndSwap(false, true) {
		b.logger().Warn("backend: every endpoint is ejected, sending to them anyway (panic mode)",
			"backend", b.name)
	}
}

// leavePanic only loads on the hot path: the flag is written once per
// transition, so its cache line stays shared.
func (b *Backend) leavePanic() {
	if b.panicking.Load() && b.panicking.CompareAndSwap(true, false) {
		b.logger().Info("backend: endpoints back in rotation, panic mode over",
			"backend", b.name)
	}
}
