package rollouttest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/gateway"
	"github.com/umbragw/umbra/internal/rollout"
	"github.com/umbragw/umbra/internal/store"

	"github.com/umbragw/umbra/test/testkit"
)

// promotedConfig is a route whose config puts 5% of callers on the canary
// and whose rollout an operator promotes (everyone on v2), and a plain
// route that never uses the store.
func promotedConfig(v1, v2, extra string) string {
	return extra + fmt.Sprintf(`
backends:
  v1: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: svc
    match: {path_prefix: /svc}
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2, weight: 5}
    rollout:
      interval: 100ms
      steps:
        - canary: {weight: 10, min_requests: 1000000}
        - promote: {}
  - name: plain
    match: {path_prefix: /plain}
    backend: v1
`, v1, v2)
}

// promote starts a gateway on body, promotes the svc rollout by operator
// commands and stops it, leaving a store that says "promoted".
func promote(t *testing.T, body string) *testkit.Gateway {
	t.Helper()
	g := startGW(t, body)
	mustCommand(t, g, "svc", "start")
	if st := mustCommand(t, g, "svc", "promote"); st.Phase != rollout.Promoted || st.Weight != 100 {
		t.Fatalf("after promote: %+v", st.State)
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	return g
}

// checkHeld checks a restarted gateway: it serves every route, and the svc
// rollout is held at the config's 5% (not idle at 0, not promoted at 100)
// with a reason on the API, the metrics and an ERROR in the log.
func checkHeld(t *testing.T, g *testkit.Gateway, why string, recovered float64) {
	t.Helper()
	c := testkit.NewClient(t, 8, testkit.Wait.Timeout)
	for _, path := range []string{"/plain", "/svc"} {
		if code, _, err := get(c, g.URL+path, "u1"); err != nil || code != http.StatusOK {
			t.Errorf("GET %s after the restart: %d %v", path, code, err)
		}
	}
	st := status(t, g, "svc")
	if st.Phase != rollout.Held || st.Weight != 5 || !strings.Contains(st.HeldReason, why) {
		t.Errorf("after the restart: phase %s weight %v held_reason %q, want held at 5 because %q:\n%s",
			st.Phase, st.Weight, st.HeldReason, why, dump(st.Decisions))
	}
	if d := last(st); d.Action != "held" || d.Weight != 5 {
		t.Errorf("last decision %+v, want held at 5", d)
	}
	m := g.Scrape(t)
	if v, _ := m.Sum("umbra_rollout_phase", map[string]string{"route": "svc", "phase": "held"}); v != 1 {
		t.Errorf(`umbra_rollout_phase{phase="held"} = %v`, v)
	}
	if v, _ := m.Sum("umbra_rollout_weight_percent", map[string]string{"route": "svc"}); v != 5 {
		t.Errorf("umbra_rollout_weight_percent = %v, want the config's 5", v)
	}
	if v, _ := m.Sum("umbra_store_recovered_total", nil); v != recovered {
		t.Errorf("umbra_store_recovered_total = %v, want %v", v, recovered)
	}
	if log := g.Log.String(); !strings.Contains(log, "level=ERROR msg=\"rollout held") {
		t.Errorf("no ERROR for the held rollout in the log:\n%s", testkit.Tail(log, 20))
	}
	// 5% of 400 callers: a binomial with σ ≈ 4.4; 0 (idle) and 400
	// (promoted) are far outside.
	onCanary := 0
	for _, by := range assign(t, c, g.URL+"/svc", users("held-", 400), 4) {
		if by == "v2" {
			onCanary++
		}
	}
	if onCanary < 3 || onCanary > 45 {
		t.Errorf("%d of 400 callers on the canary, want about 5%%", onCanary)
	}
}

// TestDamagedStoreHoldsRollout: a store file damaged as fault injection
// found it (bbolt panicked at start-up, or took a 0-byte file for a new
// store and the promoted rollout came back idle) no longer stops umbra nor
// moves callers: the file is moved aside, every route serves, and the
// rollout is held at the config's weight until an operator acts, which
// survives another restart. A deleted store file counts too, since the
// rollout left a marker (store.ExpectedFile) beside it.
func TestDamagedStoreHoldsRollout(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	// The data kind needs a bucket with a page of its own; the rollout
	// state is one inline key (the unit tests of internal/store cover it).
	// Deleted: the rollout marked the store as holding state.
	for _, kind := range []string{testkit.DamageTruncated, testkit.DamageFreelist, testkit.DamageRoot, testkit.DamageEmpty, testkit.DamageDeleted} {
		t.Run(kind, func(t *testing.T) {
			p := promote(t, promotedConfig(v1.URL, v2.URL, ""))
			db := filepath.Join(p.DataDir, store.FileName)
			if fi, err := os.Stat(db); err != nil || fi.Size() <= 16<<10 {
				t.Fatalf("store file: %v %v", fi, err)
			}
			testkit.DamageStore(t, db, kind, "")
			g := p.Restart(t)
			checkHeld(t, g, "store was replaced", 1)
			if log := g.Log.String(); !strings.Contains(log, "level=ERROR msg=\"the store file was damaged") {
				t.Errorf("no ERROR for the damaged file:\n%s", testkit.Tail(log, 20))
			}
			if m, _ := filepath.Glob(db + ".corrupt-*"); len(m) != 1 && kind != testkit.DamageDeleted {
				t.Errorf("files moved aside: %v", m)
			}
			if err := g.Stop(); err != nil {
				t.Fatal(err)
			}

			// Held is saved: a restart on the new store is still held, and
			// the operator's promote is what moves callers.
			g = g.Restart(t)
			st := status(t, g, "svc")
			if st.Phase != rollout.Held || st.Weight != 5 {
				t.Fatalf("second restart: %+v", st.State)
			}
			if st := mustCommand(t, g, "svc", "promote"); st.Phase != rollout.Promoted || st.Weight != 100 || st.HeldReason != "" {
				t.Fatalf("promote from held: %+v", st.State)
			}
		})
	}
}

// TestDamagedStoreFailsWhenAsked: with store.on_corruption: fail, umbra
// refuses to start (gateway.New fails, so `umbra serve` exits 2) naming
// the file, and leaves it in place.
func TestDamagedStoreFailsWhenAsked(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	p := promote(t, promotedConfig(v1.URL, v2.URL, "store: {on_corruption: fail}\n"))
	db := filepath.Join(p.DataDir, store.FileName)
	testkit.DamageStore(t, db, testkit.DamageRoot, "")
	cfg, err := config.Load(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{LogOutput: &testkit.LogBuffer{}})
	if err == nil {
		g.Shutdown()
		t.Fatal("gateway.New on a damaged store with on_corruption: fail succeeded")
	}
	if !strings.Contains(err.Error(), db) || !strings.Contains(err.Error(), "on_corruption") {
		t.Errorf("error = %v", err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the damaged file is gone: %v", err)
	}
}

// TestUnreadableRolloutStateHolds: a rollout state value that does not
// decode (it used to be logged and reset to idle, weight 0) holds the
// rollout at the config's weight.
func TestUnreadableRolloutStateHolds(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	p := promote(t, promotedConfig(v1.URL, v2.URL, ""))
	db, err := bolt.Open(filepath.Join(p.DataDir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("rollouts")).Put([]byte("svc"), []byte(`{"route":"svc","phase":"promoted","weight":"a hundred"`))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	g := p.Restart(t)
	checkHeld(t, g, "unreadable", 0)
}
