package rollout

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Fleet shares rollouts among the replicas of one gateway
// (internal/cluster implements it on etcd). One replica, the leader, judges
// a rollout on the windows of all of them and writes every decision to the
// fleet; the others apply what it writes. Without a Fleet a controller
// judges alone on its own traffic, as before.
//
// The methods are called with the controller's lock held and must not
// block on the network: the fleet does its I/O on its own goroutines.
type Fleet interface {
	// Self names this replica, recorded in the decisions it makes.
	Self() string
	// Leading reports whether this replica judges route now.
	Leading(route string) bool
	// Peers returns the other replicas' windows of the route's window
	// epoch, or an error saying why the fleet's data is not available
	// (etcd unreachable): the rollout then holds.
	Peers(route string, epoch uint64) ([]WindowSummary, error)
	// Save hands the leader's new state to the fleet, which writes it as
	// long as this replica still leads.
	Save(route string, st State)
	// Burst says this replica's canary window just saw an error burst: the
	// fleet announces it at once instead of at the next publication.
	Burst(route string)
}

// WindowSummary is one replica's window of a rollout step, as published
// to the fleet: counts, a bounded latency sample, recent outcomes.
type WindowSummary struct {
	Node   string      `json:"node"`
	Epoch  uint64      `json:"epoch"`
	Live   SideSummary `json:"live"`
	Canary SideSummary `json:"canary"`
	Burst  bool        `json:"burst,omitempty"`
	At     time.Time   `json:"at"`
}

// SideSummary is one version's part of a WindowSummary.
type SideSummary struct {
	N         int64     `json:"n"`
	Errors    int64     `json:"errors"`
	Ms        []float64 `json:"ms,omitempty"` // uniform latency sample, milliseconds
	RecentN   int       `json:"recent_n"`
	RecentErr int       `json:"recent_errors"`
}

// Valid reports whether a summary read from the fleet is sane enough to
// merge: a value written by another version or by hand is ignored.
func (w *WindowSummary) Valid(maxSamples int) bool {
	for _, s := range []*SideSummary{&w.Live, &w.Canary} {
		if s.N < 0 || s.Errors < 0 || s.Errors > s.N || s.RecentN < 0 || s.RecentErr < 0 ||
			s.RecentErr > s.RecentN || len(s.Ms) > maxSamples || int64(len(s.Ms)) > s.N {
			return false
		}
		for _, v := range s.Ms {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return false
			}
		}
	}
	return w.Node != ""
}

// Summary returns this replica's window of the running step for
// publication, and false when no step is being observed.
func (c *Controller) Summary() (WindowSummary, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Phase != Running || c.win == nil {
		return WindowSummary{}, false
	}
	k := c.win.snapshot()
	return WindowSummary{
		Epoch: c.state.Window,
		Live:  SideSummary{N: k.liveN, Errors: k.liveErr, Ms: k.liveMs, RecentN: k.liveRecentN, RecentErr: k.liveRecentErr},
		Canary: SideSummary{N: k.canaryN, Errors: k.canaryErr, Ms: k.canaryMs,
			RecentN: k.canaryRecentN, RecentErr: k.canaryRecentErr},
		Burst: k.burst, At: time.Now(),
	}, true
}

// merge adds the peers' windows to this replica's counts: sums of counts
// and recent outcomes, and latency samples drawn from each replica in
// proportion to the requests it saw, so a replica that saw a tenth of the
// traffic weighs a tenth, whatever its reservoir holds.
func merge(own counts, peers []WindowSummary, samples int) counts {
	if len(peers) == 0 {
		return own
	}
	out := own
	liveSets := []sideSet{{own.liveN, own.liveMs}}
	canarySets := []sideSet{{own.canaryN, own.canaryMs}}
	liveRN, liveRE, canRN, canRE := own.liveRecentN, own.liveRecentErr, own.canaryRecentN, own.canaryRecentErr
	for _, p := range peers {
		out.liveN += p.Live.N
		out.liveErr += p.Live.Errors
		out.canaryN += p.Canary.N
		out.canaryErr += p.Canary.Errors
		liveRN, liveRE = liveRN+p.Live.RecentN, liveRE+p.Live.RecentErr
		canRN, canRE = canRN+p.Canary.RecentN, canRE+p.Canary.RecentErr
		out.burst = out.burst || p.Burst
		liveSets = append(liveSets, sideSet{p.Live.N, p.Live.Ms})
		canarySets = append(canarySets, sideSet{p.Canary.N, p.Canary.Ms})
	}
	out.liveRecentN, out.liveRecentErr, out.canaryRecentN, out.canaryRecentErr = liveRN, liveRE, canRN, canRE
	out.liveRecentRate, out.canaryRecentRate = rate(liveRE, liveRN), rate(canRE, canRN)
	out.liveMs = mergeSamples(liveSets, samples)
	out.canaryMs = mergeSamples(canarySets, samples)
	return out
}

type sideSet struct {
	n  int64
	ms []float64
}

func rate(errs, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(errs) / float64(n)
}

