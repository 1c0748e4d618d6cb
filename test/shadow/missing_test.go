package shadowtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/config"

	"github.com/umbragw/umbra/test/testkit"
)

// testMissingShadowBackend: a shadow naming a backend the config does not
// define is a config error pointing at the shadow's backend line. Nothing
// starts with such a file, and a running gateway asked to reload it keeps
// serving live traffic exactly as before.
func testMissingShadowBackend(t *testing.T) {
	base := testkit.Goroutines()
	live := newUpstream(t, "live", nil)
	want := []byte("answer from live\n")
	good := fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
routes:
  - name: base
    match: {path_prefix: /base}
    backend: live
  - name: shadowed
    match: {path_prefix: /s}
    backend: live
`, live.URL)
	bad := good + `    shadow:
      - percent: 100
        backend: checkout-v2
`
	// Parse rejects it, naming the line of "backend: checkout-v2".
	_, text, err := parseConfig(t, t.TempDir(), bad)
	if err == nil {
		t.Fatal("config with a shadow to an undefined backend was accepted")
	}
	line := 0
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "backend: checkout-v2") {
			line = i + 1
		}
	}
	var list config.ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("error %v (%T): want a config.ErrorList with one error", err, err)
	}
	if e := list[0]; e.Line != line || !strings.Contains(e.Msg, `"checkout-v2"`) || !strings.Contains(e.Msg, "shadow") {
		t.Errorf("error %q at line %d, want it at line %d (the shadow's backend) naming the backend", e.Msg, e.Line, line)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("umbra.yaml:%d:", line)) {
		t.Errorf("error text %q does not point at umbra.yaml:%d", err, line)
	}

	// A running gateway asked to load it keeps its routing.
	g := startGW(t, good)
	c := testkit.NewClient(t, 4, testkit.Wait.Timeout)
	for i := 0; i < 20; i++ {
		testkit.Do(t, c, "GET", g.URL+"/base/warm", nil)
	}
	g.Rewrite(t, bad)
	if err := g.Reload(); err == nil {
		t.Fatal("reload of a config with a missing shadow backend succeeded")
	} else if !strings.Contains(err.Error(), fmt.Sprintf(":%d:", line)) {
		t.Errorf("reload error %q does not name line %d", err, line)
	}
	assertNotDegraded(t, "missing", g, c, want)
	m := g.scrape(t)
	if v, _ := m.Sum("umbra_config_reloads_total", testkit.Labels("result", "failure")); v != 1 {
		t.Errorf("umbra_config_reloads_total{result=failure} = %v, want 1", v)
	}
	if _, ok := m.Sum("umbra_shadow_requests_total", nil); ok {
		t.Error("shadow series exist although no shadow was ever configured")
	}
	if got := live.Hits.Load(); got != 20+2*isolationRequests && got%(2*isolationRequests) != 20 {
		t.Errorf("live backend got %d requests", got)
	}
	// Close the client's idle connections first: a pooled connection
	// that never carried a request holds Shutdown for 5 s.
	c.CloseIdleConnections()
	if err := g.Stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	live.Close()
	testkit.WaitGoroutines(t, base, "after shutdown")
}
