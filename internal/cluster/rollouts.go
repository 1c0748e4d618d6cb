package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/umbragw/umbra/internal/rollout"
	"github.com/umbragw/umbra/internal/stats"
)

// route is one rollout as the fleet shares it.
type route struct {
	n    *Node
	name string
	ctrl *rollout.Controller

	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup

	leading  atomic.Bool
	election atomic.Pointer[concurrency.Election]

	// peers are the other replicas' windows and candidates the election's
	// keys (the lowest create revision leads), both guarded by n.mu.
	peers      map[string]rollout.WindowSummary
	candidates map[string]candidate

	// applyMu orders the application of states read by the watch and by
	// readState, so an older state never follows a newer one.
	applyMu sync.Mutex

	mu        sync.Mutex
	applied   int64          // mod revision of the last state applied
	saved     int64          // revision of the last state this leader wrote
	pending   *rollout.State // the leader's newest state not yet written
	changed   chan struct{}  // closed and replaced when applied or saved moves
	save      chan struct{}  // kicks the writer
	published publishedMark  // what the publisher last wrote
}

type candidate struct {
	node    string
	created int64
}

// leaderName is the node whose election key is the oldest; n.mu is held.
func (r *route) leaderName() string {
	best := candidate{}
	for _, c := range r.candidates {
		if best.node == "" || c.created < best.created {
			best = c
		}
	}
	return best.node
}

type publishedMark struct {
	epoch      uint64
	live, cnry int64
	burst      bool
}

// Join registers a route with a rollout plan: its controller, its
// election and its writer. Called by the rollout manager.
func (n *Node) Join(c *rollout.Controller) {
	ctx, cancel := context.WithCancel(n.ctx)
	r := &route{n: n, name: c.Route(), ctrl: c, ctx: ctx, cancel: cancel,
		peers: map[string]rollout.WindowSummary{}, candidates: map[string]candidate{}, changed: make(chan struct{}), save: make(chan struct{}, 1)}
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.routes[r.name]; old != nil {
		old.cancel()
	}
	n.routes[r.name] = r
	n.metrics.leader.WithLabelValues(r.name).Set(0)
	if n.running {
		// A route added by a reload: read its state first, as at start.
		r.done.Add(1)
		go func() {
			defer r.done.Done()
			n.readState(r)
		}()
		n.startRoute(r)
	}
}

// Leave stops a route removed by a reload: its leadership is resigned.
func (n *Node) Leave(name string) {
	n.mu.Lock()
	r := n.routes[name]
	delete(n.routes, name)
	n.mu.Unlock()
	if r != nil {
		r.stop()
		n.metrics.leader.DeleteLabelValues(name)
	}
}

func (r *route) stop() {
	r.cancel()
	r.done.Wait()
}

// routeList is a copy of the routes, to act on without n.mu.
func (n *Node) routeList() []*route {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*route, 0, len(n.routes))
	for _, r := range n.routes {
		out = append(out, r)
	}
	return out
}

func (n *Node) route(name string) *route {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.routes[name]
}

// startRoute starts the route's campaign and writer; n.mu is held.
func (n *Node) startRoute(r *route) {
	r.done.Add(2)
	go r.campaign()
	go r.writer()
}

func (n *Node) readState(r *route) {
	ctx, cancel := n.requestCtx()
	defer cancel()
	resp, err := n.client.Get(ctx, n.keys.state(r.name))
	if err != nil {
		n.fail("sync", err)
		return
	}
	n.ok()
	for _, kv := range resp.Kvs {
		n.handleState(r.name, kv)
	}
}

// campaign wins the route's leadership, leads while the session lives,
// and campaigns again after losing it.
func (r *route) campaign() {
	defer r.done.Done()
	n := r.n
	for r.ctx.Err() == nil {
		s := n.currentSession(r.ctx)
		if s == nil {
			return
		}
		e := concurrency.NewElection(s, n.keys.election(r.name))
		cctx, cancel := context.WithCancel(r.ctx)
		stopWatch := context.AfterFunc(s.Ctx(), cancel)
		err := e.Campaign(cctx, n.name)
		if err != nil {
			stopWatch()
			cancel()
			switch {
			case r.ctx.Err() != nil || s.Ctx().Err() != nil:
			case errors.Is(err, rpctypes.ErrCompacted):
				// The wait for the leader key's deletion resumed after a
				// compaction: not etcd trouble, campaign again.
			default:
				n.fail("campaign", err)
				n.sleep(300 * time.Millisecond)
			}
			continue
		}
		r.lead(e)
		select {
		case <-s.Done():
		case <-r.ctx.Done():
		}
		stopWatch()
		cancel()
		r.follow(e)
	}
}

