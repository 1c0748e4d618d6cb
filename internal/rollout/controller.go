// Package rollout moves a route's canary through its rollout plan: a
// shadow step judged on the comparison results, canary steps at rising
// weights judged on the gateway's own observations of both versions over
// the same window, then promotion. Every decision is recorded with the
// numbers behind it, the state survives restarts in the embedded store, and
// an error burst rolls back at once.
package rollout

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/split"
	"github.com/umbragw/umbra/internal/store"
)

// Phase is where a rollout is; its spelling is stored, shown by the
// admin API and a metric label, so it never changes.
type Phase string

// Phases of a rollout.
const (
	Idle       Phase = "idle"
	Running    Phase = "running"
	Paused     Phase = "paused"
	Promoted   Phase = "promoted"
	RolledBack Phase = "rolled_back"
	Aborted    Phase = "aborted"
	// Held: the state an earlier run saved is missing or unreadable (the
	// store was empty or damaged, or the value does not decode). Callers
	// stay where the config puts them (canary.weight) and nothing is
	// decided until an operator starts, promotes or aborts the rollout.
	Held Phase = "held"
)

// Action is a recorded decision; an operator's commands (Commands) are
// actions too. Its spelling is stored and a metric label.
type Action string

// The operator's commands (Controller.Command).
const (
	Start   Action = "start"
	Pause   Action = "pause"
	Resume  Action = "resume"
	Promote Action = "promote" // pass the current step now; from held, promote
	Abort   Action = "abort"
)

// The controller's own decisions.
const (
	actionHold     Action = "hold"
	actionRollback Action = "rollback"
	actionComplete Action = "complete" // promoted: the canary serves everyone
	actionHeld     Action = "held"     // the saved state is gone (Held)
)

// Commands lists the operator's commands, in the order the CLI shows them.
var Commands = []Action{Start, Pause, Resume, Promote, Abort}

// maxDecisions bounds the decision history kept per route.
const maxDecisions = 200

// State is a rollout's persisted state.
type State struct {
	Route         string    `json:"route"`
	Phase         Phase     `json:"phase"`
	Step          int       `json:"step"` // index into the plan's steps
	StepKind      string    `json:"step_kind,omitempty"`
	Weight        float64   `json:"weight"`
	StartedAt     time.Time `json:"started_at,omitzero"`
	StepStartedAt time.Time `json:"step_started_at,omitzero"`
	// Window counts the observation windows the rollout began (each step,
	// each resume): the epoch a fleet's replicas publish their windows
	// under, so the leader merges only the same step's observations.
	Window    uint64     `json:"window,omitempty"`
	Base      Baseline   `json:"baseline"`
	Decisions []Decision `json:"decisions"`
	// HeldReason says why a held rollout is held.
	HeldReason string `json:"held_reason,omitempty"`
}

// Baseline holds cumulative counters at the start of a shadow step, so the
// step is judged on what happened during it: answers compared, shadow
// copies, and each field's differences (a step started again after a fix
// must not fail on the answers of the broken version).
type Baseline struct {
	Compared     int64        `json:"compared"`
	ShadowSent   int64        `json:"shadow_sent"`
	ShadowFailed int64        `json:"shadow_failed"`
	Diffs        diffs.Counts `json:"diffs,omitempty"`
}

