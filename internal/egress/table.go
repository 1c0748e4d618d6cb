package egress

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umbragw/umbra/internal/shadow"
)

// Roles of an episode, the values of the role label.
const (
	RoleLive    = "live"
	RoleCanary  = "canary"
	RoleShadow  = "shadow"
	RoleUnknown = "unknown"
)

// episodeOverhead is what an episode is charged in the recording budget
// besides its calls: the map entry, the struct and its maps.
const episodeOverhead = 512

// callKey names a call for pairing: the egress service and the endpoint
// ("POST /v1/charges/{id}").
type callKey struct{ service, endpoint string }

// message is one recorded request or answer, redacted.
type message struct {
	Method    string      `json:"method,omitempty"`
	URI       string      `json:"uri,omitempty"` // path and query as the upstream got them
	Status    int         `json:"status,omitempty"`
	Header    http.Header `json:"header,omitempty"`
	Body      []byte      `json:"body,omitempty"`
	Truncated bool        `json:"truncated,omitempty"`
}

func (m *message) size() int64 {
	n := int64(len(m.Method) + len(m.URI) + len(m.Body) + 64)
	for k, vs := range m.Header {
		n += int64(len(k))
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// call is one live call: its request, recorded before it is forwarded,
// and its answer, recorded when it is back (finished is set then).
//
// The live call's path keeps both as they came; they are redacted on
// their first read (settle), by a shadow call replaying the answer, the
// comparison, an export, or the recorder, which settles every finished
// call within flushInterval and only then writes it to the store. The
// JSON redaction and the header copies are thus off the live path.
type call struct {
	ep       *episode // the live episode that made it
	key      callKey
	ord      int // position among ep's calls to key
	req      message
	resp     message
	at       time.Time
	finished bool   // the answer is recorded (or failed says why not)
	failed   string // why there is no answer to replay: an error kind, "truncated"
	red      *redactor
	reqRaw   bool // req is not yet redacted
	respRaw  bool // resp is not yet redacted
	saved    bool // written to the store
}

// settle redacts what is not yet redacted; ep.mu is held.
func (c *call) settle() {
	if c.reqRaw {
		c.req = c.red.message(c.req, false)
		c.reqRaw = false
	}
	if c.respRaw {
		c.resp = c.red.message(c.resp, true)
		c.respRaw = false
	}
}

// episode is what umbra knows of one trace: a live (or canary) request and
// its calls, or a shadow copy and the live episode it copies.
type episode struct {
	id      traceID
	role    string
	route   string
	expires atomic.Int64 // unix nanoseconds

	seq     uint64 // unique in the table (and its store), also across restarts
	mu      sync.Mutex
	open    bool                   // live: the request is being served
	pending int                    // live: calls forwarded, answer not yet back
	ncalls  int                    // live: calls recorded (placeholders included)
	calls   map[callKey][]*call    // live: the calls in order per key (nil until the first)
	order   []*call                // live: the calls in the order they were made
	changed chan struct{}          // live: made by a waiter, closed when calls change
	bytes   int64                  // charged to the table's budget
	sent    map[callKey][]*message // copy: its own calls in order per key
	claims  map[callKey]int        // copy: calls claimed before a restart (restored)

	dirty    bool // queued for the recorder
	stored   bool // has a record in the store
	restored bool // read from the store at start-up

	// Copies only.
	live      *episode
	target    string
	copyRole  shadow.CopyRole
	ambiguous bool // live: another live request had the same trace id at once
	detached  bool // live: replaced in the table by a newer request; records nothing more
	charged0  bool // live: its overhead is charged (from its first call on)
	compared  []*episode
	waiting   int  // live: compared copies not yet over
	ok        bool // copy: the copy got an answer
}

func newLive(id traceID, route, role string, expires time.Time) *episode {
	e := &episode{id: id, role: role, route: route, open: true}
	e.expires.Store(expires.UnixNano())
	return e
}

func newCopy(id traceID, live *episode, target string, role shadow.CopyRole, expires time.Time) *episode {
	e := &episode{id: id, role: RoleShadow, live: live, target: target, copyRole: role,
		sent: map[callKey][]*message{}, bytes: episodeOverhead}
	if live != nil {
		e.route = live.route
	}
	e.expires.Store(expires.UnixNano())
	return e
}

// notify wakes shadow calls waiting for this live episode's calls; e.mu
// is held. The channel exists only while someone waits: the live path
// makes none.
func (e *episode) notify() {
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}

// waitChan is the channel notify closes next; e.mu is held.
func (e *episode) waitChan() chan struct{} {
	if e.changed == nil {
		e.changed = make(chan struct{})
	}
	return e.changed
}

// table holds the episodes by trace id, bounded in time (ttl) and size
// (max bytes of episodes and recordings together).
type table struct {
	shards [64]tableShard
	bytes  atomic.Int64
	max    atomic.Int64
	ttl    atomic.Int64 // nanoseconds
	count  atomic.Int64
	seq    atomic.Uint64 // the last episode's seq
	// gone is told of an episode that left the table and has a record in
	// the store (nil without a store).
	gone func(*episode)
}

type tableShard struct {
	mu sync.Mutex
	m  map[traceID]*episode
}

func newTable(max int64, ttl time.Duration) *table {
	t := &table{}
	t.max.Store(max)
	t.ttl.Store(int64(ttl))
	for i := range t.shards {
		t.shards[i].m = map[traceID]*episode{}
	}
	return t
}

func (t *table) shard(id traceID) *tableShard { return &t.shards[id[15]&63] }

// reserve charges n bytes to the budget, or reports that it is full.
func (t *table) reserve(n int64) bool {
	if t.bytes.Add(n) > t.max.Load() {
		t.bytes.Add(-n)
		return false
	}
	return true
}

func (t *table) expiry(now time.Time) time.Time { return now.Add(time.Duration(t.ttl.Load())) }

// get returns the unexpired episode of id.
func (t *table) get(id traceID, now time.Time) *episode {
	s := t.shard(id)
	s.mu.Lock()
	e := s.m[id]
	s.mu.Unlock()
	if e == nil || e.expires.Load() < now.UnixNano() {
		return nil
	}
	return e
}

// putLive registers a live episode. A trace id that another live request
// is still using makes both ambiguous: their calls are forwarded and
// recorded, but never replayed to a copy, which could get the other
// request's answers. A trace id reused after the first request ended is a
// new episode. It returns nil when the budget is full.
func (t *table) putLive(e *episode) {
	e.seq = t.seq.Add(1)
	s := t.shard(e.id)
	s.mu.Lock()
	old := s.m[e.id]
	s.m[e.id] = e
	s.mu.Unlock()
	if old == nil {
		t.count.Add(1)
		return
	}
	old.mu.Lock()
	if old.live == nil && old.role != RoleShadow && old.open {
		old.ambiguous = true
		// e is already published: its copies read the flag under e.mu.
		e.mu.Lock()
		e.ambiguous = true
		e.mu.Unlock()
	}
	// The old episode stays reachable from its copies; its bytes are
	// returned now, since the sweeper will not find it any more.
	old.detached = true
	t.bytes.Add(-old.bytes)
	old.bytes = 0
	stored := old.stored
	old.mu.Unlock()
	if stored && t.gone != nil {
		t.gone(old)
	}
}

// putCopy registers a copy's episode; false when the budget is full.
func (t *table) putCopy(e *episode) bool {
	if !t.reserve(e.bytes) {
		return false
	}
	if e.seq == 0 {
		e.seq = t.seq.Add(1)
	}
	s := t.shard(e.id)
	s.mu.Lock()
	_, dup := s.m[e.id]
	s.m[e.id] = e
	s.mu.Unlock()
	if !dup {
		t.count.Add(1)
	}
	return true
}

// putRestored registers a live episode read from the store, unless a
// newer one has its trace id (restore goes newest first).
func (t *table) putRestored(e *episode) bool {
	s := t.shard(e.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[e.id] != nil {
		return false
	}
	s.m[e.id] = e
	t.count.Add(1)
	return true
}

// charge adds n bytes to e's recordings if the budget allows; e.mu is
// held. A live episode's overhead is charged with its first call.
func (t *table) charge(e *episode, n int64) bool {
	if e.detached {
		return false
	}
	if !e.charged0 {
		n += episodeOverhead
	}
	if !t.reserve(n) {
		return false
	}
	e.charged0 = true
	e.bytes += n
	return true
}

// sweep drops expired episodes and returns their bytes to the budget.
func (t *table) sweep(now time.Time) {
	cut := now.UnixNano()
	for i := range t.shards {
		s := &t.shards[i]
		var gone []*episode
		s.mu.Lock()
		for id, e := range s.m {
			if e.expires.Load() < cut {
				delete(s.m, id)
				gone = append(gone, e)
			}
		}
		s.mu.Unlock()
		for _, e := range gone {
			t.count.Add(-1)
			e.mu.Lock()
			e.detached = true
			t.bytes.Add(-e.bytes)
			e.bytes = 0
			stored := e.stored
			e.mu.Unlock()
			if stored && t.gone != nil {
				t.gone(e)
			}
		}
	}
}

// each calls fn for every unexpired live episode (export).
func (t *table) each(now time.Time, fn func(*episode)) {
	cut := now.UnixNano()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		list := make([]*episode, 0, len(s.m))
		for _, e := range s.m {
			if e.live == nil && e.role != RoleShadow && e.expires.Load() >= cut {
				list = append(list, e)
			}
		}
		s.mu.Unlock()
		for _, e := range list {
			fn(e)
		}
	}
}
