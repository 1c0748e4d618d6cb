package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/umbragw/umbra/internal/adoption"
	"github.com/umbragw/umbra/internal/diffs"
)

// Shared results (docs/fleet.md, "Shared results"): each replica
// publishes a bounded summary of its comparison results and of its
// adoption counts under its lease every share_interval, when it changed;
// every replica keeps the others' summaries from the watch and merges
// them on read. A summary whose lease ends (the replica died or left) is
// folded by a survivor into a departed record without a lease, so the
// fleet's counts stay; a replica that comes back on the same data
// (the same origin) takes its counts back from it.
//
//	P compare/summaries/NODE     NODE's comparison results, under its lease
//	P compare/departed/ORIGIN    the last summary of a replica gone, no lease
//	P compare/marks/ID           an operator's noise mark (ID: base64url of route, endpoint, field)
//	P compare/resets/ID          the newest reset of a route's or an endpoint's results (ID: base64url of route, endpoint)
//	P compare/reset-all          the newest reset of every route's results
//	P adoption/summaries/NODE    NODE's adoption counts, under its lease
//	P adoption/departed/ORIGIN   the last adoption counts of a process gone, no lease

// maxDeparted bounds the departed records of a kind: past it the oldest
// go (with their counts), so an etcd under rolling restarts forever does
// not fill up.
const maxDeparted = 64

// A source is one kind of shared results of this replica.
type source interface {
	// snapshot is this replica's summary and the origin of its counts,
	// or why it cannot be published now.
	snapshot() (origin string, data any, err error)
	// decode reads and checks a summary of the kind written by node.
	decode(node string, data json.RawMessage) (any, error)
	// empty reports a summary that counts nothing: not worth a write
	// (until something was written) nor a departed record.
	empty(value any) bool
}

// sharedValue is a summary as stored.
type sharedValue struct {
	V      int             `json:"v"`
	Node   string          `json:"node"`
	Origin string          `json:"origin"`
	Data   json.RawMessage `json:"data"`
}

type sharedEntry struct {
	node, origin string
	modRev       int64
	raw          []byte
	value        any
}

// shared is one kind's summaries: published by this replica, read from
// the others.
type shared struct {
	kind string // "compare" or "adoption"
	src  source

	mu       sync.Mutex
	live     map[string]sharedEntry // by node
	departed map[string]sharedEntry // by origin
	last     []byte                 // what this replica last wrote
	lastAt   clientv3.LeaseID       // under which lease
}

func newShared(kind string, src source) *shared {
	return &shared{kind: kind, src: src, live: map[string]sharedEntry{}, departed: map[string]sharedEntry{}}
}

// peers are the values of live replicas but this one, and of departed
// replicas that are not back (not under their origin now).
func (s *shared) peers(self string) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	liveOrigins := map[string]bool{}
	out := make([]any, 0, len(s.live)+len(s.departed))
	for node, e := range s.live {
		liveOrigins[e.origin] = true
		if node != self {
			out = append(out, e.value)
		}
	}
	for origin, e := range s.departed {
		if !liveOrigins[origin] {
			out = append(out, e.value)
		}
	}
	return out
}

// Keys of the shared results.
func (k keys) summary(kind, node string) string    { return k.prefix + kind + "/summaries/" + node }
func (k keys) departed(kind, origin string) string { return k.prefix + kind + "/departed/" + origin }
func (k keys) departedDir(kind string) string      { return k.prefix + kind + "/departed/" }
func (k keys) mark(m diffs.Mark) string {
	return k.prefix + "compare/marks/" + b64(m.Route+"\x00"+m.Endpoint+"\x00"+m.Field)
}
func (k keys) reset(route, endpoint string) string {
	if route == "" {
		return k.prefix + "compare/reset-all"
	}
	return k.prefix + "compare/resets/" + b64(route+"\x00"+endpoint)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// unb64 splits a key's base64url name into its n NUL-separated parts.
func unb64(id string, n int) ([]string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return nil, false
	}
	parts := strings.SplitN(string(b), "\x00", n)
	return parts, len(parts) == n && parts[0] != ""
}

// parseShared takes apart a key of the shared results (rest is the key
// without the prefix).
func parseShared(rest string) (parsed, bool) {
	kind, sub, ok := strings.Cut(rest, "/")
	if !ok || (kind != "compare" && kind != "adoption") {
		return parsed{}, false
	}
	if kind == "compare" && sub == "reset-all" {
		return parsed{kind: "reset"}, true
	}
	dir, name, ok := strings.Cut(sub, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return parsed{}, false
	}
	switch {
	case dir == "summaries":
		return parsed{kind: "summary", route: kind, name: name}, true
	case dir == "departed":
		return parsed{kind: "departed", route: kind, name: name}, true
	case kind == "compare" && dir == "marks":
		return parsed{kind: "mark", name: name}, true
	case kind == "compare" && dir == "resets":
		return parsed{kind: "reset", name: name}, true
	}
	return parsed{}, false
}

