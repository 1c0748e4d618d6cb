// Package cluster makes a fleet of umbra replicas act as one gateway by
// sharing rollout state through etcd (docs/fleet.md). Each replica keeps a
// session (a lease kept alive), campaigns for the leadership of every
// rollout with an etcd election, publishes its window of the running step
// under its lease, and watches the fleet's keys: a new state is applied at
// once, a peer's burst drops the canary at once, an operator command is
// run by the leader. Nothing here runs on the request path: requests only
// touch the rollout's local window.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc/connectivity"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/rollout"
)

// Node is this replica's membership of the fleet.
type Node struct {
	cfg     config.Cluster
	name    string
	keys    keys
	client  *clientv3.Client
	log     *slog.Logger
	metrics *metrics
	started time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// failed is set by a failed etcd operation and cleared by a successful
	// one; with the connection state and the session it makes healthy.
	failed  atomic.Bool
	session atomic.Pointer[concurrency.Session]
	newSess chan struct{} // closed and replaced when a session starts

	mu      sync.Mutex
	running bool
	routes  map[string]*route
	members map[string]memberValue
	waiters map[string]chan resultValue // command id → its answer
	rev     int64                       // the last revision read (sync or watch)
	publish chan struct{}               // kicks the publisher (a burst)

	// Shared results (shared.go); nil when not shared.
	compare, adoption *shared
	recorder          *diffs.Recorder
}

// New connects to etcd (without waiting for it: Start does) and prepares
// the node. reg gets the umbra_cluster_* metrics.
func New(cfg *config.Cluster, log *slog.Logger, reg prometheus.Registerer) (*Node, error) {
	cc := clientv3.Config{
		Endpoints:   cfg.Etcd.Endpoints,
		DialTimeout: cfg.Etcd.DialTimeout.D(),
		// etcd's client logs through zap to stderr; umbra reports what
		// matters (errors, leadership, resyncs) in its own log.
		Logger:               zap.NewNop(),
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		AutoSyncInterval:     0,
		PermitWithoutStream:  true,
	}
	if cfg.Etcd.TLS != nil {
		t, err := cfg.Etcd.TLS.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("cluster.etcd.tls: %w", err)
		}
		cc.TLS = t
	}
	if cfg.Etcd.Username != "" {
		pw, err := config.ReadToken(cfg.Etcd.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.etcd.password_file: %w", err)
		}
		cc.Username, cc.Password = cfg.Etcd.Username, pw
	}
	client, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Node{
		cfg: *cfg, name: cfg.Node, keys: keys{cfg.Etcd.Prefix}, client: client,
		log: log.With("node", cfg.Node), metrics: newMetrics(reg), started: time.Now(),
		ctx: ctx, cancel: cancel, newSess: make(chan struct{}),
		routes: map[string]*route{}, members: map[string]memberValue{}, waiters: map[string]chan resultValue{},
		publish: make(chan struct{}, 1),
	}, nil
}

// Name is this replica's node name.
func (n *Node) Name() string { return n.name }

// Self implements rollout.Fleet: the node name decisions are recorded under.
func (n *Node) Self() string { return n.name }

// Start reads the fleet's current state and applies it (so a replica that
// joins late serves the current weights from its first request), then
// starts the session, the elections, the watch and the publisher. If etcd
// cannot be read within the dial timeout the replica starts with its
// config's weights and catches up as soon as etcd answers.
func (n *Node) Start() {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Etcd.DialTimeout.D())
	err := n.sync(ctx)
	cancel()
	if err != nil {
		n.log.Warn("etcd unreachable at start: serving the config's weights until it answers", "err", err)
	}
	n.mu.Lock()
	n.running = true
	for _, r := range n.routes {
		n.startRoute(r)
	}
	n.mu.Unlock()
	n.wg.Add(4)
	go n.sessions()
	go n.watch()
	go n.publisher()
	go n.sharer()
}

