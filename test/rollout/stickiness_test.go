package rollouttest

import (
	"fmt"
	"math"
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

// TestStickyMonotoneSplit: over 10,000 callers through the real gateway,
// raising the canary's weight from 5% to 25% (a reload) only adds callers:
// everyone on the canary at 5% still is at 25%; each observed share is
// within 4σ of its weight; asking again at the same weight changes nobody.
// No override header is sent: this is the hashed path.
//
// The 10,000-caller passes call the running gateway's handler directly
// (router, split and proxy to the real backends over HTTP, without the
// client's and listener's connection handling, which halves the cost under
// -race); a sample of callers sent by a real HTTP client through the
// listener must be served exactly as the handler pass said.
func TestStickyMonotoneSplit(t *testing.T) {
	t.Parallel()
	const n = 10000
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	cfg := func(weight float64) string {
		return testkit.Backends("v1", v1.URL, "v2", v2.URL) + fmt.Sprintf(`
routes:
  - name: web
    backend: v1
    key: "header:X-User-ID"
    canary: {backend: v2, weight: %g, override_header: X-Umbra-Version}
`, weight)
	}
	g := startGW(t, cfg(5))
	c := testkit.NewClient(t, 64, testkit.Wait.Timeout)
	keys := users("sticky-", n)

	share := func(m map[string]string) float64 {
		in := 0
		for _, by := range m {
			if by == "v2" {
				in++
			} else if by != "v1" {
				t.Fatalf("served by %q", by)
			}
		}
		return float64(in) / n
	}
	within := func(got, weight float64) {
		t.Helper()
		p := weight / 100
		sigma := math.Sqrt(p * (1 - p) / n)
		if math.Abs(got-p) > 4*sigma {
			t.Errorf("at weight %g%% the canary got %.2f%% of %d callers (4σ = %.2f points)", weight, 100*got, n, 400*sigma)
		}
	}

	at5 := assignHandler(t, g, "/page", keys, 2)
	within(share(at5), 5)

	g.Reconfigure(t, cfg(25))
	at25 := assignHandler(t, g, "/page", keys, 2)
	within(share(at25), 25)

	lost := 0
	for _, k := range keys {
		if at5[k] == "v2" && at25[k] != "v2" {
			lost++
			if lost <= 5 {
				t.Errorf("%s was on the canary at 5%% and is not at 25%%", k)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d callers left the canary when its weight rose", lost)
	}

	// No drift while the weight stands still, and the listener serves
	// callers as the handler does: a sample of the callers sent again by a
	// real client is served exactly as before.
	again := assign(t, c, g.URL+"/page", keys[:1000], 2)
	for k, by := range again {
		if at25[k] != by {
			t.Fatalf("%s moved from %s to %s at a constant weight", k, at25[k], by)
		}
	}
	if h := v2.hits.Load() + v1.hits.Load(); h != 2*n+1000 {
		t.Errorf("backends served %d requests, want %d", h, 2*n+1000)
	}
}
