package rollout

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/split"
	"github.com/umbragw/umbra/internal/store"
)

const quietPlan = `      interval: 1h
      steps:
        - canary: {weight: 10, min_requests: 100}
        - canary: {weight: 50, min_requests: 100}
        - promote: {}
`

// TestIdenticalHoldsAreNotRepeated: a quiet service evaluated again and
// again keeps one hold per distinct reason in its history, while the hold
// counter still counts every evaluation.
func TestIdenticalHoldsAreNotRepeated(t *testing.T) {
	u := newUnit(t, quietPlan, nil)
	if err := u.c.Command("start"); err != nil {
		t.Fatal(err)
	}
	var at []time.Time
	for range 3 {
		u.c.evaluate()
		st := u.state()
		at = append(at, st.Decisions[len(st.Decisions)-1].At)
	}
	st := u.state()
	if actions(st.Decisions) != "start,hold" {
		t.Fatalf("decisions %s, want start,hold:\n%s", actions(st.Decisions), dump(st.Decisions))
	}
	if r := st.Decisions[1].Reason; r != "waiting for 100 more canary requests and 100 more live requests" {
		t.Errorf("hold reason %q", r)
	}
	if at[2].Before(at[0]) {
		t.Errorf("the kept hold is not the latest one: %v", at)
	}
	if n := u.counter(t, "hold"); n != 3 {
		t.Errorf("umbra_rollout_decisions_total{action=hold} = %v, want 3 (every evaluation counts)", n)
	}

	// A hold with other numbers in the same step replaces the last one:
	// trickling traffic must not push start and promote out of the history.
	u.c.Observe(false, 200, time.Millisecond)
	u.c.evaluate()
	u.c.evaluate()
	st = u.state()
	if actions(st.Decisions) != "start,hold" || st.Decisions[1].Reason != "waiting for 100 more canary requests and 99 more live requests" {
		t.Fatalf("after one live request:\n%s", dump(st.Decisions))
	}

	// The same reason after another action is recorded again.
	if err := u.c.Command("pause"); err != nil {
		t.Fatal(err)
	}
	if err := u.c.Command("resume"); err != nil {
		t.Fatal(err)
	}
	u.c.evaluate()
	u.c.evaluate()
	if got := actions(u.state().Decisions); got != "start,hold,pause,resume,hold" {
		t.Fatalf("decisions %s", got)
	}
}

// TestDecisionHistoryIsBounded: the history keeps the last maxDecisions.
func TestDecisionHistoryIsBounded(t *testing.T) {
	u := newUnit(t, quietPlan, nil)
	if err := u.c.Command("start"); err != nil {
		t.Fatal(err)
	}
	for range maxDecisions {
		if err := u.c.Command("pause"); err != nil {
			t.Fatal(err)
		}
		if err := u.c.Command("resume"); err != nil {
			t.Fatal(err)
		}
	}
	ds := u.state().Decisions
	if len(ds) != maxDecisions || ds[len(ds)-1].Action != "resume" || ds[0].Action != "pause" {
		t.Fatalf("%d decisions, first %s, last %s", len(ds), ds[0].Action, ds[len(ds)-1].Action)
	}
}

// TestBurstRollsBackAtOnce: the request that completes a burst takes the
// canary's weight to 0 itself and wakes the controller, which records the
// rollback naming the burst.
func TestBurstRollsBackAtOnce(t *testing.T) {
	u := newUnit(t, `      interval: 1h
      steps:
        - canary: {weight: 50, min_requests: 1000000}
        - promote: {}
      analysis: {burst: {window: 10, min_errors: 3, min_increase: 0.2}}
`, nil)
	if err := u.c.Command("start"); err != nil {
		t.Fatal(err)
	}
	if u.split.Weight() != 50 {
		t.Fatalf("weight %v after start", u.split.Weight())
	}
	for range 10 {
		u.c.Observe(true, 200, time.Millisecond)
		u.c.Observe(false, 200, time.Millisecond)
	}
	u.c.Observe(true, 500, time.Millisecond)
	u.c.Observe(true, 503, time.Millisecond)
	u.c.Observe(false, 500, time.Millisecond) // live's recent errors raise the bar
	u.c.Observe(true, 502, time.Millisecond)  // 30% vs live's 10%: not above by more than 0.2
	if u.split.Weight() != 50 || len(u.c.kick) != 0 {
		t.Fatalf("three canary errors against one live: weight %v, kicked %d", u.split.Weight(), len(u.c.kick))
	}
	u.c.Observe(true, 504, time.Millisecond)
	if u.split.Weight() != 0 {
		t.Fatalf("weight %v after the burst, want 0 at once", u.split.Weight())
	}
	if len(u.c.kick) != 1 {
		t.Fatal("the controller was not woken up")
	}
	<-u.c.kick
	u.c.evaluate()
	st := u.state()
	last := st.Decisions[len(st.Decisions)-1]
	if st.Phase != RolledBack || st.Weight != 0 || last.Action != "rollback" {
		t.Fatalf("phase %s weight %v:\n%s", st.Phase, st.Weight, dump(st.Decisions))
	}
	if !strings.HasPrefix(last.Reason, "error burst: 40% of the last 10 canary requests failed (live 10%)") {
		t.Errorf("reason %q", last.Reason)
	}
	if last.Inputs["canary_recent_error_rate"] != 0.4 || last.Inputs["live_recent_error_rate"] != 0.1 {
		t.Errorf("inputs %v", last.Inputs)
	}
	// Rolled back: requests are no longer observed, the weight stays 0.
	for range 20 {
		u.c.Observe(true, 500, time.Millisecond)
	}
	if len(u.c.kick) != 0 || u.split.Weight() != 0 {
		t.Errorf("observing after the rollback: kicked %d, weight %v", len(u.c.kick), u.split.Weight())
	}
	if got := gathered(t, u.reg, "umbra_rollout_phase", map[string]string{"route": "svc", "phase": string(RolledBack)}); got != 1 {
		t.Errorf("umbra_rollout_phase{rolled_back} = %v", got)
	}
}

