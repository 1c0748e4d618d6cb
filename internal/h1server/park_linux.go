package h1server

import (
	"container/heap"
	"os"
	"sync"
	"syscall"
	"time"
)

// parker keeps idle keep-alive connections without a goroutine each, as
// nginx keeps them in its event loop: a connection idle past idleHold is
// registered in one epoll instance (one-shot, level-triggered: readable,
// closed by the peer, or in error) and its goroutine ends; one waiter
// goroutine for the whole server takes the events and starts a goroutine
// for each connection that has something (a request, its close), and a
// timer does the same for one whose wait limit passed. The new goroutine
// is resume's, as for a connection accepted: it reads the first byte
// with the connection's deadline, so a request is served, a close or an
// error ends the connection and a passed limit closes it, exactly as if
// a goroutine had waited all along.
//
// Why: a goroutine parked on an idle connection costs its stack (2 KiB
// at least, 4 KiB in practice: the runtime starts new goroutines at the
// average stack size it saw, and one that waits in the network poller
// uses too much of a 4 KiB stack for a collection to halve it) and its
// descriptor, more than half of what an idle connection cost in all
// (bench/idlerss). Parking costs two epoll_ctl calls per idle period of
// over a second, nothing per request.
//
// The epoll descriptor is itself in Go's network poller, so the waiter
// is a parked goroutine, not a thread blocked in epoll_wait.
type parker struct {
	mu     sync.Mutex
	ep     *os.File // the epoll instance; nil until the first park
	epfd   int
	raw    syscall.RawConn
	closed bool // the server shut down: no more parking
	// parked are the connections parked, by the id in their events.
	parked map[uint32]*conn
	lastID uint32
	// limits are the parked connections with a wait limit, soonest first;
	// timer fires at the first.
	limits limitQueue
	timer  *time.Timer

	events [128]syscall.EpollEvent // the waiter's
	pollFn func(fd uintptr) bool
}

// parkState is what a connection keeps while parked.
type parkState struct {
	id    uint32 // 0: not parked
	index int    // in parker.limits; -1: not there
}

// park parks c, idle in stateIdle with its limit in c.waitUntil and no
// buffers, and reports whether it did; when not (no epoll here, the
// server shutting down), the caller waits for c in a goroutine.
func (p *parker) park(c *conn) bool {
	raw := c.cr.avail.raw
	if raw == nil {
		return false // not a socket
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.ep == nil && !p.open() {
		return false
	}
	id := p.newID()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(id)}
	var err error
	if raw.Control(func(fd uintptr) { err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) }) != nil || err != nil {
		return false
	}
	// The event may come at once: the waiter looks it up under p.mu.
	c.park = parkState{id: id, index: -1}
	p.parked[id] = c
	if !c.waitUntil.IsZero() {
		heap.Push(&p.limits, c)
		if c.park.index == 0 {
			p.armTimer()
		}
	}
	return true
}

// open creates the epoll instance and starts the waiter; p.mu is held.
func (p *parker) open() bool {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	if syscall.SetNonblock(epfd, true) != nil {
		syscall.Close(epfd)
		return false
	}
	ep := os.NewFile(uintptr(epfd), "h1server-epoll")
	// A file the poller cannot watch refuses deadlines: the waiter would
	// block a thread, or not wait at all.
	raw, err := ep.SyscallConn()
	if err != nil || ep.SetReadDeadline(time.Time{}) != nil {
		ep.Close()
		return false
	}
	p.ep, p.epfd, p.raw = ep, epfd, raw
	p.parked = make(map[uint32]*conn)
	p.pollFn = p.poll
	go p.wait()
	return true
}

// newID returns an id no parked connection has; p.mu is held.
func (p *parker) newID() uint32 {
	for {
		p.lastID++
		if p.lastID == 0 || p.lastID > 1<<31-1 { // ids fit the event's int32
			p.lastID = 1
		}
		if _, used := p.parked[p.lastID]; !used {
			return p.lastID
		}
	}
}

// wait is the waiter goroutine: it takes events until the epoll file is
// closed (close).
func (p *parker) wait() {
	for p.raw.Read(p.pollFn) == nil {
	}
}

// poll is the waiter's RawConn.Read callback: it takes every event ready
// and returns false to wait for more. The check always comes before the
// wait, so an event that came meanwhile is never missed.
func (p *parker) poll(epfd uintptr) bool {
	for {
		n, err := syscall.EpollWait(int(epfd), p.events[:], 0)
		if err == syscall.EINTR {
			continue
		}
		if n <= 0 {
			return false
		}
		var ready []*conn
		p.mu.Lock()
		for _, ev := range p.events[:n] {
			if c := p.parked[uint32(ev.Fd)]; c != nil {
				p.unpark(c)
				ready = append(ready, c)
			}
		}
		p.mu.Unlock()
		for _, c := range ready {
			go c.resume()
		}
		if n < len(p.events) {
			return false
		}
	}
}

// unpark takes c out of the parker; p.mu is held. Its registration goes
// too (one-shot, it is disabled once it fired, not removed), unless the
// connection was closed meanwhile, which removed it: Control runs nothing
// on a closed connection, so no other socket that took its descriptor
// number is ever touched.
func (p *parker) unpark(c *conn) {
	delete(p.parked, c.park.id)
	if c.park.index >= 0 {
		heap.Remove(&p.limits, c.park.index)
	}
	c.park = parkState{}
	c.cr.avail.raw.Control(func(fd uintptr) {
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// armTimer makes the timer fire at the soonest limit; p.mu is held.
func (p *parker) armTimer() {
	d := time.Until(p.limits[0].waitUntil)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.expire)
		return
	}
	p.timer.Reset(d)
}

// expire hands the connections whose limit passed to goroutines, which
// find their read deadline passed and close them.
func (p *parker) expire() {
	var due []*conn
	p.mu.Lock()
	now := time.Now()
	for len(p.limits) > 0 && !p.limits[0].waitUntil.After(now) {
		c := p.limits[0]
		p.unpark(c)
		due = append(due, c)
	}
	if len(p.limits) > 0 && !p.closed {
		p.armTimer()
	}
	p.mu.Unlock()
	for _, c := range due {
		go c.resume()
	}
}

// close ends parking, for Shutdown and Close: every parked connection
// gets its goroutine back (to be closed as an idle one), later ones wait
// in goroutines, and the waiter ends.
func (p *parker) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var all []*conn
	for _, c := range p.parked {
		p.unpark(c)
		all = append(all, c)
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	ep := p.ep
	p.mu.Unlock()
	for _, c := range all {
		go c.resume()
	}
	if ep != nil {
		// Outside p.mu: Close waits for the waiter to leave poll, which
		// may be waiting for p.mu.
		ep.Close()
	}
}

// count is the number of parked connections.
func (p *parker) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// limitQueue is a heap of parked connections by wait limit.
type limitQueue []*conn

func (q limitQueue) Len() int           { return len(q) }
func (q limitQueue) Less(i, j int) bool { return q[i].waitUntil.Before(q[j].waitUntil) }
func (q limitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].park.index, q[j].park.index = i, j
}
func (q *limitQueue) Push(x any) {
	c := x.(*conn)
	c.park.index = len(*q)
	*q = append(*q, c)
}
func (q *limitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	c.park.index = -1
	return c
}
