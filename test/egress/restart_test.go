package egresstest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/store"
	"github.com/umbragw/umbra/test/testkit"
)

// plainShadow copies every checkout to v2 without comparing: the copies
// are what crosses the restart.
const plainShadow = `    shadow:
      - {backend: v2, percent: 100, unsafe: allow, queue_size: 1000, max_in_flight: 64, timeout: 30s, breaker: {failures: 1000000}}
`

// v2 gets its copies before umbra restarts and makes their calls after
// it, to the new process on the same data_dir: each copy is replayed its
// own live checkout's recorded answers, read from the store, and the
// provider sees nothing more than the live checkouts' calls.
func TestRecordingsSurviveRestart(t *testing.T) {
	const n = 40
	o := options{route: plainShadow}
	s := start(t, o)
	gate := make(chan struct{})
	s.v2.gate.Store(&gate)
	answers := s.run(t, "r", n, 8)
	testkit.Slow.Until(t, "every copy reached v2", func() (bool, string) {
		return s.v2.served.Load() == n, fmt.Sprint(s.v2.served.Load())
	})
	before := s.prov.total.Load()
	if before != 3*n {
		t.Fatalf("the provider saw %d calls for %d live checkouts, want %d", before, n, 3*n)
	}
	s.gw = s.gw.Restart(t)
	s.aim(o)
	if got := s.gw.Metric(t, "umbra_egress_restored_total", "role", "live"); got != n {
		t.Errorf("restored %v live checkouts, want %d", got, n)
	}
	close(gate)
	testkit.Slow.Until(t, "v2 answered every copy", func() (bool, string) { return s.v2.count() == n, fmt.Sprint(s.v2.count()) })
	for id, live := range answers {
		v1, _ := s.v1.answerOf(id)
		v2, _ := s.v2.answerOf(id)
		if !strings.HasPrefix(live, "200 ") || v1 != v2 {
			t.Errorf("checkout %s: live %s, v2 after the restart %s (want v1's answer, from its recordings)", id, live, v2)
		}
	}
	if got := s.prov.total.Load(); got != before {
		t.Errorf("the provider saw %d calls after the restart, want none", got-before)
	}
	if got := s.gw.Metric(t, "umbra_egress_requests_total", "role", "shadow", "outcome", "replayed"); got != 3*n {
		t.Errorf("replayed shadow calls = %v, want %d", got, 3*n)
	}
	if got := s.gw.Metric(t, "umbra_egress_shadow_leaked_total"); got != 0 {
		t.Errorf("leaked = %v", got)
	}
}

// A store damaged while umbra was down is handled as for the rest of
// umbra's state: the file is moved aside, an empty store started and
// counted. The copies then get the unmatched answer (no recording
// survived), never the provider, and live checkouts are served as ever.
func TestDamagedRecordingStore(t *testing.T) {
	const n = 30
	for _, kind := range []string{testkit.DamageTruncated, testkit.DamageData, testkit.DamageEmpty} {
		t.Run(kind, func(t *testing.T) {
			o := options{route: plainShadow}
			s := start(t, o)
			gate := make(chan struct{})
			s.v2.gate.Store(&gate)
			s.run(t, "d", n, 8)
			testkit.Slow.Until(t, "every copy reached v2", func() (bool, string) {
				return s.v2.served.Load() == n, fmt.Sprint(s.v2.served.Load())
			})
			if err := s.gw.Stop(); err != nil {
				t.Fatal(err)
			}
			testkit.DamageStore(t, filepath.Join(s.gw.DataDir, store.FileName), kind, "egress")
			s.gw = s.gw.Restart(t)
			s.aim(o)
			if got := s.gw.Metric(t, "umbra_store_recovered_total"); got != 1 {
				t.Errorf("umbra_store_recovered_total = %v, want 1", got)
			}
			before := s.prov.total.Load()
			close(gate)
			testkit.Slow.Until(t, "v2 answered every copy", func() (bool, string) { return s.v2.count() == n, fmt.Sprint(s.v2.count()) })
			if got := s.prov.total.Load(); got != before {
				t.Errorf("the provider saw %d shadow calls", got-before)
			}
			if got := s.gw.Metric(t, "umbra_egress_requests_total", "role", "shadow", "outcome", "unmatched"); got < n {
				t.Errorf("unmatched shadow calls = %v, want at least %d", got, n)
			}
			// Live checkouts after the restart reach the provider.
			s.v2.gate.Store(nil)
			for id, a := range s.run(t, "after", 5, 1) {
				if !strings.HasPrefix(a, "200 ") || !strings.Contains(a, `"state":"captured"`) {
					t.Errorf("live checkout %s after the recovery: %s", id, a)
				}
			}
			if got := s.prov.total.Load(); got != before+15 {
				t.Errorf("the provider saw %d calls for 5 live checkouts, want 15", got-before)
			}
		})
	}
}