func decodeMarkID(id string) (diffs.Mark, bool) {
	parts, ok := unb64(id, 3)
	if !ok || parts[2] == "" {
		return diffs.Mark{}, false
	}
	return diffs.Mark{Route: parts[0], Endpoint: parts[1], Field: parts[2]}, true
}

type markValue struct {
	V    int        `json:"v"`
	Mark diffs.Mark `json:"mark"`
}

type resetValue struct {
	V        int       `json:"v"`
	ID       string    `json:"id"`
	Route    string    `json:"route,omitempty"`
	Endpoint string    `json:"endpoint,omitempty"`
	From     string    `json:"from"`
	At       time.Time `json:"at"`
}

// sharer publishes this replica's summaries every share interval, when
// they changed or the lease is new (the old one took them away).
func (n *Node) sharer() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.ShareInterval.D())
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-n.ctx.Done():
			return
		}
		s := n.session.Load()
		if s == nil {
			continue
		}
		for _, sh := range n.sharedKinds() {
			n.publishShared(sh, s.Lease())
		}
	}
}

func (n *Node) sharedKinds() []*shared {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*shared, 0, 2)
	for _, sh := range []*shared{n.compare, n.adoption} {
		if sh != nil {
			out = append(out, sh)
		}
	}
	return out
}

func (n *Node) publishShared(sh *shared, lease clientv3.LeaseID) {
	origin, data, err := sh.src.snapshot()
	if err != nil {
		n.log.Error("shared results not published", "kind", sh.kind, "err", err)
		return
	}
	raw, err := json.Marshal(data)
	if err != nil {
		n.log.Error("encoding shared results", "kind", sh.kind, "err", err)
		return
	}
	val := []byte(encode(sharedValue{V: formatVersion, Node: n.name, Origin: origin, Data: raw}))
	sh.mu.Lock()
	same := bytes.Equal(val, sh.last) && lease == sh.lastAt || sh.last == nil && sh.src.empty(data)
	_, wasDeparted := sh.departed[origin]
	sh.mu.Unlock()
	if same {
		return
	}
	ctx, cancel := n.requestCtx()
	defer cancel()
	ops := []clientv3.Op{clientv3.OpPut(n.keys.summary(sh.kind, n.name), string(val), clientv3.WithLease(lease))}
	if wasDeparted {
		// Back on the same data: the live summary holds those counts now.
		ops = append(ops, clientv3.OpDelete(n.keys.departed(sh.kind, origin)))
	}
	if _, err := n.client.Txn(ctx).Then(ops...).Commit(); err != nil {
		n.fail("share", err)
		return
	}
	n.ok()
	n.metrics.shared.WithLabelValues(sh.kind).Inc()
	n.metrics.sharedBytes.WithLabelValues(sh.kind).Set(float64(len(val)))
	sh.mu.Lock()
	sh.last, sh.lastAt = val, lease
	sh.mu.Unlock()
}

// handleShared applies a summary or departed record (or its deletion).
func (n *Node) handleShared(p parsed, kv *mvccpb.KeyValue, deleted bool) {
	sh := n.sharedKind(p.route)
	if sh == nil {
		return
	}
	if deleted {
		sh.mu.Lock()
		var gone sharedEntry
		var fold bool
		if p.kind == "summary" {
			gone, fold = sh.live[p.name]
			delete(sh.live, p.name)
			if fold && p.name != n.name && !sh.src.empty(gone.value) {
				// Counted as departed at once, not when the fold comes
				// back through the watch: the fleet's counts never dip.
				sh.departed[gone.origin] = gone
			}
		} else {
			delete(sh.departed, p.name)
		}
		sh.mu.Unlock()
		if fold && p.name != n.name && !sh.src.empty(gone.value) {
			n.fold(sh, gone)
		}
		return
	}
	var v sharedValue
	err := decode(kv.Value, &v, func() int { return v.V })
	if err == nil && (v.Origin == "" || (p.kind == "summary" && v.Node != p.name) || (p.kind == "departed" && v.Origin != p.name)) {
		err = errors.New("summary names another node or origin")
	}
	var value any
	if err == nil {
		value, err = sh.src.decode(v.Node, v.Data)
	}
	if err != nil {
		n.bad("summary", kv, err)
		return
	}
	e := sharedEntry{node: v.Node, origin: v.Origin, modRev: kv.ModRevision, raw: kv.Value, value: value}
	sh.mu.Lock()
	if p.kind == "summary" {
		sh.live[p.name] = e
	} else {
		sh.departed[p.name] = e
	}
	sh.mu.Unlock()
}

func (n *Node) sharedKind(kind string) *shared {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch kind {
	case "compare":
		return n.compare
	case "adoption":
		return n.adoption
	}
	return nil
}