// TestShadowStepJudgedOnItsOwnCounts: a shadow step counts the comparisons
// made since it began, not those of earlier runs.
func TestShadowStepJudgedOnItsOwnCounts(t *testing.T) {
	u := newUnit(t, `      interval: 1h
      steps:
        - shadow: {min_requests: 100}
        - canary: {weight: 10, min_requests: 100}
        - promote: {}
`, nil)
	u.src.set(ShadowStatus{Compared: 5000, Sent: 5000, Failed: 400})
	if err := u.c.Command("start"); err != nil {
		t.Fatal(err)
	}
	if st := u.state(); st.Weight != 0 || st.StepKind != "shadow" || (st.Base.Compared != 5000 || st.Base.ShadowSent != 5000 || st.Base.ShadowFailed != 400) {
		t.Fatalf("after start: %+v", st)
	}
	u.src.set(ShadowStatus{Compared: 5040, Sent: 5040, Failed: 400})
	u.c.evaluate()
	st := u.state()
	if last := st.Decisions[len(st.Decisions)-1]; last.Action != "hold" || last.Reason != "waiting for 60 more compared answers" ||
		last.Inputs["compared"] != 40 || last.Inputs["shadow_failed"] != 0 {
		t.Fatalf("decisions:\n%s", dump(st.Decisions))
	}
	u.src.set(ShadowStatus{Compared: 5100, Sent: 5100, Failed: 400})
	u.c.evaluate()
	st = u.state()
	last := st.Decisions[len(st.Decisions)-1]
	if last.Action != "promote" || st.Step != 1 || st.Weight != 10 || u.split.Weight() != 10 ||
		last.Reason != "100 answers compared, no field regressed beyond 1.0%; step 2 (canary) at weight 10%" {
		t.Fatalf("step %d weight %v:\n%s", st.Step, st.Weight, dump(st.Decisions))
	}
}

