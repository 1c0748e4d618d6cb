package egress

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/umbragw/umbra/internal/shadow"
	"github.com/umbragw/umbra/internal/store"
)

// Recordings in the embedded store (bucket "egress"), so that a shadow
// copy finds its live request's recorded calls after a restart:
//
//	e/<seq>        an episode: a live request that made calls, or a copy
//	               of one (its live request's seq, its claimed calls)
//	c/<seq>/<n>    the n-th call of live episode seq, redacted
//	state          {"clean": true} once a stop wrote everything
//
// The live path never writes: it queues the episode (one append under a
// mutex, once per flush), and the recorder writes every flushInterval in
// one transaction (one fsync), redacting calls first. The store holds the
// same episodes as memory, so record.max_bytes and record.ttl bound it
// too: an episode that leaves the table is deleted in the next flush, and
// expired ones are deleted at start-up.
//
// Per replica, not in etcd: recordings are third parties' payloads at the
// rate of live calls (up to max_bytes), which etcd's raft log and its
// request and database size limits are not made for, and the copy's
// calls come to the replica that sent the copy when services call their
// own replica's egress listener (docs/egress.md, "Fleet mode").

const (
	bucket = "egress"
	// flushInterval is how often finished calls are redacted and written.
	// A crash loses at most this much; a clean stop loses nothing.
	flushInterval = 500 * time.Millisecond
	// maxTxBytes bounds one write transaction; a larger batch takes more.
	maxTxBytes = 8 << 20
)

// recorder queues changed episodes and writes them off the request path.
type recorder struct {
	st *store.Store // nil: calls are only redacted
	s  *Sandbox

	mu     sync.Mutex
	dirty  []*episode
	gone   []uint64
	closed bool
}

// mark queues e for the next flush (e.dirty was set by the caller).
func (r *recorder) mark(e *episode) {
	r.mu.Lock()
	if !r.closed {
		r.dirty = append(r.dirty, e)
	}
	r.mu.Unlock()
}

// forget queues the deletion of a stored episode that left the table.
func (r *recorder) forget(e *episode) {
	r.mu.Lock()
	if !r.closed {
		r.gone = append(r.gone, e.seq)
	}
	r.mu.Unlock()
}

// episodeRecord is an episode in the store.
type episodeRecord struct {
	Trace     string        `json:"trace"`
	Role      string        `json:"role"`
	Route     string        `json:"route,omitempty"`
	Expires   int64         `json:"expires"` // unix nanoseconds
	Ambiguous bool          `json:"ambiguous,omitempty"`
	Live      uint64        `json:"live,omitempty"` // a copy's live episode
	Target    string        `json:"target,omitempty"`
	CopyRole  int           `json:"copy_role,omitempty"`
	Claims    []claimRecord `json:"claims,omitempty"`
}

// claimRecord is how many calls a copy made to one endpoint.
type claimRecord struct {
	Service  string `json:"service"`
	Endpoint string `json:"endpoint"`
	N        int    `json:"n"`
}

// callRecord is a live call in the store, redacted.
type callRecord struct {
	Service  string  `json:"service"`
	Endpoint string  `json:"endpoint"`
	Ord      int     `json:"ord"` // position among the episode's calls to (service, endpoint)
	At       int64   `json:"at"`
	Failed   string  `json:"failed,omitempty"`
	Req      message `json:"req"`
	Resp     message `json:"resp"`
}

type kv struct {
	key  string
	val  any
	size int
}

func episodeKey(seq uint64) string { return fmt.Sprintf("e/%016x", seq) }
func callPrefix(seq uint64) string { return fmt.Sprintf("c/%016x/", seq) }

