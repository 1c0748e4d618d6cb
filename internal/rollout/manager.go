package rollout

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/split"
	"github.com/umbragw/umbra/internal/store"
)

// bucket is the store bucket of rollout states, keyed by route.
const bucket = "rollouts"

// Manager owns the controllers of every route with a rollout plan.
type Manager struct {
	sources Sources
	metrics *Metrics
	log     *slog.Logger
	fleet   Fleet  // nil: each replica alone (SetFleet)
	joiner  Joiner // the fleet's side of SetFleet, told which routes have a plan
	member  FleetMember

	mu    sync.Mutex
	store *store.Store
	ctrls map[string]*Controller
}

// NewManager creates a manager; Attach gives it the store.
func NewManager(src Sources, m *Metrics, log *slog.Logger) *Manager {
	return &Manager{sources: src, metrics: m, log: log, ctrls: map[string]*Controller{}}
}

// Attach sets the store that states are loaded from and saved to.
func (m *Manager) Attach(st *store.Store) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.store = st
}

// Controller returns the route's controller, creating it (with the state a
// previous run saved) if needed. The proxy reports requests to it.
func (m *Manager) Controller(route string) *Controller {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.ctrls[route]; c != nil {
		return c
	}
	st := m.store
	if m.fleet != nil {
		st = nil // the fleet's state is the truth
	}
	c := newController(route, st, m.sources, m.fleet, m.metrics, m.log)
	if st != nil {
		m.load(c)
	}
	m.ctrls[route] = c
	return c
}

// load gives c the state a previous run saved. State that should be there
// but is not (the store was found empty or damaged and replaced) or does
// not decode holds the rollout instead of starting idle: idle would move
// callers of a promoted rollout back to the old version without a word.
func (m *Manager) load(c *Controller) {
	var st State
	var found bool
	err := m.store.View(func(tx *store.Tx) error {
		var err error
		found, err = tx.Get(bucket, c.route, &st)
		return err
	})
	switch {
	case err != nil:
		c.holdLost("the saved rollout state is unreadable: " + err.Error())
	case found && !knownPhase(st.Phase):
		c.holdLost(fmt.Sprintf("the saved rollout state has an unknown phase %q", st.Phase))
	case found:
		c.state = st
	case m.store.Lost() != "":
		c.holdLost("the store was replaced by an empty one (" + m.store.Lost() + "); this rollout's saved state is gone")
	}
}

func knownPhase(p Phase) bool {
	for _, k := range phases {
		if p == k {
			return true
		}
	}
	return false
}

// Plan is one route's rollout as compiled.
type Plan struct {
	Rollout *config.Rollout
	Split   *split.Split
}

// Configure installs the plans of a new snapshot: controllers of new
// routes start, changed ones take the new plan, removed ones stop.
func (m *Manager) Configure(plans map[string]Plan) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for route, c := range m.ctrls {
		p, ok := plans[route]
		if !ok {
			if c.plan != nil {
				c.close()
				if m.joiner != nil {
					m.joiner.Leave(route)
				}
			}
			delete(m.ctrls, route)
			m.metrics.forget(route)
			continue
		}
		started := c.plan != nil
		c.configure(p.Rollout, p.Split)
		if !started {
			go c.run()
			if m.joiner != nil {
				m.joiner.Join(c)
			}
		}
	}
}

// Close stops every controller.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.ctrls {
		if c.plan != nil {
			c.close()
		}
	}
	m.ctrls = map[string]*Controller{}
}

// Status is a rollout as the admin API shows it.
type Status struct {
	State
	Steps    []*config.RolloutStep `json:"steps"`
	Analysis config.Analysis       `json:"analysis"`
	// Fleet is the fleet's view (leader, members, their windows) in
	// fleet mode.
	Fleet any `json:"fleet,omitempty"`
}

// MarshalJSON numbers steps from 1 (State.Step is an index), in the
// rollout and in its decisions, as decision reasons, logs, metrics,
// webhooks and the CLI do.
func (s Status) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.shiftSteps(1))
}