// TestCommandPhases: each command is refused in the phases it makes no
// sense in, with an error the API maps to 409; unknown commands are not.
func TestCommandPhases(t *testing.T) {
	u := newUnit(t, quietPlan, nil)
	for _, cmd := range []Action{"pause", "resume", "promote", "abort"} {
		if err := u.c.Command(cmd); !errors.Is(err, errNotAllowed) {
			t.Errorf("%s while idle: %v, want errNotAllowed", cmd, err)
		}
	}
	if err := u.c.Command("bogus"); err == nil || errors.Is(err, errNotAllowed) {
		t.Errorf("unknown command: %v", err)
	}
	must := func(cmd Action) {
		t.Helper()
		if err := u.c.Command(cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	must("start")
	for _, cmd := range []Action{"start", "resume"} {
		if err := u.c.Command(cmd); !errors.Is(err, errNotAllowed) {
			t.Errorf("%s while running: %v", cmd, err)
		}
	}
	must("pause")
	if u.split.Weight() != 10 {
		t.Errorf("pause changed the weight to %v", u.split.Weight())
	}
	for _, cmd := range []Action{"start", "pause"} {
		if err := u.c.Command(cmd); !errors.Is(err, errNotAllowed) {
			t.Errorf("%s while paused: %v", cmd, err)
		}
	}
	must("promote") // from paused: passes the step and runs again
	if st := u.state(); st.Phase != Running || st.Step != 1 || u.split.Weight() != 50 {
		t.Fatalf("promote while paused: %+v", st)
	}
	must("abort")
	if st := u.state(); st.Phase != Aborted || st.Weight != 0 || u.split.Weight() != 0 {
		t.Fatalf("abort: %+v", st)
	}
	for _, cmd := range []Action{"pause", "resume", "promote", "abort"} {
		if err := u.c.Command(cmd); !errors.Is(err, errNotAllowed) {
			t.Errorf("%s while aborted: %v", cmd, err)
		}
	}
	must("start") // a finished rollout can be started again, from step 1
	if st := u.state(); st.Phase != Running || st.Step != 0 || u.split.Weight() != 10 || actions(st.Decisions) != "start" {
		t.Fatalf("restart: %+v", st)
	}
}

// TestStatePersistsAcrossManagers: the state saved at every decision is
// what a new manager on the same store loads, and the loaded weight wins
// over the config's.
func TestStatePersistsAcrossManagers(t *testing.T) {
	dir := t.TempDir()
	r := parsePlan(t, quietPlan)

	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(&fakeSources{}, NewMetrics(prometheus.NewRegistry()), discardLog())
	m.Attach(st)
	c := m.Controller("svc")
	m.Configure(map[string]Plan{"svc": {Rollout: r.Rollout, Split: split.New(r)}})
	for _, cmd := range []Action{"start", "promote"} {
		if err := c.Command(cmd); err != nil {
			t.Fatal(err)
		}
	}
	c.Observe(true, 200, 3*time.Millisecond)
	c.evaluate()
	if err := c.Command("pause"); err != nil {
		t.Fatal(err)
	}
	before := c.Status().State
	m.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	m2 := NewManager(&fakeSources{}, NewMetrics(prometheus.NewRegistry()), discardLog())
	m2.Attach(st2)
	defer m2.Close()
	c2 := m2.Controller("svc")
	sp := split.New(r) // the config says weight 0
	m2.Configure(map[string]Plan{"svc": {Rollout: r.Rollout, Split: sp}})
	after := c2.Status().State

	if after.Phase != Paused || after.Step != 1 || after.StepKind != "canary" || after.Weight != 50 || after.Route != "svc" {
		t.Fatalf("loaded %+v", after)
	}
	if sp.Weight() != 50 {
		t.Errorf("split weight %v after loading, want the rollout's 50", sp.Weight())
	}
	if !after.StartedAt.Equal(before.StartedAt) || !after.StepStartedAt.Equal(before.StepStartedAt) {
		t.Errorf("times: %v %v, want %v %v", after.StartedAt, after.StepStartedAt, before.StartedAt, before.StepStartedAt)
	}
	if len(after.Decisions) != len(before.Decisions) || actions(after.Decisions) != "start,promote,hold,pause" {
		t.Fatalf("decisions %s, want start,promote,hold,pause", actions(after.Decisions))
	}
	for i := range before.Decisions {
		b, a := before.Decisions[i], after.Decisions[i]
		if !a.At.Equal(b.At) || a.Action != b.Action || a.Reason != b.Reason || a.Step != b.Step || a.Weight != b.Weight ||
			!reflect.DeepEqual(a.Inputs, b.Inputs) {
			t.Errorf("decision %d: %+v, want %+v", i, a, b)
		}
	}
	// The loaded rollout goes on from where it was.
	if err := c2.Command("resume"); err != nil {
		t.Fatal(err)
	}
	if err := c2.Command("promote"); err != nil {
		t.Fatal(err)
	}
	if s := c2.Status(); s.Phase != Promoted || sp.Weight() != 100 || s.Decisions[len(s.Decisions)-1].Action != "complete" {
		t.Fatalf("after promote: %+v", s.State)
	}
}

// TestMinDurationCountsFromStepStart: docs/rollouts.md, "State and
// restarts": after a restart the window starts again, "while min_duration
// is measured from when the step began". A step that began an hour ago
// with min_duration 30m must not wait 30 more minutes after a restart.
func TestMinDurationCountsFromStepStart(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	began := time.Now().Add(-time.Hour)
	saved := State{Route: "svc", Phase: Running, Step: 0, StepKind: "canary", Weight: 10, StartedAt: began, StepStartedAt: began,
		Decisions: []Decision{{At: began, Action: "start", Reason: "started by operator", Weight: 10}}}
	if err := st.Update(func(tx *store.Tx) error { return tx.Put(bucket, "svc", saved) }); err != nil {
		t.Fatal(err)
	}
	r := parsePlan(t, `      interval: 1h
      steps:
        - canary: {weight: 10, min_duration: 30m}
        - canary: {weight: 50, min_duration: 30m}
        - promote: {}
`)
	m := NewManager(&fakeSources{}, NewMetrics(prometheus.NewRegistry()), discardLog())
	m.Attach(st)
	defer m.Close()
	c := m.Controller("svc")
	m.Configure(map[string]Plan{"svc": {Rollout: r.Rollout, Split: split.New(r)}})
	c.evaluate()
	s := c.Status()
	last := s.Decisions[len(s.Decisions)-1]
	if last.Action != "promote" || s.Step != 1 {
		t.Fatalf("a step that began an hour ago, min_duration 30m, after a restart: %s %q (elapsed_seconds=%v)",
			last.Action, last.Reason, last.Inputs["elapsed_seconds"])
	}
}

// hookServer answers webhooks: it reports each call on calls and, while
// hold is open, blocks the answer.
type hookServer struct {
	*httptest.Server
	calls   chan map[string]any
	release chan struct{}
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{calls: make(chan map[string]any, 16), release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		h.calls <- ev
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(h.Close)
	return h
}

// TestBurstWhileLeavingAStepRollsBack: a burst that happens while the
// controller is moving to the next step (here: waiting for the before_step
// webhook) must not be lost: docs/rollouts.md says the weight drops to 0
// on that very request and the rollback is recorded.
func TestBurstWhileLeavingAStepRollsBack(t *testing.T) {
	hook := newHookServer(t)
	u := newUnit(t, `      interval: 1h
      steps:
        - canary: {weight: 20}
        - canary: {weight: 40}
        - promote: {}
      analysis: {burst: {window: 10, min_errors: 3, min_increase: 0.2}}
      webhooks: {before_step: "`+hook.URL+`/before", timeout: 10s}
`, nil)
	if err := u.c.Command("start"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.c.evaluate() // the step passes (no minimum) and asks before_step
	}()
	select {
	case ev := <-hook.calls:
		if ev["event"] != "before_step" || ev["step"] != float64(2) {
			t.Errorf("webhook event %v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("before_step was not called")
	}
	for range 3 {
		u.c.Observe(true, 500, time.Millisecond)
	}
	if u.split.Weight() != 0 {
		t.Fatalf("weight %v after the burst", u.split.Weight())
	}
	close(hook.release)
	<-done
	select { // the kicked evaluation, as run() would do it
	case <-u.c.kick:
		u.c.evaluate()
	default:
	}
	st := u.state()
	if st.Phase != RolledBack || u.split.Weight() != 0 {
		t.Fatalf("burst during the step change: phase %s, step %d, canary weight %v (want rolled_back at 0):\n%s",
			st.Phase, st.Step+1, u.split.Weight(), dump(st.Decisions))
	}
}

// TestSlowWebhookBlocksNothing: while before_step is waiting for a slow
// webhook, status and operator commands answer at once, and a command
// given meanwhile wins over the evaluation that asked.
func TestSlowWebhookBlocksNothing(t *testing.T) {
	hook := newHookServer(t)
	u := newUnit(t, `      interval: 1h
      steps:
        - canary: {weight: 20}
        - canary: {weight: 40}
        - promote: {}
      webhooks: {before_step: "`+hook.URL+`/before", timeout: 10s}
`, nil)
	if err := u.c.Command("start"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.c.evaluate() // the step passes (no minimum) and asks before_step
	}()
	select {
	case <-hook.calls:
	case <-time.After(10 * time.Second):
		t.Fatal("before_step was not called")
	}
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		_ = u.state()
		if err := u.c.Command("pause"); err != nil {
			t.Errorf("pause during the webhook call: %v", err)
		}
	}()
	select {
	case <-answered:
	case <-time.After(2 * time.Second):
		t.Fatal("status and pause waited for the webhook")
	}
	close(hook.release)
	<-done
	st := u.state()
	if st.Phase != Paused || st.Step != 0 || u.split.Weight() != 20 {
		t.Fatalf("after pause during the webhook: phase %s step %d weight %v, want paused at step 1, 20%%:\n%s",
			st.Phase, st.Step+1, u.split.Weight(), dump(st.Decisions))
	}
}

// A state saved before Baseline's keys were snake_case (in the store or in
// etcd) still loads its shadow-step baseline; the new keys are written.
func TestBaselineReadsGoCasedKeys(t *testing.T) {
	var b Baseline
	if err := json.Unmarshal([]byte(`{"Compared": 7, "ShadowSent": 9, "ShadowFailed": 2}`), &b); err != nil {
		t.Fatal(err)
	}
	if b.Compared != 7 || b.ShadowSent != 9 || b.ShadowFailed != 2 {
		t.Errorf("old keys: %+v", b)
	}
	out, err := json.Marshal(Baseline{Compared: 1, ShadowSent: 2, ShadowFailed: 3})
	if err != nil || string(out) != `{"compared":1,"shadow_sent":2,"shadow_failed":3}` {
		t.Errorf("new keys: %s %v", out, err)
	}
	var back Baseline
	if err := json.Unmarshal(out, &back); err != nil || back.Compared != 1 || back.ShadowSent != 2 || back.ShadowFailed != 3 {
		t.Errorf("round trip: %+v %v", back, err)
	}
}
