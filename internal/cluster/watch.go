package cluster

import (
	"context"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// sync reads every key of the fleet once and applies it: at start, and
// when the watch must restart from a revision etcd compacted away. It is
// one range read, and a state is applied only when it is newer than the
// one applied, so a compaction costs one read and no reload storm
// (APISIX reloads everything on every compaction: apache/apisix#12167).
func (n *Node) sync(ctx context.Context) error {
	resp, err := n.client.Get(ctx, n.keys.prefix, clientv3.WithPrefix())
	if err != nil {
		n.fail("sync", err)
		return err
	}
	n.ok()
	n.metrics.resyncs.Inc()
	present := map[string]bool{}
	for _, kv := range resp.Kvs {
		present[string(kv.Key)] = true
		n.handle(kv, false)
	}
	n.forgetMissing(present)
	n.forgetMissingShared(present)
	n.syncMarks(resp.Kvs)
	n.mu.Lock()
	n.rev = resp.Header.Revision
	n.mu.Unlock()
	return nil
}

// forgetMissing drops members and windows whose keys a sync did not find
// (their leases expired while the watch was down).
func (n *Node) forgetMissing(present map[string]bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for node := range n.members {
		if !present[n.keys.member(node)] {
			delete(n.members, node)
		}
	}
	n.metrics.members.Set(float64(len(n.members)))
	for _, r := range n.routes {
		for node := range r.peers {
			if !present[n.keys.window(r.name, node)] {
				delete(r.peers, node)
			}
		}
		for key := range r.candidates {
			if !present[key] {
				delete(r.candidates, key)
			}
		}
	}
}

// watch follows every change of the fleet's keys from the last revision
// read. etcd's client resumes a broken watch by itself; when the
// revision to resume from was compacted the watch ends with
// CompactRevision set, and the node reads everything once (sync) and
// watches on from there.
func (n *Node) watch() {
	defer n.wg.Done()
	for n.ctx.Err() == nil {
		n.mu.Lock()
		rev := n.rev
		n.mu.Unlock()
		if rev == 0 { // never read: etcd was away at start
			if n.sync(n.ctx) != nil {
				n.sleep(500 * time.Millisecond)
			}
			continue
		}
		n.watchFrom(rev + 1)
	}
}

// watchFrom watches from rev until the watch ends, then returns.
func (n *Node) watchFrom(rev int64) {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(n.ctx))
	defer cancel()
	wch := n.client.Watch(ctx, n.keys.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithProgressNotify())
	for resp := range wch {
		if resp.CompactRevision != 0 {
			n.log.Info("watch revision compacted: reading the fleet's keys once", "from", rev, "compacted", resp.CompactRevision)
			if n.sync(n.ctx) != nil {
				n.sleep(500 * time.Millisecond)
			}
			return
		}
		if err := resp.Err(); err != nil {
			n.fail("watch", err)
			n.sleep(200 * time.Millisecond)
			return
		}
		for _, ev := range resp.Events {
			n.handle(ev.Kv, ev.Type == mvccpb.DELETE)
		}
		n.mu.Lock()
		if resp.Header.Revision > n.rev {
			n.rev = resp.Header.Revision
		}
		n.mu.Unlock()
	}
}

// handle applies one key's new value (or its deletion).
func (n *Node) handle(kv *mvccpb.KeyValue, deleted bool) {
	p, ok := n.keys.parse(string(kv.Key))
	if !ok {
		return // not ours (another program under the prefix, or an older layout)
	}
	switch p.kind {
	case "member":
		n.handleMember(p.name, kv, deleted)
	case "state":
		if !deleted {
			n.handleState(p.route, kv)
		}
	case "window":
		n.handleWindow(p.route, p.name, kv, deleted)
	case "leader":
		n.handleCandidate(p.route, string(kv.Key), kv, deleted)
	case "command":
		if !deleted {
			n.handleCommand(p.route, p.name, kv)
		}
	case "result":
		if !deleted {
			n.handleResult(p.name, kv)
		}
	case "summary", "departed":
		n.handleShared(p, kv, deleted)
	case "mark":
		n.handleMark(p.name, kv, deleted)
	case "reset":
		if !deleted {
			n.handleReset(p.name, kv)
		}
	}
}

func (n *Node) bad(kind string, kv *mvccpb.KeyValue, err error) {
	n.metrics.badValues.WithLabelValues(kind).Inc()
	n.log.Warn("ignoring a value in etcd", "key", string(kv.Key), "revision", kv.ModRevision, "err", err)
}

func (n *Node) handleMember(node string, kv *mvccpb.KeyValue, deleted bool) {
	var m memberValue
	if !deleted {
		if err := decode(kv.Value, &m, func() int { return m.V }); err != nil || m.Node != node {
			n.bad("member", kv, errOr(err, "member record names another node"))
			return
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if deleted {
		delete(n.members, node)
	} else {
		n.members[node] = m
	}
	n.metrics.members.Set(float64(len(n.members)))
}

func (n *Node) handleState(routeName string, kv *mvccpb.KeyValue) {
	var v stateValue
	if err := decode(kv.Value, &v, func() int { return v.V }); err != nil {
		n.bad("state", kv, err)
		return
	}
	r := n.route(routeName)
	if r == nil {
		return // a route this replica has no plan for (yet): sync reads it when it has
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.mu.Lock()
	if kv.ModRevision <= r.applied {
		r.mu.Unlock()
		return
	}
	if v.Node == n.name && r.leading.Load() {
		// The leader's own write coming back: its controller is already
		// there or further on (the watch may deliver a write before the
		// writer sees its answer, and the state moved since).
		r.applied = kv.ModRevision
		r.mu.Unlock()
		r.appliedCond()
		return
	}
	r.mu.Unlock()
	if err := r.ctrl.Apply(v.State); err != nil {
		n.bad("state", kv, err)
		return
	}
	r.mu.Lock()
	r.applied = kv.ModRevision
	r.mu.Unlock()
	r.appliedCond()
	if v.Node != n.name && !v.At.IsZero() {
		n.metrics.propagation.Observe(time.Since(v.At).Seconds())
	}
}

func (n *Node) handleWindow(routeName, node string, kv *mvccpb.KeyValue, deleted bool) {
	r := n.route(routeName)
	if r == nil || node == n.name {
		return
	}
	if deleted {
		n.mu.Lock()
		delete(r.peers, node)
		n.mu.Unlock()
		return
	}
	var v windowValue
	err := decode(kv.Value, &v, func() int { return v.V })
	if err == nil && (v.Window.Node != node || !v.Window.Valid(r.maxSamples())) {
		err = errOr(nil, "not a sane window summary")
	}
	if err != nil {
		n.bad("window", kv, err)
		return
	}
	n.mu.Lock()
	r.peers[node] = v.Window
	n.mu.Unlock()
	if v.Window.Burst {
		r.ctrl.PeerBurst(v.Window.Epoch)
	}
}

func (n *Node) handleCandidate(routeName, key string, kv *mvccpb.KeyValue, deleted bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.routes[routeName]
	if r == nil {
		return
	}
	if deleted {
		delete(r.candidates, key)
		return
	}
	r.candidates[key] = candidate{node: string(kv.Value), created: kv.CreateRevision}
}

type errString string

func (e errString) Error() string { return string(e) }

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errString(msg)
}
