package rollout

import (
	"sync"
	"testing"
	"time"
)

// noBurst is a rule that never fires.
var noBurst = burstRule{minErrors: 1 << 30, minIncrease: 1}

func TestWindowRing(t *testing.T) {
	w := newWindow(100, 5)
	// live: ok ok err ok ok | err err  -> ring holds err ok ok err err
	for _, failed := range []bool{false, false, true, false, false, true, true} {
		w.observe(false, failed, time.Millisecond, noBurst)
	}
	c := w.snapshot()
	if c.liveN != 7 || c.liveErr != 3 {
		t.Fatalf("live n=%d errors=%d, want 7 and 3 (cumulative)", c.liveN, c.liveErr)
	}
	if c.liveRecentRate != 3.0/5 {
		t.Errorf("live recent rate %v, want 3/5 over the last 5", c.liveRecentRate)
	}
	// Five successes push every error out of the ring.
	for range 5 {
		w.observe(false, false, time.Millisecond, noBurst)
	}
	if c := w.snapshot(); c.liveRecentRate != 0 || c.liveErr != 3 || c.liveN != 12 {
		t.Errorf("after 5 successes: recent %v, errors %d, n %d", c.liveRecentRate, c.liveErr, c.liveN)
	}
	// The ring is per side, and a part-filled ring rates what it holds.
	w.observe(true, true, time.Millisecond, noBurst)
	w.observe(true, false, time.Millisecond, noBurst)
	if c := w.snapshot(); c.canaryRecentRate != 0.5 || c.canaryN != 2 || c.canaryErr != 1 || c.liveRecentRate != 0 {
		t.Errorf("canary: %+v", c)
	}
	if c := newWindow(10, 5).snapshot(); c.canaryRecentRate != 0 || c.liveRecentRate != 0 || c.burst {
		t.Errorf("empty window: %+v", c)
	}
}

func TestWindowLatencyIsBounded(t *testing.T) {
	w := newWindow(50, 10)
	for i := range 5000 {
		w.observe(i%2 == 0, false, time.Duration(i)*time.Microsecond, noBurst)
	}
	c := w.snapshot()
	if len(c.liveMs) != 50 || len(c.canaryMs) != 50 {
		t.Fatalf("samples kept: live %d, canary %d, want 50 each", len(c.liveMs), len(c.canaryMs))
	}
	if c.liveN != 2500 || c.canaryN != 2500 {
		t.Errorf("counts %d/%d", c.liveN, c.canaryN)
	}
	for _, v := range c.canaryMs {
		if v < 0 || v > 5 {
			t.Fatalf("sample %v ms out of the observed range 0-5 ms", v)
		}
	}
}

func TestWindowBurst(t *testing.T) {
	rule := burstRule{minErrors: 3, minIncrease: 0.2}
	t.Run("fires on the min_errors-th failure, once", func(t *testing.T) {
		w := newWindow(10, 10)
		for range 10 {
			w.observe(false, false, time.Millisecond, rule)
			w.observe(true, false, time.Millisecond, rule)
		}
		var fired []int
		for i := 1; i <= 6; i++ {
			if w.observe(true, true, time.Millisecond, rule) {
				fired = append(fired, i)
			}
		}
		if len(fired) != 1 || fired[0] != 3 {
			t.Fatalf("burst reported on failures %v, want exactly on the 3rd", fired)
		}
		if c := w.snapshot(); !c.burst || c.canaryRecentRate != 0.6 {
			t.Errorf("snapshot %+v", c)
		}
	})
	t.Run("a success does not fire it", func(t *testing.T) {
		// Three failures under a stricter rule (no burst), then a success
		// under a rule the counts now meet: only a failure reports a burst.
		w := newWindow(10, 10)
		w.observe(true, true, time.Millisecond, rule)
		w.observe(true, true, time.Millisecond, rule)
		w.observe(true, true, time.Millisecond, burstRule{minErrors: 4, minIncrease: 0.2})
		if w.observe(true, false, time.Millisecond, burstRule{minErrors: 3, minIncrease: 0.2}) {
			t.Fatal("a successful request reported a burst")
		}
		if !w.observe(true, true, time.Millisecond, rule) {
			t.Fatal("the next failure should report the burst")
		}
	})
	t.Run("live failing as much is no burst", func(t *testing.T) {
		w := newWindow(10, 10)
		for i := range 40 {
			w.observe(false, i%2 == 0, time.Millisecond, rule)
			if w.observe(true, i%2 == 0, time.Millisecond, rule) {
				t.Fatalf("burst at %d with equal error rates", i)
			}
		}
	})
	t.Run("live errors never fire", func(t *testing.T) {
		w := newWindow(10, 10)
		for range 20 {
			if w.observe(false, true, time.Millisecond, rule) {
				t.Fatal("a live failure reported a burst")
			}
		}
	})
	t.Run("min_increase over a full ring", func(t *testing.T) {
		// With a full ring of 100, 10 errors are a rate of 0.10, not above
		// min_increase 0.2: the burst needs 21 errors (both conditions).
		w := newWindow(10, 100)
		for range 100 {
			w.observe(true, false, time.Millisecond, burstRule{minErrors: 10, minIncrease: 0.2})
			w.observe(false, false, time.Millisecond, burstRule{minErrors: 10, minIncrease: 0.2})
		}
		for i := 1; i <= 21; i++ {
			fired := w.observe(true, true, time.Millisecond, burstRule{minErrors: 10, minIncrease: 0.2})
			if fired != (i == 21) {
				t.Fatalf("failure %d: burst=%v, want a burst on the 21st only", i, fired)
			}
		}
	})
	t.Run("concurrent observers report it once", func(t *testing.T) {
		w := newWindow(10, 50)
		var mu sync.Mutex
		reports := 0
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 50 {
					if w.observe(true, true, time.Millisecond, rule) {
						mu.Lock()
						reports++
						mu.Unlock()
					}
					w.observe(false, false, time.Millisecond, rule)
				}
			})
		}
		wg.Wait()
		if reports != 1 {
			t.Fatalf("burst reported %d times", reports)
		}
	})
}