// mergeSamples draws up to capacity observations from the replicas'
// samples, each contributing in proportion to its request count (as a
// reservoir over their union would), taking evenly spaced elements of its
// sample (a uniform sample's elements are in random order already).
func mergeSamples(sets []sideSet, capacity int) []float64 {
	var total int64
	var have int
	for _, s := range sets {
		total += s.n
		have += len(s.ms)
	}
	if total == 0 {
		return nil
	}
	if have <= capacity {
		// Every replica's sample fits: when each holds all its
		// observations (n ≤ its reservoir) this is exact.
		all := make([]float64, 0, have)
		for _, s := range sets {
			all = append(all, s.ms...)
		}
		if allComplete(sets) {
			return all
		}
	}
	// Scale so that no replica is asked for more than it holds.
	scale := float64(capacity) / float64(total)
	for _, s := range sets {
		if s.n > 0 && len(s.ms) > 0 {
			scale = math.Min(scale, float64(len(s.ms))/float64(s.n))
		}
	}
	out := make([]float64, 0, capacity)
	for _, s := range sets {
		k := int(math.Round(scale * float64(s.n)))
		k = min(k, len(s.ms))
		for i := range k {
			out = append(out, s.ms[i*len(s.ms)/k])
		}
	}
	return out
}

func allComplete(sets []sideSet) bool {
	for _, s := range sets {
		if int64(len(s.ms)) != s.n {
			return false
		}
	}
	return true
}

// Samples is the latency sample size of the plan: the most a published
// window may carry per version.
func (c *Controller) Samples() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.plan == nil {
		return 0
	}
	return c.plan.Analysis.Samples
}

// Route names the controller's route.
func (c *Controller) Route() string { return c.route }

// Apply adopts a state the fleet's leader wrote: phase, step, weight and
// decisions. A new window epoch starts a fresh local window; within the
// same epoch a burst this replica saw keeps its canary at 0 until the
// leader's rollback arrives. A state that does not fit this replica's plan
// (written by a replica with another config) is refused.
func (c *Controller) Apply(st State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.Route != c.route || !knownPhase(st.Phase) || st.Weight < 0 || st.Weight > 100 || math.IsNaN(st.Weight) {
		return fmt.Errorf("state of route %q: phase %q weight %v is not a rollout state", st.Route, st.Phase, st.Weight)
	}
	if c.plan != nil && st.Phase != Idle && (st.Step < 0 || st.Step >= len(c.plan.Steps)) {
		return fmt.Errorf("state of route %q is at step %d; this replica's plan has %d steps", st.Route, st.Step+1, len(c.plan.Steps))
	}
	fresh := st.Window != c.state.Window || c.win == nil
	c.gen++ // a webhook answer awaited meanwhile is for an older state
	c.state = st
	if c.plan == nil {
		return nil // configure applies the weight
	}
	if fresh {
		c.win = newWindow(c.plan.Analysis.Samples, c.plan.Analysis.Burst.Window)
	}
	w := st.Weight
	if st.Phase == Running && c.win.sawBurst() {
		w = 0
	}
	c.split.SetWeight(w)
	c.metrics.set(c.route, st)
	c.publish()
	return nil
}

// Lead is called when this replica becomes the route's leader: it starts
// a rollout that has never run when the plan says start: auto, and judges
// the running step at once.
func (c *Controller) Lead() {
	c.mu.Lock()
	if c.plan != nil && c.state.Phase == Idle && c.plan.Start == "auto" && len(c.state.Decisions) == 0 {
		c.startLocked("started automatically (start: auto)")
	}
	c.mu.Unlock()
	c.Kick()
}

// Kick asks the controller to evaluate now.
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// PeerBurst is another replica's burst announcement for a window epoch:
// if it is this step's, the canary goes to 0 here too at once, and the
// leader rolls back.
func (c *Controller) PeerBurst(epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Phase != Running || c.state.Window != epoch || c.win == nil || c.split == nil {
		return
	}
	c.win.markBurst()
	c.split.SetWeight(0)
	c.Kick()
}

// Joiner is told which routes have a rollout plan, so the fleet campaigns
// for their leadership and publishes their windows.
type Joiner interface {
	Join(c *Controller)
	Leave(route string)
}

// FleetMember is what the manager needs of a fleet: the controllers'
// Fleet, the routes, and the way to operator commands and status.
type FleetMember interface {
	Fleet
	Joiner
	// Forward runs an operator command on the route's leader and returns
	// once the leader has answered.
	Forward(ctx context.Context, route string, cmd Action) error
	// Flush waits until the leader's newest state is written, so a
	// command's answer means every replica can see it.
	Flush(ctx context.Context, route string) error
	// Describe is the fleet's view of a route for the status: leader,
	// members and their windows.
	Describe(route string) any
}

// SetFleet makes the manager's controllers share their rollouts through
// f. It is called once, before any controller is created; controllers
// then neither load from nor rely on the embedded store, since the fleet's
// state is the truth.
func (m *Manager) SetFleet(f FleetMember) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fleet, m.joiner, m.member = f, f, f
}

// ErrNotAllowed marks a command refused in the rollout's phase (409 in
// the admin API); a fleet wraps it around a leader's refusal.
var ErrNotAllowed = errNotAllowed

// Weight is the canary weight of the rollout's state.
func (c *Controller) Weight() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Weight
}