// fold keeps the counts of a replica whose summary went with its lease:
// its last summary becomes a departed record. Every survivor tries; the
// transaction lets the first one write it (a departed record newer than
// the summary is not overwritten), and drops the oldest records past
// maxDeparted.
func (n *Node) fold(sh *shared, gone sharedEntry) {
	if n.ctx.Err() != nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := n.requestCtx()
		defer cancel()
		key := n.keys.departed(sh.kind, gone.origin)
		resp, err := n.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "<", gone.modRev)).
			Then(clientv3.OpPut(key, string(gone.raw))).
			Commit()
		if err != nil {
			n.fail("share", err)
			return
		}
		n.ok()
		if !resp.Succeeded {
			return // another survivor folded it
		}
		n.log.Info("a replica's shared results outlive it (its lease ended)", "kind", sh.kind, "replica", gone.node, "origin", gone.origin)
		n.metrics.folded.WithLabelValues(sh.kind).Inc()
		n.trimDeparted(ctx, sh)
	}()
}

// trimDeparted deletes the oldest departed records past maxDeparted.
func (n *Node) trimDeparted(ctx context.Context, sh *shared) {
	resp, err := n.client.Get(ctx, n.keys.departedDir(sh.kind), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(resp.Kvs) <= maxDeparted {
		return
	}
	kvs := resp.Kvs
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].ModRevision < kvs[j].ModRevision })
	for _, kv := range kvs[:len(kvs)-maxDeparted] {
		_, _ = n.client.Delete(ctx, string(kv.Key))
	}
}

// forgetMissingShared drops summaries and departed records a sync did
// not find; summaries that went meanwhile are folded.
func (n *Node) forgetMissingShared(present map[string]bool) {
	for _, sh := range n.sharedKinds() {
		var gone []sharedEntry
		sh.mu.Lock()
		for origin := range sh.departed {
			if !present[n.keys.departed(sh.kind, origin)] {
				delete(sh.departed, origin)
			}
		}
		for node, e := range sh.live {
			if !present[n.keys.summary(sh.kind, node)] {
				delete(sh.live, node)
				if node != n.name && !sh.src.empty(e.value) {
					sh.departed[e.origin] = e // until the fold comes back
					gone = append(gone, e)
				}
			}
		}
		sh.mu.Unlock()
		for _, e := range gone {
			n.fold(sh, e)
		}
	}
}

// compareShare is diffs.Fleet on the node.
type compareShare struct {
	n   *Node
	rec *diffs.Recorder
}

// ShareResults makes rec's reports the fleet's: its summaries are
// published and the others' merged on read; noise marks and resets go
// through etcd to every replica. Called before Start and before rec is
// attached to its store.
func (n *Node) ShareResults(rec *diffs.Recorder) {
	cs := &compareShare{n: n, rec: rec}
	n.mu.Lock()
	n.compare = newShared("compare", cs)
	n.recorder = rec
	n.mu.Unlock()
	rec.SetFleet(cs)
}

func (c *compareShare) Node() string { return c.n.name }

func (c *compareShare) Peers() []diffs.Summary { return peersOf[diffs.Summary](c.n, "compare") }

func (c *compareShare) snapshot() (string, any, error) {
	s, err := c.rec.Summary()
	if err != nil {
		return "", nil, fmt.Errorf("writing the results to the store before publishing them: %w", err)
	}
	s.Node = c.n.name
	return s.Origin, s, nil
}

func (c *compareShare) decode(node string, data json.RawMessage) (any, error) {
	return decodeSummary(data, node, func(s *diffs.Summary) string { return s.Node }, (*diffs.Summary).Valid)
}

// decodeSummary reads a summary of type T and checks that node wrote it
// and that it is sane.
func decodeSummary[T any](data json.RawMessage, node string, nodeOf func(*T) string, valid func(*T) error) (any, error) {
	var s T
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	if nodeOf(&s) != node {
		return nil, errors.New("summary names another node")
	}
	if err := valid(&s); err != nil {
		return nil, err
	}
	return s, nil
}

// peersOf is the other replicas' summaries of a kind, as their type.
func peersOf[T any](n *Node, kind string) []T {
	vals := n.sharedKind(kind).peers(n.name)
	out := make([]T, 0, len(vals))
	for _, v := range vals {
		out = append(out, v.(T))
	}
	return out
}

func (c *compareShare) empty(v any) bool { return len(v.(diffs.Summary).Routes) == 0 }

func (c *compareShare) SetMark(m diffs.Mark, noise bool) error {
	n := c.n
	ctx, cancel := n.requestCtx()
	defer cancel()
	var err error
	if noise {
		_, err = n.client.Put(ctx, n.keys.mark(m), encode(markValue{V: formatVersion, Mark: m}))
	} else {
		_, err = n.client.Delete(ctx, n.keys.mark(m))
	}
	if err != nil {
		n.fail("share", err)
		return fmt.Errorf("storing the noise mark for the fleet in etcd: %w", err)
	}
	n.ok()
	return nil
}

