package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

// TestMetricsCounts sends known traffic and checks the request, error,
// latency and in-flight series, then lints the exposition with promtool.
func TestMetricsCounts(t *testing.T) {
	t.Parallel()
	up := testkit.NewStreamUpstream(t, "mb", func(w http.ResponseWriter, r *http.Request) {
		code := 200
		if s := r.URL.Query().Get("code"); s != "" {
			code, _ = strconv.Atoi(s)
		}
		w.WriteHeader(code)
	})
	g := startGW(t, base+fmt.Sprintf(`
backends:
  mb: {endpoints: [%q]}
  dead: {endpoints: ["http://%s"], retry: {disable: true}, health: {max_fails: 100}}
routes:
  - {name: m, match: {path_prefix: /m}, backend: mb}
  - {name: down, match: {path_prefix: /down}, backend: dead}
`, up.URL, testkit.DeadAddr(t)))
	c := newClient(t)
	send := func(n int, method, path string, want int) {
		t.Helper()
		for range n {
			var body *strings.Reader
			if method == "POST" {
				body = strings.NewReader("x")
			}
			var r result
			if body != nil {
				r = do(t, c, method, g.URL+path, body)
			} else {
				r = do(t, c, method, g.URL+path, nil)
			}
			if r.Status != want {
				t.Fatalf("%s %s: %d, want %d", method, path, r.Status, want)
			}
		}
	}
	send(3, "GET", "/m/a", 200)
	send(2, "POST", "/m/b?code=201", 201)
	send(1, "DELETE", "/m/c?code=404", 404)
	send(2, "PURGE", "/m/d", 200)
	send(1, "BREW", "/m/e?code=418", 418)
	send(2, "GET", "/down", 502)
	send(1, "GET", "/unrouted", 404)

	live := func(route, backend, method, code string) map[string]string {
		return testkit.Labels("route", route, "backend", backend, "role", "live", "method", method, "code", code)
	}
	g.WaitMetric(t, "umbra_requests_total", live("m", "mb", "GET", "200"), 3)
	g.WaitMetric(t, "umbra_requests_total", live("m", "mb", "POST", "201"), 2)
	g.WaitMetric(t, "umbra_requests_total", live("m", "mb", "DELETE", "404"), 1)
	g.WaitMetric(t, "umbra_requests_total", live("m", "mb", "OTHER", "200"), 2)
	g.WaitMetric(t, "umbra_requests_total", live("m", "mb", "OTHER", "418"), 1)
	g.WaitMetric(t, "umbra_requests_total", testkit.Labels("route", "m"), 9)
	g.WaitMetric(t, "umbra_requests_total", live("down", "dead", "GET", "502"), 2)
	g.WaitMetric(t, "umbra_upstream_errors_total", testkit.Labels("route", "down", "backend", "dead", "role", "live", "kind", "connect"), 2)
	g.WaitMetric(t, "umbra_upstream_errors_total", testkit.Labels("route", "m"), 0)
	g.WaitMetric(t, "umbra_unmatched_requests_total", testkit.Labels("method", "GET"), 1)
	g.WaitMetric(t, "umbra_request_duration_seconds_count", testkit.Labels("route", "m", "backend", "mb", "role", "live"), 9)
	g.WaitMetric(t, "umbra_requests_in_flight", testkit.Labels("route", "m"), 0)
	g.WaitMetric(t, "umbra_requests_in_flight", testkit.Labels("route", "down"), 0)

	text := g.ScrapeText(t)
	for _, s := range testkit.MustParseMetrics(t, text) {
		if s.Name == "umbra_requests_total" {
			switch s.Labels["method"] {
			case "PURGE", "BREW":
				t.Errorf("raw method label leaked: %v", s.Labels)
			}
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install -y prometheus); skipping the exposition lint")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}
