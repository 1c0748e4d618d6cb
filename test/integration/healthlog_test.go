package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// TestHealthEventsUseTheGatewayLog: "ejected", "readmitted" and panic-mode
// events go through the gateway's logger (they went to slog.Default: plain
// text on stderr, whatever log.format and log.level said), honour its
// level, and follow a reload that changes the log settings on a backend
// the reload keeps.
func TestHealthEventsUseTheGatewayLog(t *testing.T) {
	t.Parallel()
	live := testkit.NewUpstream(t, "live", nil)
	dead := "http://" + testkit.DeadAddr(t)
	cfg := func(log string) string {
		return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
server: {shutdown_grace: 5s}
log: %s
backends:
  mixed: {endpoints: [%q, %q], health: {max_fails: 1, eject_for: 100ms}}
  gone: {endpoints: [%q], health: {max_fails: 1, eject_for: 1m}, retry: {disable: true}}
routes:
  - {name: mixed, match: {path_prefix: /mixed}, backend: mixed}
  - {name: gone, match: {path_prefix: /gone}, backend: gone}
`, log, dead, live.URL, dead)
	}
	g := startGW(t, cfg("{format: json, level: warn, access: false}"))
	cl := newClient(t)
	// Round robin sends one of the first two requests to the dead
	// endpoint: ejected, retried on the live one.
	for range 2 {
		if r := do(t, cl, "GET", g.URL+"/mixed", nil); r.Status != http.StatusOK {
			t.Fatalf("GET /mixed: %d %s", r.Status, r.Body)
		}
	}
	// The only endpoint of "gone" fails, is ejected, and the next request
	// finds every endpoint ejected: panic mode.
	for range 2 {
		do(t, cl, "GET", g.URL+"/gone", nil)
	}
	for _, msg := range []string{"backend endpoint ejected", "backend: every endpoint is ejected, sending to them anyway (panic mode)"} {
		lines := g.Log.Lines(msg)
		if len(lines) == 0 {
			t.Fatalf("no %q in the gateway log:\n%s", msg, testkit.Tail(g.Log.String(), 20))
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec["level"] != "WARN" || rec["msg"] != msg || rec["backend"] == nil {
			t.Errorf("%q is not a JSON record of the gateway's logger: %s (%v)", msg, lines[0], err)
		}
	}
	// Readmission is INFO: below log.level warn.
	time.Sleep(150 * time.Millisecond)
	for range 2 {
		do(t, cl, "GET", g.URL+"/mixed", nil)
	}
	if lines := g.Log.Lines("backend endpoint readmitted"); len(lines) != 0 {
		t.Errorf("an INFO health event was logged at log.level warn: %q", lines)
	}

	// The reload keeps the backends (unchanged) and switches to text at
	// info: the next events are text lines, readmission included.
	g.Rewrite(t, cfg("{format: text, level: info, access: false}"))
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	testkit.Wait.UntilTrue(t, "readmitted and ejected again, in text", func() bool {
		do(t, cl, "GET", g.URL+"/mixed", nil)
		return len(g.Log.Lines("level=INFO", `msg="backend endpoint readmitted"`, "backend=mixed")) > 0 &&
			len(g.Log.Lines("level=WARN", `msg="backend endpoint ejected"`, "backend=mixed")) > 0
	})
}