// UnmarshalJSON also reads the Go-cased keys ("ShadowSent") that states
// saved before the keys were snake_case carry, in the store and in etcd.
func (b *Baseline) UnmarshalJSON(data []byte) error {
	type plain Baseline
	var v struct {
		plain
		OldSent   *int64 `json:"ShadowSent"`
		OldFailed *int64 `json:"ShadowFailed"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*b = Baseline(v.plain)
	if v.OldSent != nil {
		b.ShadowSent = *v.OldSent
	}
	if v.OldFailed != nil {
		b.ShadowFailed = *v.OldFailed
	}
	return nil
}

// Decision is one recorded decision.
type Decision struct {
	At     time.Time          `json:"at"`
	Step   int                `json:"step"`
	Weight float64            `json:"weight"`
	Action Action             `json:"action"`
	Reason string             `json:"reason"`
	Inputs map[string]float64 `json:"inputs,omitempty"`
	// Node is the replica that decided, in fleet mode (the leader).
	Node string `json:"node,omitempty"`
}

// Sources give a controller what it judges the shadow step on.
type Sources interface {
	// Shadow returns cumulative comparison and shadow counters of a route,
	// and its worst regressed field judged on the comparisons made since
	// base (all of them when base is nil).
	Shadow(route string, base diffs.Counts) ShadowStatus
	// DiffCounts snapshots a route's comparison counters, the base of a
	// shadow step.
	DiffCounts(route string) diffs.Counts
}

// Controller runs one route's rollout.
type Controller struct {
	route   string
	store   *store.Store
	sources Sources
	fleet   Fleet // nil: this replica judges alone
	hooks   *webhooks
	metrics *Metrics
	log     *slog.Logger

	// obs is what the request path needs, published atomically so Observe
	// never waits for the controller (which may be calling a webhook).
	obs atomic.Pointer[observer]

	mu    sync.Mutex
	gen   uint64 // bumped by every decision and reconfiguration; see askUnlocked
	plan  *config.Rollout
	split *split.Split
	state State
	win   *window
	// announceHeld: the state was found lost at load; configure records it.
	announceHeld bool
	kick         chan struct{}
	stop         chan struct{}
	done         chan struct{}
}

func newController(route string, st *store.Store, src Sources, fl Fleet, m *Metrics, log *slog.Logger) *Controller {
	return &Controller{
		route: route, store: st, sources: src, fleet: fl, metrics: m, log: log,
		state: State{Route: route, Phase: Idle},
		kick:  make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// configure installs a (re)compiled plan and split. The rollout's weight
// wins over the config's while a rollout is running or finished.
func (c *Controller) configure(plan *config.Rollout, sp *split.Split) {
	c.mu.Lock()
	defer c.mu.Unlock()
	newPlan := c.plan == nil
	c.gen++
	c.plan, c.split = plan, sp
	c.hooks = newWebhooks(&plan.Webhooks)
	if c.win == nil {
		c.win = newWindow(plan.Analysis.Samples, plan.Analysis.Burst.Window)
	}
	if c.state.Step >= len(plan.Steps) && c.state.Phase == Running {
		c.state.Step = len(plan.Steps) - 1
	}
	switch c.state.Phase {
	case Held:
		// The config's weight stands: nothing known says callers should move.
		c.state.Weight = sp.Weight()
		if c.announceHeld {
			c.announceHeld = false
			c.decide(actionHeld, c.state.HeldReason+"; callers stay at the config's canary.weight until an operator starts, promotes or aborts the rollout", nil)
		}
	case Idle:
		c.state.Weight = sp.Weight()
		if newPlan && plan.Start == "auto" && c.fleet == nil { // a fleet's leader starts it (Lead)
			c.startLocked("started automatically (start: auto)")
		}
	default:
		sp.SetWeight(c.state.Weight)
	}
	c.metrics.set(c.route, c.state)
	c.publish()
}

// observer is the running step's window and split.
type observer struct {
	win   *window
	split *split.Split
	rule  burstRule
}

// publish updates what Observe sees; c.mu is held.
func (c *Controller) publish() {
	if c.state.Phase != Running || c.win == nil || c.split == nil {
		c.obs.Store(nil)
		return
	}
	b := c.plan.Analysis.Burst
	c.obs.Store(&observer{win: c.win, split: c.split, rule: burstRule{b.MinErrors, b.MinIncrease}})
}

// Observe records one request of the route. It runs on the request path:
// an atomic load, the window's mutex and a reservoir add. An error burst
// takes the canary's weight to 0 at once; the controller then records the
// rollback.
func (c *Controller) Observe(canary bool, status int, d time.Duration) {
	o := c.obs.Load()
	if o == nil {
		return
	}
	if o.win.observe(canary, status >= 500, d, o.rule) {
		o.split.SetWeight(0) // stop sending users to the canary before anything else
		if c.fleet != nil {
			c.fleet.Burst(c.route)
		}
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// run evaluates the rollout every interval, or at once when kicked.
func (c *Controller) run() {
	defer close(c.done)
	for {
		c.mu.Lock()
		interval := c.plan.Interval.D()
		c.mu.Unlock()
		t := time.NewTimer(interval)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-c.kick:
			t.Stop()
		case <-t.C:
		}
		c.evaluate()
	}
}

func (c *Controller) close() {
	close(c.stop)
	<-c.done
}

// evaluate makes one decision for a running rollout.
func (c *Controller) evaluate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Phase != Running || (c.fleet != nil && !c.fleet.Leading(c.route)) {
		return
	}
	step := c.plan.Steps[c.state.Step]
	var r result
	switch {
	case step.Shadow != nil:
		r = c.shadowResult(step.Shadow)
	case step.Canary != nil:
		r = c.canaryResult(step.Canary)
	default:
		c.promoteLocked(result{verdictPass, "all steps passed", nil})
		return
	}
	switch r.Verdict {
	case verdictFail:
		c.rollbackLocked(r)
	case verdictPass:
		c.advanceLocked(r)
	default:
		c.decide(actionHold, r.Reason, r.Inputs)
	}
}

func (c *Controller) shadowResult(step *config.ShadowStep) result {
	b := c.state.Base
	now := c.sources.Shadow(c.route, b.Diffs)
	delta := ShadowStatus{Compared: now.Compared - b.Compared, Sent: now.Sent - b.ShadowSent,
		Failed: now.Failed - b.ShadowFailed, WorstField: now.WorstField, WorstExcess: now.WorstExcess}
	return analyzeShadow(delta, time.Since(c.state.StepStartedAt), step)
}

func (c *Controller) canaryResult(step *config.CanaryStep) result {
	counts := c.win.snapshot()
	replicas := 0
	if c.fleet != nil {
		peers, err := c.fleet.Peers(c.route, c.state.Window)
		if err != nil {
			return result{verdictWait, "no decision without the fleet's data: " + err.Error(), nil}
		}
		counts = merge(counts, peers, c.plan.Analysis.Samples)
		replicas = 1 + len(peers)
	}
	var r result
	if counts.burst {
		r = c.burstResult(counts)
	} else {
		// min_duration runs from when the step began, across restarts and
		// resumes (docs/rollouts.md, "State and restarts"); the window, which
		// starts again then, only bounds what is counted.
		counts.elapsed = time.Since(c.state.StepStartedAt)
		r = analyzeCanary(counts, step, &c.plan.Analysis)
	}
	if replicas > 0 && r.Inputs != nil {
		r.Inputs["replicas"] = float64(replicas) // whose windows were merged
	}
	return r
}

func (c *Controller) burstResult(counts counts) result {
	return result{verdictFail, fmt.Sprintf("error burst: %.0f%% of the last %d canary requests failed (live %.0f%%)",
		100*counts.canaryRecentRate, c.plan.Analysis.Burst.Window, 100*counts.liveRecentRate),
		map[string]float64{"canary_recent_error_rate": counts.canaryRecentRate, "live_recent_error_rate": counts.liveRecentRate}}
}

// burstBeforeLeaving seals a canary step's window as the rollout leaves
// the step and reports a burst that happened since the step was judged
// (for example while a webhook was asked): it must roll back, not be lost.
func (c *Controller) burstBeforeLeaving() (result, bool) {
	if c.plan.Steps[c.state.Step].Canary == nil || !c.win.seal() {
		return result{}, false
	}
	return c.burstResult(c.win.snapshot()), true
}

// advanceLocked moves to the next step after the before_step webhook
// agrees.
func (c *Controller) advanceLocked(r result) {
	next := c.state.Step + 1
	if next >= len(c.plan.Steps) || c.plan.Steps[next].Promote != nil {
		c.promoteLocked(r)
		return
	}
	if !c.mayLeaveLocked(c.hooks.beforeStep, "before_step", next, r) {
		return
	}
	c.enterStepLocked(next)
	c.decide(Promote, fmt.Sprintf("%s; step %d (%s) at weight %g%%", r.Reason, next+1, c.state.StepKind, c.state.Weight), r.Inputs)
}

// promoteLocked sends everyone to the canary, once confirm_promotion agrees.
func (c *Controller) promoteLocked(r result) {
	if !c.mayLeaveLocked(c.hooks.confirmPromotion, "confirm_promotion", len(c.plan.Steps)-1, r) {
		return
	}
	c.state.Step = len(c.plan.Steps) - 1
	c.state.StepKind = "promote"
	c.setWeight(100)
	c.state.Phase = Promoted
	c.decide(actionComplete, r.Reason+"; the canary now serves everyone (see docs/rollouts.md to make it the live backend)", r.Inputs)
}

// mayLeaveLocked asks the webhook hook (event, about step) whether the
// rollout, judged r, may leave its step, then checks for a burst since
// the step was judged. It returns false when the rollout stays (refused,
// or superseded meanwhile) or has rolled back.
func (c *Controller) mayLeaveLocked(hook, event string, step int, r result) bool {
	ok, why, valid := c.askUnlocked(hook, c.event(event, step))
	if !valid {
		return false
	}
	if !ok {
		c.webhookRefused(why, r)
		return false
	}
	if br, burst := c.burstBeforeLeaving(); burst {
		c.rollbackLocked(br)
		return false
	}
	return true
}

// askUnlocked calls a webhook without holding c.mu: a webhook may take its
// whole timeout, and status, commands, reloads and shutdown must not wait
// for it. valid is false when a decision or reconfiguration happened
// meanwhile; the caller then drops its own, and the next evaluation starts
// over from the new state.
func (c *Controller) askUnlocked(url string, event map[string]any) (ok bool, why string, valid bool) {
	if url == "" {
		return true, "", true
	}
	gen, hooks := c.gen, c.hooks
	c.mu.Unlock()
	ok, why = hooks.ask(url, event)
	c.mu.Lock()
	return ok, why, c.gen == gen
}

func (c *Controller) webhookRefused(why string, r result) {
	if why == string(Abort) {
		c.setWeight(0)
		c.state.Phase = Aborted
		c.decide(Abort, "a webhook answered 410 Gone: rollout stopped", r.Inputs)
		return
	}
	c.decide(actionHold, "webhook holds the rollout: "+why, r.Inputs)
}

func (c *Controller) rollbackLocked(r result) {
	c.setWeight(0)
	c.state.Phase = RolledBack
	c.decide(actionRollback, r.Reason, r.Inputs)
	go c.hooks.notify(c.hooks.onRollback, c.event("rollback", c.state.Step))
}

// enterStepLocked starts step i with a fresh window.
func (c *Controller) enterStepLocked(i int) {
	step := c.plan.Steps[i]
	c.state.Step, c.state.StepKind, c.state.StepStartedAt = i, step.Kind(), time.Now()
	c.state.Window++
	c.win = newWindow(c.plan.Analysis.Samples, c.plan.Analysis.Burst.Window)
	switch {
	case step.Canary != nil:
		c.setWeight(float64(step.Canary.Weight))
	case step.Shadow != nil:
		s := c.sources.Shadow(c.route, nil)
		c.state.Base = Baseline{Compared: s.Compared, ShadowSent: s.Sent, ShadowFailed: s.Failed, Diffs: c.sources.DiffCounts(c.route)}
		c.setWeight(0)
	}
}

func (c *Controller) setWeight(w float64) {
	c.state.Weight = w
	c.split.SetWeight(w)
}

// holdLost puts a rollout whose saved state is gone on hold, loudly; it
// runs when the state is loaded, before the plan and split are known.
func (c *Controller) holdLost(reason string) {
	c.state = State{Route: c.route, Phase: Held, HeldReason: reason}
	c.log.Error("rollout held: its saved state is gone; callers stay on the config's canary.weight until an operator runs `umbra rollout start|promote|abort`",
		"route", c.route, "reason", reason)
	c.announceHeld = true // recorded by configure, once the weight is known
}

// decide records a decision, persists the state and updates the metrics.
func (c *Controller) decide(action Action, reason string, inputs map[string]float64) {
	c.gen++
	d := Decision{At: time.Now(), Step: c.state.Step, Weight: c.state.Weight, Action: action, Reason: reason, Inputs: inputs}
	if c.fleet != nil {
		d.Node = c.fleet.Self()
	}
	last := len(c.state.Decisions) - 1
	if action == actionHold && last >= 0 && c.state.Decisions[last].Action == actionHold && c.state.Decisions[last].Step == d.Step {
		// Holds within one step replace each other: a service with trickling
		// traffic must not push the start and promote decisions out.
		c.state.Decisions[last] = d
	} else {
		c.state.Decisions = append(c.state.Decisions, d)
		if len(c.state.Decisions) > maxDecisions {
			c.state.Decisions = c.state.Decisions[len(c.state.Decisions)-maxDecisions:]
		}
		if action != actionHold {
			c.log.Info("rollout decision", "route", c.route, "action", string(action), "step", c.state.Step+1, "weight", c.state.Weight, "reason", reason)
		}
	}
	c.metrics.decided(c.route, action, c.state)
	c.publish()
	c.persist()
	if c.fleet != nil {
		st := c.state
		st.Decisions = append([]Decision(nil), c.state.Decisions...)
		c.fleet.Save(c.route, st)
	}
}

func (c *Controller) persist() {
	if c.store == nil {
		return
	}
	st := c.state
	if err := c.store.Update(func(tx *store.Tx) error { return tx.Put(bucket, c.route, st) }); err != nil {
		c.log.Error("saving rollout state failed", "route", c.route, "err", err)
	}
	// A restart that finds no store file now knows state was lost.
	if err := c.store.ExpectState(); err != nil {
		c.log.Error("marking the store as holding rollout state failed", "file", store.ExpectedFile, "err", err)
	}
}

func (c *Controller) event(kind string, step int) map[string]any {
	return map[string]any{"event": kind, "route": c.route, "step": step + 1,
		"step_kind": c.plan.Steps[step].Kind(), "weight": c.state.Weight, "phase": c.state.Phase}
}
