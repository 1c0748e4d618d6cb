package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/umbragw/umbra/internal/rollout"
)

// commandTimeout bounds how long an operator command waits for the
// leader's answer, when the caller's context does not end sooner.
const commandTimeout = 10 * time.Second

// Forward implements rollout.FleetMember: the command is written for the
// leader, which runs it and answers; Forward returns the leader's answer
// once this replica applied the state the command produced.
func (n *Node) Forward(ctx context.Context, name string, cmd rollout.Action) error {
	r := n.route(name)
	if r == nil {
		return fmt.Errorf("route %q is not in the fleet", name)
	}
	s := n.session.Load()
	if s == nil || n.Healthy() != nil {
		return fmt.Errorf("%s: cannot reach the fleet's leader: %v", cmd, n.Healthy())
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	id := newID()
	answer := make(chan resultValue, 1)
	n.mu.Lock()
	n.waiters[id] = answer
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.waiters, id)
		n.mu.Unlock()
	}()
	deadline, _ := ctx.Deadline()
	val := encode(commandValue{V: formatVersion, Command: cmd, From: n.name, Deadline: deadline})
	if _, err := n.client.Put(ctx, n.keys.command(name, id), val, clientv3.WithLease(s.Lease())); err != nil {
		n.fail("command", err)
		return fmt.Errorf("%s: writing the command for the leader: %w", cmd, err)
	}
	var res resultValue
	select {
	case res = <-answer:
	case <-ctx.Done():
		return fmt.Errorf("%s: no answer from the rollout's leader: %w", cmd, ctx.Err())
	}
	if res.Error != "" {
		if res.Conflict {
			return fmt.Errorf("%s: %w", res.Error, rollout.ErrNotAllowed)
		}
		return errors.New(res.Error)
	}
	// Show the caller the state its command made.
	if err := r.waitFor(ctx, func() bool { return r.applied >= res.Rev }); err != nil {
		return fmt.Errorf("%s: the leader ran it, but its state has not arrived here: %w", cmd, err)
	}
	return nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handleCommand runs a command written for the route's leader, if this
// replica leads it.
func (n *Node) handleCommand(name, id string, kv *mvccpb.KeyValue) {
	var c commandValue
	if err := decode(kv.Value, &c, func() int { return c.V }); err != nil {
		n.bad("command", kv, err)
		return
	}
	r := n.route(name)
	if r == nil || !r.leading.Load() {
		return // the leader runs it; a new leader picks up those left (pendingCommands)
	}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		n.runCommand(r, id, c)
	}()
}

// pendingCommands runs the commands written before this replica led.
func (n *Node) pendingCommands(r *route) {
	ctx, cancel := n.requestCtx()
	resp, err := n.client.Get(ctx, n.keys.commands(r.name), clientv3.WithPrefix())
	cancel()
	if err != nil {
		n.fail("command", err)
		return
	}
	for _, kv := range resp.Kvs {
		p, ok := n.keys.parse(string(kv.Key))
		if ok && p.kind == "command" {
			n.handleCommand(r.name, p.name, kv)
		}
	}
}

func (n *Node) runCommand(r *route, id string, c commandValue) {
	ctx, cancel := n.requestCtx()
	defer cancel()
	// Whoever runs it first deletes it: a command runs once even if two
	// replicas briefly both believe they lead.
	del, err := n.client.Delete(ctx, n.keys.command(r.name, id))
	if err != nil {
		n.fail("command", err)
		return
	}
	if del.Deleted == 0 || time.Now().After(c.Deadline) {
		return
	}
	res := resultValue{V: formatVersion}
	if err := r.ctrl.Command(c.Command); err != nil {
		res.Error, res.Conflict = err.Error(), errors.Is(err, rollout.ErrNotAllowed)
	} else {
		// Answer once the state the command made is in etcd.
		wctx, wcancel := context.WithTimeout(n.ctx, commandTimeout)
		err := n.Flush(wctx, r.name)
		wcancel()
		if err != nil {
			res.Error = "the leader ran the command but could not write its state: " + err.Error()
		}
		r.mu.Lock()
		res.Rev = r.saved
		r.mu.Unlock()
	}
	n.log.Info("ran an operator command for another replica", "route", r.name, "command", c.Command, "from", c.From, "err", res.Error)
	s := n.session.Load()
	if s == nil {
		return
	}
	pctx, pcancel := n.requestCtx()
	defer pcancel()
	if _, err := n.client.Put(pctx, n.keys.result(id), encode(res), clientv3.WithLease(s.Lease())); err != nil {
		n.fail("command", err)
	}
}

func (n *Node) handleResult(id string, kv *mvccpb.KeyValue) {
	n.mu.Lock()
	ch := n.waiters[id]
	n.mu.Unlock()
	if ch == nil {
		return
	}
	var res resultValue
	if err := decode(kv.Value, &res, func() int { return res.V }); err != nil {
		n.bad("result", kv, err)
		return
	}
	select {
	case ch <- res:
	default:
	}
	// The answer was read; it would otherwise live as long as the
	// leader's lease.
	go func() {
		ctx, cancel := n.requestCtx()
		defer cancel()
		_, _ = n.client.Delete(ctx, n.keys.result(id))
	}()
}

// Flush implements rollout.FleetMember: it waits until the leader's newest
// state is written (or the leader lost the leadership, which drops it).
func (n *Node) Flush(ctx context.Context, name string) error {
	r := n.route(name)
	if r == nil {
		return fmt.Errorf("route %q is not in the fleet", name)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Etcd.RequestTimeout.D()*2)
	defer cancel()
	return r.waitFor(ctx, func() bool { return r.pending == nil })
}
