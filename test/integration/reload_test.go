package integration

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// oneRoute is a config whose single route "app" goes to a backend named
// after its one endpoint's upstream.
func oneRoute(u *testkit.Upstream) string {
	return base + fmt.Sprintf(`
backends:
  %s: {endpoints: [%q]}
routes:
  - {name: app, backend: %s}
`, u.Name, u.URL, u.Name)
}

// servedBy asks the gateway which backend answers now.
func servedBy(t *testing.T, c *http.Client, g *testkit.Gateway) string {
	t.Helper()
	return echoOf(t, do(t, c, "GET", g.URL+"/which", nil)).Backend
}

func TestReload(t *testing.T) {
	t.Parallel()
	a, b := testkit.NewUpstream(t, "a", nil), testkit.NewUpstream(t, "b", nil)
	g := startGW(t, oneRoute(a))
	c := newClient(t)
	if got := servedBy(t, c, g); got != "a" {
		t.Fatalf("before reload: %s", got)
	}
	g.Rewrite(t, oneRoute(b))
	if err := g.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := servedBy(t, c, g); got != "b" {
		t.Fatalf("after Reload: served by %s, want b", got)
	}
	g.WaitMetric(t, "umbra_config_reloads_total", testkit.Labels("result", "success"), 2) // New counts as one
	g.WaitMetric(t, "umbra_config_reloads_total", testkit.Labels("result", "failure"), 0)
}

func TestReloadByFileWatch(t *testing.T) {
	t.Parallel()
	a, b := testkit.NewUpstream(t, "a", nil), testkit.NewUpstream(t, "b", nil)
	g := startGW(t, oneRoute(a))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := g.Watch(ctx); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	c := newClient(t)
	if got := servedBy(t, c, g); got != "a" {
		t.Fatalf("before: %s", got)
	}
	g.Rewrite(t, oneRoute(b)) // atomic rename, as editors do
	testkit.Wait.Until(t, "the watcher to apply the new file", func() (bool, string) {
		got := servedBy(t, c, g)
		return got == "b", "served by " + got
	})
	// And a second change: the watch survives the file being replaced.
	g.Rewrite(t, oneRoute(a))
	testkit.Wait.Until(t, "the watcher to apply the second change", func() (bool, string) {
		got := servedBy(t, c, g)
		return got == "a", "served by " + got
	})
}

// TestReloadRejected: files that do not load or compile are rejected with
// positioned errors, the running routing stays, and the failure is counted.
func TestReloadRejected(t *testing.T) {
	t.Parallel()
	a, b := testkit.NewUpstream(t, "a", nil), testkit.NewUpstream(t, "b", nil)
	g := startGW(t, oneRoute(a))
	c := newClient(t)
	for i, tc := range []struct {
		name, yaml, want string
	}{
		{"bad yaml", base + "backends: {b: {endpoints: [" + b.URL + "]}\nroutes: [\n", ":"},
		{"undefined backend", base + fmt.Sprintf("backends:\n  b: {endpoints: [%q]}\nroutes:\n  - {name: app, backend: nope}\n", b.URL), `undefined backend "nope"`},
		{"bad path template", base + fmt.Sprintf("backends:\n  b: {endpoints: [%q]}\nroutes:\n  - {name: app, match: {path: \"/users/{id\"}, backend: b}\n", b.URL), "umbra.yaml:"},
	} {
		g.Rewrite(t, tc.yaml)
		err := g.Reload()
		if err == nil {
			t.Fatalf("%s: Reload accepted:\n%s", tc.name, tc.yaml)
		}
		if !strings.Contains(err.Error(), "umbra.yaml:") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want FILE:LINE:COL and %q", tc.name, err, tc.want)
		}
		if got := servedBy(t, c, g); got != "a" {
			t.Fatalf("%s: after a rejected reload the route goes to %s, want a", tc.name, got)
		}
		g.WaitMetric(t, "umbra_config_reloads_total", testkit.Labels("result", "failure"), float64(i+1))
	}
	if b.Hits.Load() != 0 {
		t.Errorf("backend b of the rejected files got %d requests", b.Hits.Load())
	}
	g.WaitMetric(t, "umbra_config_reloads_total", testkit.Labels("result", "success"), 1)
	g.WaitMetric(t, "umbra_config_routes", nil, 1)
}