func (c *compareShare) Reset(route, endpoint string) (diffs.ResetMark, error) {
	n := c.n
	ctx, cancel := n.requestCtx()
	defer cancel()
	id := newID()
	val := resetValue{V: formatVersion, ID: id, Route: route, Endpoint: endpoint, From: n.name, At: time.Now()}
	ops := []clientv3.Op{clientv3.OpPut(n.keys.reset(route, endpoint), encode(val))}
	if route == "" {
		// Departed counts are from before the reset: gone too.
		ops = append(ops, clientv3.OpDelete(n.keys.departedDir("compare"), clientv3.WithPrefix()))
	}
	resp, err := n.client.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		n.fail("share", err)
		return diffs.ResetMark{}, fmt.Errorf("storing the reset for the fleet in etcd: %w", err)
	}
	n.ok()
	return diffs.ResetMark{ID: id, Rev: resp.Header.Revision}, nil
}

// handleMark applies a noise mark made on any replica.
func (n *Node) handleMark(id string, kv *mvccpb.KeyValue, deleted bool) {
	rec := n.results()
	if rec == nil {
		return
	}
	m, ok := decodeMarkID(id)
	if !ok {
		n.bad("mark", kv, errors.New("not a mark key"))
		return
	}
	if !deleted {
		var v markValue
		if err := decode(kv.Value, &v, func() int { return v.V }); err != nil || v.Mark != m {
			n.bad("mark", kv, errOr(err, "mark value differs from its key"))
			return
		}
	}
	if err := rec.ApplyMark(m, !deleted); err != nil {
		n.log.Error("applying the fleet's noise mark", "route", m.Route, "endpoint", m.Endpoint, "field", m.Field, "err", err)
	}
}

// handleReset applies a reset made on any replica (once); id is the
// key's name, "" for a reset of every route.
func (n *Node) handleReset(id string, kv *mvccpb.KeyValue) {
	rec := n.results()
	if rec == nil {
		return
	}
	route, endpoint := "", ""
	if id != "" {
		parts, ok := unb64(id, 2)
		if !ok {
			n.bad("reset", kv, errors.New("not a reset key"))
			return
		}
		route, endpoint = parts[0], parts[1]
	}
	var v resetValue
	if err := decode(kv.Value, &v, func() int { return v.V }); err != nil || v.ID == "" || v.Route != route || v.Endpoint != endpoint {
		n.bad("reset", kv, errOr(err, "reset value differs from its key"))
		return
	}
	if err := rec.ApplyReset(route, endpoint, diffs.ResetMark{ID: v.ID, Rev: kv.ModRevision}); err != nil {
		n.log.Error("applying the fleet's reset of comparison results", "route", route, "endpoint", endpoint, "err", err)
	}
}

// syncMarks makes the marks read by a sync the recorder's whole set.
func (n *Node) syncMarks(kvs []*mvccpb.KeyValue) {
	rec := n.results()
	if rec == nil {
		return
	}
	var marks []diffs.Mark
	for _, kv := range kvs {
		p, ok := n.keys.parse(string(kv.Key))
		if !ok || p.kind != "mark" {
			continue
		}
		if m, ok := decodeMarkID(p.name); ok {
			marks = append(marks, m)
		}
	}
	if err := rec.ApplyMarks(marks); err != nil {
		n.log.Error("applying the fleet's noise marks", "err", err)
	}
}

func (n *Node) results() *diffs.Recorder {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.recorder
}

// adoptionShare publishes and reads adoption counts.
type adoptionShare struct {
	n *Node
	t *adoption.Tracker
}

// ShareAdoption makes t's reports the fleet's. Called before Start.
func (n *Node) ShareAdoption(t *adoption.Tracker) {
	as := &adoptionShare{n: n, t: t}
	n.mu.Lock()
	n.adoption = newShared("adoption", as)
	n.mu.Unlock()
	t.SetFleet(as)
}

func (a *adoptionShare) Peers() []adoption.Summary { return peersOf[adoption.Summary](a.n, "adoption") }

func (a *adoptionShare) snapshot() (string, any, error) {
	s := a.t.Summary()
	s.Node = a.n.name
	return s.Origin, s, nil
}

func (a *adoptionShare) decode(node string, data json.RawMessage) (any, error) {
	return decodeSummary(data, node, func(s *adoption.Summary) string { return s.Node }, (*adoption.Summary).Valid)
}

func (a *adoptionShare) empty(v any) bool {
	for _, r := range v.(adoption.Summary).Report.Routes {
		if r.Requests > 0 {
			return false
		}
	}
	return true
}
