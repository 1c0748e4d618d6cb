package h1server

import (
	"sync"
	"time"
)

// watcher notices a client hanging up during a request, so that the
// request's context is cancelled and the upstream request with it.
// Watching means a goroutine blocked reading the connection, so it can
// only start once nothing else reads it: at the start of a request without
// a body, or when the handler read a request body to its end (as net/http
// does). net/http starts that goroutine for every request; here the
// connection's timer starts it only for a request still running after
// Server.WatchAfter, and the handler's goroutine stops it before touching
// the connection again.
type watcher struct {
	mu    sync.Mutex
	cond  sync.Cond // signalled when watch goes back to watchOff
	watch int
	timer *time.Timer
	// seq numbers the connection's requests and served says the current
	// one's handler returned: a body read by a goroutine the handler left
	// behind must not arm a watch for a later request.
	seq    uint64
	served bool
	// clientGone: the watch saw the connection end; it is not reused.
	clientGone bool
}

const (
	watchOff       = iota
	watchArmed     // the timer is set, or has just started watchClient
	watchOn        // watchClient is blocked reading
	watchCancelled // stopWatch waits for watchClient to give up
)

// aLongTimeAgo, as a read deadline, wakes a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// defaultWatchAfter: requests quicker than this, nearly all of them
// through a gateway, never pay for watching.
const defaultWatchAfter = 10 * time.Millisecond

// beginWatch starts the watch period of a new request and returns its
// number; a request without a body and no next request already buffered
// is armed at once.
func (c *conn) beginWatch(arm bool) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.served = false
	if arm {
		c.armLocked()
	}
	return c.seq
}

// bodyDone arms the watch of request seq once its body was read to the
// end, if its handler still runs.
func (c *conn) bodyDone(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq == seq && !c.served && c.watch == watchOff {
		c.armLocked()
	}
}

func (c *conn) armLocked() {
	c.watch = watchArmed
	d := c.srv.WatchAfter
	if d < 0 {
		go c.watchClient()
		return
	}
	if d == 0 {
		d = defaultWatchAfter
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.watchClient)
	} else {
		c.timer.Reset(d)
	}
}

// stopWatch ends the watch of the current request, if any, and returns
// once no goroutine but the caller's touches the connection. No watch
// starts after it until the next request.
func (c *conn) stopWatch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.served = true
	switch c.watch {
	case watchOff:
		return
	case watchArmed:
		if c.timer != nil && c.timer.Stop() {
			c.watch = watchOff // the timer had not fired
			return
		}
		c.watch = watchCancelled // watchClient runs but has not read yet
	case watchOn:
		c.watch = watchCancelled
		c.setReadDeadline(aLongTimeAgo)
	}
	for c.watch != watchOff {
		c.cond.Wait()
	}
}

// watchClient reads one byte. Data (the client's next request, sent
// early) is handed on to the request reader; an error while still
// watching means the client is gone.
func (c *conn) watchClient() {
	c.mu.Lock()
	if c.watch != watchArmed {
		c.watch = watchOff
		c.cond.Broadcast()
		c.mu.Unlock()
		return
	}
	c.watch = watchOn
	// Reads block from now on, whatever deadline the request wait left.
	c.setReadDeadline(time.Time{})
	c.mu.Unlock()

	n, err := c.rwc.Read(c.cr.oneByte[:])

	c.mu.Lock()
	defer c.mu.Unlock()
	if n == 1 {
		c.cr.hasByte = true
	}
	if err != nil && c.watch == watchOn {
		c.clientGone = true
		if rc := c.rctx.Load(); rc != nil {
			rc.Cancel()
		}
	}
	c.watch = watchOff
	c.cond.Broadcast()
}