// lead makes this replica the route's judge: it first applies the newest
// state in etcd (the previous leader's last write may still be on its way
// through the watch), then runs commands left waiting and evaluates.
func (r *route) lead(e *concurrency.Election) {
	n := r.n
	n.readState(r)
	r.election.Store(e)
	r.leading.Store(true)
	n.metrics.leader.WithLabelValues(r.name).Set(1)
	n.log.Info("leading the rollout", "route", r.name)
	r.ctrl.Lead()
	n.pendingCommands(r)
}

// follow ends a leadership: resigned when the route or node stops (so a
// survivor takes over at once), or lost with the session.
func (r *route) follow(e *concurrency.Election) {
	n := r.n
	r.leading.Store(false)
	r.election.Store(nil)
	n.metrics.leader.WithLabelValues(r.name).Set(0)
	if r.ctx.Err() != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Etcd.RequestTimeout.D())
		_ = e.Resign(ctx)
		cancel()
		return
	}
	n.log.Warn("lost the rollout's leadership with the etcd lease", "route", r.name)
}

// writer writes the leader's newest state, fenced by the election: the
// write succeeds only while this replica's election key is the leader's,
// so a replica that lost its lease during an outage cannot overwrite its
// successor's decisions. A failed write is retried; only the newest
// state is ever written.
func (r *route) writer() {
	defer r.done.Done()
	n := r.n
	for {
		select {
		case <-r.save:
		case <-r.ctx.Done():
			return
		}
		for r.ctx.Err() == nil {
			r.mu.Lock()
			st := r.pending
			r.mu.Unlock()
			if st == nil {
				break
			}
			err := r.write(st)
			if err == nil {
				break
			}
			if errors.Is(err, errNotLeader) {
				r.mu.Lock()
				if r.pending == st {
					r.pending = nil
				}
				r.mu.Unlock()
				r.appliedCond()
				n.log.Warn("a decision was not written: this replica no longer leads the rollout", "route", r.name)
				break
			}
			n.fail("save", err)
			n.sleep(200 * time.Millisecond)
		}
	}
}

var errNotLeader = errors.New("not the leader")

func (r *route) write(st *rollout.State) error {
	e := r.election.Load()
	if e == nil {
		return errNotLeader
	}
	n := r.n
	ctx, cancel := n.requestCtx()
	defer cancel()
	val := encode(stateValue{V: formatVersion, Node: n.name, At: time.Now(), State: *st})
	resp, err := n.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(e.Key()), "=", e.Rev())).
		Then(clientv3.OpPut(n.keys.state(r.name), val)).
		Commit()
	if err != nil {
		return err
	}
	n.ok()
	if !resp.Succeeded {
		return errNotLeader
	}
	r.mu.Lock()
	if r.pending == st {
		r.pending = nil
	}
	r.saved = resp.Header.Revision
	if r.saved > r.applied {
		// The watch brings this write back; it is already applied here.
		r.applied = r.saved
	}
	r.mu.Unlock()
	r.appliedCond()
	return nil
}

// appliedCond wakes those waiting for applied or saved to move.
func (r *route) appliedCond() {
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// waitFor waits until pred holds (checked under r.mu) or ctx ends.
func (r *route) waitFor(ctx context.Context, pred func() bool) error {
	for {
		r.mu.Lock()
		ok, ch := pred(), r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Leading implements rollout.Fleet.
func (n *Node) Leading(name string) bool {
	r := n.route(name)
	return r != nil && r.leading.Load()
}

// Peers implements rollout.Fleet: the other replicas' windows of epoch.
func (n *Node) Peers(name string, epoch uint64) ([]rollout.WindowSummary, error) {
	if err := n.Healthy(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.routes[name]
	if r == nil {
		return nil, fmt.Errorf("route %q is not in the fleet", name)
	}
	out := make([]rollout.WindowSummary, 0, len(r.peers))
	for _, w := range r.peers {
		if w.Epoch == epoch {
			out = append(out, w)
		}
	}
	return out, nil
}

// Save implements rollout.Fleet: the writer writes it.
func (n *Node) Save(name string, st rollout.State) {
	r := n.route(name)
	if r == nil || !r.leading.Load() {
		return
	}
	r.mu.Lock()
	r.pending = &st
	r.mu.Unlock()
	select {
	case r.save <- struct{}{}:
	default:
	}
}

// Burst implements rollout.Fleet: the publisher announces it now.
func (n *Node) Burst(string) {
	select {
	case n.publish <- struct{}{}:
	default:
	}
}

// publisher writes this replica's window of every running step each
// publish interval (when it changed), and at once after a burst. The
// windows are written under the session's lease, so a dead replica's
// disappear with it.
func (n *Node) publisher() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.PublishInterval.D())
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-n.publish:
		case <-n.ctx.Done():
			return
		}
		s := n.session.Load()
		if s == nil {
			continue
		}
		for _, r := range n.routeList() {
			r.publishWindow(s)
		}
	}
}

