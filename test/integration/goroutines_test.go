package integration

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// TestNoGoroutineLeak runs a gateway through a little of everything and
// checks that once it is shut down (and the test's own clients and
// upstreams are closed) the goroutine count is back to its baseline.
//
// It is deliberately not parallel: the sequential phase of the run has
// nothing else running, so the count is this test's alone.
func TestNoGoroutineLeak(t *testing.T) {
	baseline := runtime.NumGoroutine()

	func() {
		up := testkit.NewUpstream(t, "up", nil)
		shadow := testkit.NewUpstream(t, "shadow", nil)
		dead := testkit.DeadAddr(t)
		g := startGW(t, base+testkit.Backends("up", up.URL, "shadow", shadow.URL)+fmt.Sprintf(`
  dead: {endpoints: ["http://%s"]}
routes:
  - name: app
    match: {path_prefix: /app}
    backend: up
    shadow: [{backend: shadow, percent: 100}]
  - {name: dead, match: {path_prefix: /dead}, backend: dead}
`, dead))
		ctx, cancel := context.WithCancel(context.Background())
		if err := g.Watch(ctx); err != nil {
			t.Fatal(err)
		}
		c := newClient(t)
		for i := range 10 {
			do(t, c, "GET", fmt.Sprintf("%s/app/%d", g.URL, i), nil)
			do(t, c, "POST", g.URL+"/app/post", strings.NewReader("body"))
		}
		do(t, c, "GET", g.URL+"/dead", nil)
		do(t, c, "GET", g.URL+"/none", nil)
		do(t, c, "GET", g.AdminURL+"/metrics", nil)
		testkit.Wait.Until(t, "the shadow copies", func() (bool, string) {
			return shadow.Hits.Load() >= 10, fmt.Sprint(shadow.Hits.Load())
		})
		g.Rewrite(t, oneRoute(up))
		if err := g.Reload(); err != nil {
			t.Fatal(err)
		}
		do(t, c, "GET", g.URL+"/app", nil)

		cancel()
		if err := g.Stop(); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		c.Transport.(*http.Transport).CloseIdleConnections()
		up.Close()
		shadow.Close()
	}()

	deadline := time.Now().Add(testkit.Wait.Timeout)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline+1 {
			return
		}
		if time.Now().After(deadline) {
			var sb strings.Builder
			pprof.Lookup("goroutine").WriteTo(&sb, 1)
			t.Fatalf("%d goroutines %v after Shutdown, baseline %d:\n%s", n, testkit.Wait.Timeout, baseline, sb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