// Close resigns every leadership (a survivor takes over at once instead
// of after the lease TTL), revokes the lease and disconnects.
func (n *Node) Close() error {
	for _, r := range n.routeList() {
		r.stop()
	}
	n.cancel()
	n.wg.Wait()
	if s := n.session.Load(); s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Etcd.RequestTimeout.D())
		if _, err := n.client.Revoke(ctx, s.Lease()); err != nil {
			n.log.Warn("leaving the fleet: the lease could not be revoked; it expires after its TTL", "err", err)
		}
		cancel()
	}
	return n.client.Close()
}

// Healthy reports whether this replica can act on the fleet's data: it
// is connected to etcd, holds a live session, and its last etcd operation
// succeeded.
func (n *Node) Healthy() error {
	if s := n.session.Load(); s == nil {
		return errors.New("no etcd session (lease) yet")
	} else {
		select {
		case <-s.Done():
			return errors.New("the etcd session (lease) expired")
		default:
		}
	}
	if st := n.client.ActiveConnection().GetState(); st != connectivity.Ready && st != connectivity.Idle {
		return fmt.Errorf("etcd connection %s", st)
	}
	if n.failed.Load() {
		return errors.New("the last etcd operation failed")
	}
	return nil
}

// ok and fail record the outcome of an etcd operation.
func (n *Node) ok() {
	if n.failed.CompareAndSwap(true, false) {
		n.log.Info("etcd reachable again")
	}
	n.metrics.up.Set(boolFloat(n.Healthy() == nil))
}

func (n *Node) fail(op string, err error) {
	if errors.Is(err, context.Canceled) && n.ctx.Err() != nil {
		return // shutting down
	}
	n.metrics.errors.WithLabelValues(op).Inc()
	if n.failed.CompareAndSwap(false, true) {
		n.log.Warn("etcd operation failed: rollouts hold until etcd answers; traffic keeps the last weights", "op", op, "err", err)
	}
	n.metrics.up.Set(0)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sessions keeps a session (a lease kept alive) and the member record,
// starting a new one when the lease is lost (etcd was away longer than
// the TTL).
func (n *Node) sessions() {
	defer n.wg.Done()
	ttl := int(n.cfg.LeaseTTL.D() / time.Second)
	for n.ctx.Err() == nil {
		s, err := concurrency.NewSession(n.client, concurrency.WithTTL(ttl), concurrency.WithContext(n.ctx))
		if err != nil {
			n.fail("session", err)
			n.sleep(500 * time.Millisecond)
			continue
		}
		if err := n.putMember(s); err != nil {
			n.fail("session", err)
			_ = s.Close()
			n.sleep(500 * time.Millisecond)
			continue
		}
		n.ok()
		n.session.Store(s)
		n.mu.Lock()
		close(n.newSess)
		n.newSess = make(chan struct{})
		n.mu.Unlock()
		n.metrics.up.Set(boolFloat(n.Healthy() == nil))
		select {
		case <-s.Done():
			if n.ctx.Err() == nil {
				n.fail("session", errors.New("lease lost"))
			}
		case <-n.ctx.Done():
		}
	}
}

func (n *Node) putMember(s *concurrency.Session) error {
	ctx, cancel := n.requestCtx()
	defer cancel()
	_, err := n.client.Put(ctx, n.keys.member(n.name),
		encode(memberValue{V: formatVersion, Node: n.name, Started: n.started}), clientv3.WithLease(s.Lease()))
	return err
}

// currentSession waits for a live session; nil when the node closes.
func (n *Node) currentSession(ctx context.Context) *concurrency.Session {
	for {
		n.mu.Lock()
		next := n.newSess
		n.mu.Unlock()
		if s := n.session.Load(); s != nil {
			select {
			case <-s.Done():
			default:
				return s
			}
		}
		select {
		case <-next:
		case <-ctx.Done():
			return nil
		}
	}
}

func (n *Node) requestCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(n.ctx, n.cfg.Etcd.RequestTimeout.D())
}

// sleep waits d or until the node closes.
func (n *Node) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-n.ctx.Done():
	}
}

var _ rollout.FleetMember = (*Node)(nil)