func (r *route) publishWindow(s *concurrency.Session) {
	w, ok := r.ctrl.Summary()
	if !ok {
		return
	}
	mark := publishedMark{w.Epoch, w.Live.N, w.Canary.N, w.Burst}
	r.mu.Lock()
	same := r.published == mark
	r.mu.Unlock()
	if same {
		return
	}
	n := r.n
	w.Node = n.name
	ctx, cancel := n.requestCtx()
	defer cancel()
	_, err := n.client.Put(ctx, n.keys.window(r.name, n.name), encode(windowValue{V: formatVersion, Window: w}), clientv3.WithLease(s.Lease()))
	if err != nil {
		n.fail("publish", err)
		return
	}
	n.ok()
	n.metrics.published.Inc()
	r.mu.Lock()
	r.published = mark
	r.mu.Unlock()
}

func (r *route) maxSamples() int { return r.ctrl.Samples() }

// FleetView is a route's rollout as the fleet sees it, for the status.
type FleetView struct {
	Node    string        `json:"node"`    // this replica
	Leading bool          `json:"leading"` // this replica judges the rollout
	Leader  string        `json:"leader,omitempty"`
	Members []string      `json:"members"`
	Healthy bool          `json:"etcd_ok"`
	Problem string        `json:"problem,omitempty"` // why rollouts hold, when they do
	Windows []WindowBrief `json:"windows,omitempty"` // per replica, this step
}

// WindowBrief is one replica's window of the step: its counts and the
// median and 99th percentile of its latency sample (milliseconds).
type WindowBrief struct {
	Node          string  `json:"node"`
	Epoch         uint64  `json:"epoch"`
	LiveRequests  int64   `json:"live_requests"`
	LiveErrors    int64   `json:"live_errors"`
	LiveP50       float64 `json:"live_p50_ms"`
	LiveP99       float64 `json:"live_p99_ms"`
	CanaryRequest int64   `json:"canary_requests"`
	CanaryErrors  int64   `json:"canary_errors"`
	CanaryP50     float64 `json:"canary_p50_ms"`
	CanaryP99     float64 `json:"canary_p99_ms"`
	Burst         bool    `json:"burst,omitempty"`
}

// Describe implements rollout.FleetMember.
func (n *Node) Describe(name string) any {
	v := FleetView{Node: n.name}
	if err := n.Healthy(); err != nil {
		v.Problem = err.Error()
	}
	v.Healthy = v.Problem == ""
	own, haveOwn := rollout.WindowSummary{}, false
	n.mu.Lock()
	for m := range n.members {
		v.Members = append(v.Members, m)
	}
	r := n.routes[name]
	if r != nil {
		v.Leading = r.leading.Load()
		v.Leader = r.leaderName()
		for _, w := range r.peers {
			v.Windows = append(v.Windows, brief(w))
		}
	}
	n.mu.Unlock()
	if r != nil {
		own, haveOwn = r.ctrl.Summary()
	}
	if haveOwn {
		own.Node = n.name
		v.Windows = append(v.Windows, brief(own))
	}
	if v.Leading {
		v.Leader = n.name
	}
	sort.Strings(v.Members)
	sort.Slice(v.Windows, func(i, j int) bool { return v.Windows[i].Node < v.Windows[j].Node })
	return v
}

func brief(w rollout.WindowSummary) WindowBrief {
	return WindowBrief{Node: w.Node, Epoch: w.Epoch, LiveRequests: w.Live.N, LiveErrors: w.Live.Errors,
		LiveP50: quantile(w.Live.Ms, 0.5), LiveP99: quantile(w.Live.Ms, 0.99),
		CanaryRequest: w.Canary.N, CanaryErrors: w.Canary.Errors,
		CanaryP50: quantile(w.Canary.Ms, 0.5), CanaryP99: quantile(w.Canary.Ms, 0.99), Burst: w.Burst}
}

// quantile of a latency sample; 0 when empty (JSON has no NaN).
func quantile(ms []float64, q float64) float64 {
	if len(ms) == 0 {
		return 0
	}
	return stats.Quantile(ms, q)
}