// TestReloadUnderLoad: 8 clients send requests without pause while the
// config is reloaded 20 times, alternating two configs whose only backend
// differs (so each reload also retires a backend). No request may fail.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	a, b := testkit.NewUpstream(t, "a", nil), testkit.NewUpstream(t, "b", nil)
	cfgs := []string{oneRoute(a), oneRoute(b)}
	g := startGW(t, cfgs[0])
	c := newClient(t)

	var (
		stop     atomic.Bool
		total    atomic.Int64
		seen     sync.Map
		failMu   sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	fail := func(s string) {
		failMu.Lock()
		defer failMu.Unlock()
		failures = append(failures, s)
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r, err := try(c, "GET", g.URL+"/load", nil)
				total.Add(1)
				switch {
				case err != nil:
					fail(err.Error())
				case r.Status != http.StatusOK:
					fail(fmt.Sprintf("status %d: %s", r.Status, r.Body))
				case r.Header.Get("X-Backend") != "a" && r.Header.Get("X-Backend") != "b":
					fail("answer from " + r.Header.Get("X-Backend"))
				default:
					seen.Store(r.Header.Get("X-Backend"), true)
				}
			}
		}()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 1; i <= 20; i++ {
		<-tick.C
		g.Rewrite(t, cfgs[i%2])
		if err := g.Reload(); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()

	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %q", len(failures), total.Load(), failures[:min(5, len(failures))])
	}
	for _, name := range []string{"a", "b"} {
		if _, ok := seen.Load(name); !ok {
			t.Errorf("no answer from %s", name)
		}
	}
	if total.Load() < 100 {
		t.Errorf("only %d requests in ~2s of load", total.Load())
	}
	// 20 reloads: the last applied cfgs[0].
	if got := servedBy(t, c, g); got != "a" {
		t.Errorf("after the last reload: served by %s, want a", got)
	}
	g.WaitMetric(t, "umbra_config_reloads_total", testkit.Labels("result", "success"), 21)
	g.WaitMetric(t, "umbra_requests_in_flight", nil, 0)
	t.Logf("%d requests, 20 reloads, 0 failures", total.Load())
}

// TestInFlightRequestSurvivesReload: a request that started before a
// reload finishes on the old backend (which the reload removed), while new
// requests go to the new one.
func TestInFlightRequestSurvivesReload(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}, 1), make(chan struct{})
	a := testkit.NewStreamUpstream(t, "a", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
			w.Header().Set("X-Backend", "a")
			fmt.Fprint(w, "slow answer from a")
		case <-r.Context().Done():
		}
	})
	b := testkit.NewUpstream(t, "b", nil)
	g := startGW(t, oneRoute(a))
	c := newClient(t)
	type res struct {
		r   result
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := try(c, "GET", g.URL+"/slow", nil)
		done <- res{r, err}
	}()
	testkit.Recv(t, started, "the request to reach backend a")
	g.Rewrite(t, oneRoute(b))
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := servedBy(t, c, g); got != "b" {
		t.Fatalf("new request after reload served by %s", got)
	}
	close(release)
	r := testkit.Recv(t, done, "the in-flight request")
	if r.err != nil {
		t.Fatalf("in-flight request failed: %v", r.err)
	}
	if r.r.Status != 200 || r.r.Body != "slow answer from a" {
		t.Fatalf("in-flight request: %d %q", r.r.Status, r.r.Body)
	}
}

// TestReloadFailureMetrics: a rejected config or flag file sets its
// *_last_reload_successful gauge to 0 and counts a failure, which is what
// the ConfigReloadFailed and FlagsReloadFailed alerts watch; the next good
// file sets it back to 1. A good config reload reads the flag file afresh,
// so it clears the flags gauge too.
func TestReloadFailureMetrics(t *testing.T) {
	t.Parallel()
	a := testkit.NewUpstream(t, "a", nil)
	dir := t.TempDir()
	flagsFile := filepath.Join(dir, "flags.json")
	const goodFlags = `{"flags": {"beta": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}`
	testkit.WriteFile(t, flagsFile, goodFlags)
	good := oneRoute(a) + fmt.Sprintf("flags: {file: %q}\n", flagsFile)
	g := startGW(t, good)
	g.WaitMetric(t, "umbra_config_last_reload_successful", nil, 1)
	g.WaitMetric(t, "umbra_flags_last_reload_successful", nil, 1)

	testkit.WriteAtomic(t, flagsFile, `{"flags": {"beta": `)
	g.WaitMetric(t, "umbra_flags_reloads_total", testkit.Labels("result", "failure"), 1)
	g.WaitMetric(t, "umbra_flags_last_reload_successful", nil, 0)
	// Put back as it runs: no reload counted, the failure cleared.
	testkit.WriteAtomic(t, flagsFile, goodFlags)
	g.WaitMetric(t, "umbra_flags_last_reload_successful", nil, 1)
	g.WaitMetric(t, "umbra_flags_reloads_total", testkit.Labels("result", "success"), 0)
	testkit.WriteAtomic(t, flagsFile, strings.Replace(goodFlags, `"defaultVariant": "off"`, `"defaultVariant": "on"`, 1))
	g.WaitMetric(t, "umbra_flags_reloads_total", testkit.Labels("result", "success"), 1)

	g.Rewrite(t, good+"bogus_key: 1\n")
	if err := g.Reload(); err == nil {
		t.Fatal("a config with an unknown key was applied")
	}
	g.WaitMetric(t, "umbra_config_last_reload_successful", nil, 0)
	g.WaitMetric(t, "umbra_config_reloads_total", testkit.Labels("result", "failure"), 1)

	testkit.WriteAtomic(t, flagsFile, `{"flags": {"beta": `)
	g.WaitMetric(t, "umbra_flags_last_reload_successful", nil, 0)
	testkit.WriteAtomic(t, flagsFile, goodFlags)
	g.Rewrite(t, good)
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	g.WaitMetric(t, "umbra_config_last_reload_successful", nil, 1)
	g.WaitMetric(t, "umbra_flags_last_reload_successful", nil, 1)
}
