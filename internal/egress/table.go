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
// and its answer, recorded when it is back. done is closed then.
type call struct {
	ep     *episode // the live episode that made it
	req    message
	resp   message
	at     time.Time
	done   chan struct{}
	failed string // why there is no answer to replay: an error kind, "truncated"
}

// episode is what umbra knows of one trace: a live (or canary) request and
// its calls, or a shadow copy and the live episode it copies.
type episode struct {
	id      traceID
	role    string
	route   string
	expires atomic.Int64 // unix nanoseconds

	mu      sync.Mutex
	open    bool                   // live: the request is being served
	pending int                    // live: calls forwarded, answer not yet back
	ncalls  int                    // live: calls recorded (placeholders included)
	calls   map[callKey][]*call    // live: the calls in order per key
	changed chan struct{}          // live: closed and replaced when calls change
	bytes   int64                  // charged to the table's budget
	sent    map[callKey][]*message // copy: its own calls in order per key

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
	e := &episode{id: id, role: role, route: route, open: true, calls: map[callKey][]*call{},
		changed: make(chan struct{})}
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

// notify wakes shadow calls waiting for this live episode's calls; e.mu is held.
func (e *episode) notify() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// table holds the episodes by trace id, bounded in time (ttl) and size
// (max bytes of episodes and recordings together).
type table struct {
	shards [64]tableShard
	bytes  atomic.Int64
	max    atomic.Int64
	ttl    atomic.Int64 // nanoseconds
	count  atomic.Int64
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
	old.mu.Unlock()
}

// putCopy registers a copy's episode; false when the budget is full.
func (t *table) putCopy(e *episode) bool {
	if !t.reserve(e.bytes) {
		return false
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
			e.mu.Unlock()
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
