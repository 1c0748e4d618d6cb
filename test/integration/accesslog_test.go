package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// TestAccessLogUnits: the access log line's duration carries its unit in
// its name (duration_ms, a number of milliseconds) in both log formats,
// never slog's bare-nanoseconds (JSON) or unit-suffixed text forms.
func TestAccessLogUnits(t *testing.T) {
	t.Parallel()
	up := testkit.NewStreamUpstream(t, "slowish", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
	})
	g := startGW(t, fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {format: json, level: info, access: true}
server: {shutdown_grace: 5s}
backends:
  b: {endpoints: [%q]}
routes:
  - {name: r, backend: b}
`, up.URL))
	c := newClient(t)
	if r := do(t, c, "GET", g.URL+"/x", nil); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	var line map[string]any
	testkit.Wait.UntilTrue(t, "an access log line", func() bool {
		for _, l := range strings.Split(g.Log.String(), "\n") {
			if strings.Contains(l, `"msg":"access"`) {
				return json.Unmarshal([]byte(l), &line) == nil
			}
		}
		return false
	})
	if _, ok := line["duration"]; ok {
		t.Errorf("access log has a unitless duration: %v", line)
	}
	ms, ok := line["duration_ms"].(float64)
	if !ok || ms < 20 || ms > 10_000 {
		t.Errorf("duration_ms = %v (%T), want the request's ~20 ms as a number of milliseconds", line["duration_ms"], line["duration_ms"])
	}
}