// UnmarshalJSON reads what MarshalJSON writes (for the CLI).
func (s *Status) UnmarshalJSON(data []byte) error {
	var v statusJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*s = Status(Status(v).shiftSteps(-1))
	return nil
}

// statusJSON is Status without its JSON methods.
type statusJSON Status

func (s Status) shiftSteps(by int) statusJSON {
	s.Step += by
	s.Decisions = slices.Clone(s.Decisions)
	for i := range s.Decisions {
		s.Decisions[i].Step += by
	}
	return statusJSON(s)
}

// Statuses lists every rollout.
func (m *Manager) Statuses() []Status {
	m.mu.Lock()
	ctrls := make([]*Controller, 0, len(m.ctrls))
	for _, c := range m.ctrls {
		if c.plan != nil {
			ctrls = append(ctrls, c)
		}
	}
	m.mu.Unlock()
	out := make([]Status, 0, len(ctrls))
	for _, c := range ctrls {
		out = append(out, c.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out
}

// Get returns one route's controller, if the route has a rollout plan.
func (m *Manager) Get(route string) (*Controller, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.ctrls[route]
	return c, c != nil && c.plan != nil
}

// Status is the controller's current state.
func (c *Controller) Status() Status {
	c.mu.Lock()
	st := c.state
	st.Decisions = append([]Decision(nil), c.state.Decisions...)
	out := Status{State: st, Steps: c.plan.Steps, Analysis: c.plan.Analysis}
	c.mu.Unlock() // the fleet's Describe reads this controller's window
	if d, ok := c.fleet.(interface{ Describe(string) any }); ok {
		out.Fleet = d.Describe(c.route)
	}
	return out
}

// Command errors.
var errNotAllowed = fmt.Errorf("not allowed in this phase")

// Command runs an operator command: start, pause, resume, promote, abort.
func (c *Controller) Command(cmd Action) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.state.Phase
	switch cmd {
	case Start:
		if p == Running || p == Paused {
			return fmt.Errorf("start: the rollout is already %s: %w", p, errNotAllowed)
		}
		c.startLocked("started by operator")
	case Pause:
		if p != Running {
			return fmt.Errorf("pause: the rollout is %s: %w", p, errNotAllowed)
		}
		c.state.Phase = Paused
		c.decide(Pause, "paused by operator; the weight stays", nil)
	case Resume:
		if p != Paused {
			return fmt.Errorf("resume: the rollout is %s: %w", p, errNotAllowed)
		}
		c.state.Phase = Running
		c.state.Window++
		c.win = newWindow(c.plan.Analysis.Samples, c.plan.Analysis.Burst.Window)
		c.decide(Resume, "resumed by operator; the step's window starts again", nil)
	case Promote:
		if p == Held {
			c.state.HeldReason = ""
			c.state.Step, c.state.StepKind = len(c.plan.Steps)-1, "promote"
			c.setWeight(100)
			c.state.Phase = Promoted
			c.decide(actionComplete, "promoted by operator from held; the canary now serves everyone", nil)
			return nil
		}
		if p != Running && p != Paused {
			return fmt.Errorf("promote: the rollout is %s: %w", p, errNotAllowed)
		}
		c.state.Phase = Running
		c.advanceLocked(result{verdictPass, "step passed by operator", nil})
	case Abort:
		if p != Running && p != Paused && p != Held {
			return fmt.Errorf("abort: the rollout is %s: %w", p, errNotAllowed)
		}
		c.setWeight(0)
		c.state.Phase = Aborted
		c.state.HeldReason = ""
		c.decide(Abort, "aborted by operator; everyone back on live", nil)
	default:
		return fmt.Errorf("unknown command %q (use start, pause, resume, promote or abort)", cmd)
	}
	return nil
}

// startLocked begins the plan at its first step.
func (c *Controller) startLocked(reason string) {
	c.state.Phase = Running
	c.state.HeldReason = ""
	c.state.StartedAt = time.Now()
	c.state.Decisions = c.state.Decisions[:0:0]
	c.enterStepLocked(0)
	c.decide(Start, fmt.Sprintf("%s; step 1 (%s) at weight %g%%", reason, c.state.StepKind, c.state.Weight), nil)
}