// flush redacts the queued episodes' finished calls and writes what
// changed; clean marks the store as written by a clean stop.
func (r *recorder) flush(clean bool) error {
	r.mu.Lock()
	dirty, gone := r.dirty, r.gone
	r.dirty, r.gone = nil, nil
	if clean {
		r.closed = true
	}
	r.mu.Unlock()
	var batch []kv
	var saved []*call
	for _, e := range dirty {
		recs, calls := r.records(e)
		batch = append(batch, recs...)
		saved = append(saved, calls...)
	}
	if r.st == nil {
		return nil
	}
	err := r.write(batch, gone, clean)
	if err != nil {
		r.requeue(dirty, saved, gone)
		r.s.metrics.storeErrors.Inc()
		r.s.warn("egress: writing recordings to the store failed; they stay in memory and are tried again", "err", err.Error())
	}
	return err
}

// write runs the batch in transactions of at most maxTxBytes.
func (r *recorder) write(batch []kv, gone []uint64, clean bool) error {
	for len(batch) > 0 || len(gone) > 0 || clean {
		n, size := 0, 0
		for n < len(batch) && (n == 0 || size+batch[n].size <= maxTxBytes) {
			size += batch[n].size
			n++
		}
		part := batch[:n]
		batch = batch[n:]
		last := len(batch) == 0
		err := r.st.Update(func(tx *store.Tx) error {
			for _, p := range part {
				if err := tx.Put(bucket, p.key, p.val); err != nil {
					return err
				}
			}
			if !last {
				return nil
			}
			for _, seq := range gone {
				if err := tx.Delete(bucket, episodeKey(seq)); err != nil {
					return err
				}
				if _, err := tx.DeletePrefix(bucket, callPrefix(seq)); err != nil {
					return err
				}
			}
			if clean {
				return tx.Put(bucket, "state", storeState{Clean: true})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if last {
			return nil
		}
	}
	return nil
}

// requeue puts a failed batch back for the next flush.
func (r *recorder) requeue(dirty []*episode, saved []*call, gone []uint64) {
	for _, c := range saved {
		c.ep.mu.Lock()
		c.saved = false
		c.ep.mu.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.gone = append(r.gone, gone...)
	for _, e := range dirty {
		e.mu.Lock()
		again := !e.dirty && !e.detached
		e.dirty = true
		e.mu.Unlock()
		if again {
			r.dirty = append(r.dirty, e)
		}
	}
}

// records settles e's finished calls and returns what the store needs of
// it now, and the calls it marked saved.
func (r *recorder) records(e *episode) ([]kv, []*call) {
	if e.role == RoleShadow {
		return r.copyRecords(e), nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dirty = false
	var out []kv
	var saved []*call
	for i, c := range e.order {
		if !c.finished || c.saved {
			continue
		}
		c.settle()
		if r.st == nil || e.detached {
			continue
		}
		c.saved = true
		saved = append(saved, c)
		rec := callRecord{Service: c.key.service, Endpoint: c.key.endpoint, Ord: c.ord, At: c.at.UnixNano(), Failed: c.failed, Req: c.req, Resp: c.resp}
		out = append(out, kv{key: callPrefix(e.seq) + fmt.Sprintf("%08x", i), val: rec, size: int(c.req.size() + c.resp.size())})
	}
	if len(out) == 0 {
		return nil, nil
	}
	e.stored = true
	out = append(out, kv{key: episodeKey(e.seq), val: episodeRecord{Trace: e.id.String(), Role: e.role, Route: e.route,
		Expires: e.expires.Load(), Ambiguous: e.ambiguous}, size: 256})
	return out, saved
}

// copyRecords returns a copy's record when its live request made calls
// (a copy of one that made none has nothing to be replayed).
func (r *recorder) copyRecords(e *episode) []kv {
	live := e.live
	if live == nil || r.st == nil {
		return nil
	}
	live.mu.Lock()
	hasCalls, liveSeq := live.ncalls > 0 && !live.detached, live.seq
	live.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dirty = false
	if !hasCalls || e.detached {
		return nil
	}
	rec := episodeRecord{Trace: e.id.String(), Role: RoleShadow, Route: e.route, Expires: e.expires.Load(),
		Live: liveSeq, Target: e.target, CopyRole: int(e.copyRole)}
	for k, list := range e.sent {
		rec.Claims = append(rec.Claims, claimRecord{Service: k.service, Endpoint: k.endpoint, N: e.claims[k] + len(list)})
	}
	for k, n := range e.claims {
		if e.sent[k] == nil {
			rec.Claims = append(rec.Claims, claimRecord{Service: k.service, Endpoint: k.endpoint, N: n})
		}
	}
	e.stored = true
	return []kv{{key: episodeKey(e.seq), val: rec, size: 256}}
}

// storeState says how the last run stopped.
type storeState struct {
	Clean bool `json:"clean"`
}

// restored is what start-up read from the store.
type restored struct {
	lives, copies, expired, dropped int
	clean                           bool
}

// restore loads the unexpired recordings of an earlier run into the
// table, within the byte budget (newest first), and deletes the rest.
// After a stop that was not clean (a crash) copies are not restored: the
// last flushInterval of their calls may be missing, so a copy could be
// replayed the answer of a call it already made; their calls get
// simulations or the unmatched answer, and are never forwarded.
func (s *Sandbox) restore(st *store.Store) (restored, error) {
	var res restored
	var state storeState
	eps := map[uint64]*episodeRecord{}
	calls := map[uint64][]callRecord{}
	var bad []string
	err := st.View(func(tx *store.Tx) error {
		if _, err := tx.Get(bucket, "state", &state); err != nil {
			bad = append(bad, "state")
		}
		if err := tx.Scan(bucket, "e/", func(key string, raw []byte) error {
			seq, err := strconv.ParseUint(strings.TrimPrefix(key, "e/"), 16, 64)
			var rec episodeRecord
			if err != nil || json.Unmarshal(raw, &rec) != nil {
				bad = append(bad, key)
				return nil
			}
			eps[seq] = &rec
			return nil
		}); err != nil {
			return err
		}
		return tx.Scan(bucket, "c/", func(key string, raw []byte) error {
			parts := strings.Split(key, "/")
			var rec callRecord
			seq, err := strconv.ParseUint(parts[1], 16, 64)
			if len(parts) != 3 || err != nil || json.Unmarshal(raw, &rec) != nil {
				bad = append(bad, key)
				return nil
			}
			calls[seq] = append(calls[seq], rec) // in key order: the call order
			return nil
		})
	})
	if err != nil {
		return res, err
	}
	res.clean = state.Clean
	now := time.Now()
	var drop []uint64
	seqs := make([]uint64, 0, len(eps))
	for seq := range eps {
		seqs = append(seqs, seq)
		if seq > s.table.seq.Load() {
			s.table.seq.Store(seq)
		}
	}
	for seq := range calls {
		if eps[seq] == nil {
			drop = append(drop, seq)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] > seqs[j] }) // newest first
	lives := map[uint64]*episode{}
	for _, seq := range seqs {
		rec := eps[seq]
		if rec.Role == RoleShadow {
			continue
		}
		e, ok := s.restoreLive(seq, rec, calls[seq], now)
		switch {
		case e == nil && !ok:
			res.expired++
			drop = append(drop, seq)
		case e == nil:
			res.dropped++
			drop = append(drop, seq)
		default:
			lives[seq] = e
			res.lives++
		}
	}
	for _, seq := range seqs {
		rec := eps[seq]
		if rec.Role != RoleShadow {
			continue
		}
		live := lives[rec.Live]
		rec.Expires = min(rec.Expires, now.Add(time.Duration(s.table.ttl.Load())).UnixNano())
		switch {
		case live == nil || rec.Expires < now.UnixNano():
			res.expired++
			drop = append(drop, seq)
		case !res.clean:
			res.dropped++
			drop = append(drop, seq)
		case !s.restoreCopy(seq, rec, live):
			res.dropped++
			drop = append(drop, seq)
		default:
			res.copies++
		}
	}
	err = st.Update(func(tx *store.Tx) error {
		for _, key := range bad {
			if err := tx.Delete(bucket, key); err != nil {
				return err
			}
		}
		for _, seq := range drop {
			if err := tx.Delete(bucket, episodeKey(seq)); err != nil {
				return err
			}
			if _, err := tx.DeletePrefix(bucket, callPrefix(seq)); err != nil {
				return err
			}
		}
		// Until the next clean stop, the store may lag behind memory.
		return tx.Put(bucket, "state", storeState{Clean: false})
	})
	return res, err
}

// restoreLive rebuilds a live episode and its calls; ok is false when it
// expired, e nil with ok when the budget has no room for it.
func (s *Sandbox) restoreLive(seq uint64, rec *episodeRecord, calls []callRecord, now time.Time) (e *episode, ok bool) {
	id, err := parseTraceHex(rec.Trace)
	if err != nil || len(calls) == 0 {
		return nil, false
	}
	// A record.ttl lowered since the calls were recorded applies to them.
	if ttlEnd := calls[len(calls)-1].At + s.table.ttl.Load(); ttlEnd < rec.Expires {
		rec.Expires = ttlEnd
	}
	if rec.Expires < now.UnixNano() {
		return nil, false
	}
	e = &episode{id: id, role: rec.Role, route: rec.Route, seq: seq, ambiguous: rec.Ambiguous,
		calls: map[callKey][]*call{}, stored: true, restored: true, charged0: true}
	e.expires.Store(rec.Expires)
	size := int64(episodeOverhead)
	for i := range calls {
		cr := &calls[i]
		k := callKey{cr.Service, cr.Endpoint}
		if cr.Ord < 0 || cr.Ord >= maxCallsPerTrace {
			continue
		}
		// A call that was not finished when the store was last written
		// (a slow one beside later ones) is missing: its place is kept,
		// as not replayable, so the calls after it keep their ordinals.
		for len(e.calls[k]) < cr.Ord {
			gap := &call{ep: e, key: k, ord: len(e.calls[k]), finished: true, failed: "not_recorded", saved: true}
			e.calls[k] = append(e.calls[k], gap)
			e.order = append(e.order, gap)
		}
		if len(e.calls[k]) > cr.Ord {
			continue // a duplicate
		}
		c := &call{ep: e, key: k, ord: cr.Ord, req: cr.Req, resp: cr.Resp, at: time.Unix(0, cr.At),
			finished: true, failed: cr.Failed, saved: true}
		e.calls[k] = append(e.calls[k], c)
		e.order = append(e.order, c)
		size += c.req.size() + c.resp.size()
	}
	e.ncalls = len(e.order)
	if !s.table.reserve(size) {
		return nil, true
	}
	e.bytes = size
	if !s.table.putRestored(e) {
		s.table.bytes.Add(-size)
		return nil, true
	}
	return e, true
}

// restoreCopy rebuilds a copy of a restored live episode.
func (s *Sandbox) restoreCopy(seq uint64, rec *episodeRecord, live *episode) bool {
	id, err := parseTraceHex(rec.Trace)
	if err != nil || !s.minter.isShadow(id) {
		return false
	}
	c := newCopy(id, live, rec.Target, shadow.CopyRole(rec.CopyRole), time.Unix(0, rec.Expires))
	c.seq, c.stored, c.restored = seq, true, true
	c.claims = map[callKey]int{}
	for _, cl := range rec.Claims {
		c.claims[callKey{cl.Service, cl.Endpoint}] = cl.N
	}
	return s.table.putCopy(c)
}

func parseTraceHex(s string) (traceID, error) {
	var id traceID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("bad trace id %q", s)
	}
	copy(id[:], b)
	return id, nil
}
