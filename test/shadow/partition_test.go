package shadowtest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

// TestOutcomesPartitionRequests: umbra_shadow_requests_total counts each
// request of a route once per target, under its final outcome, so a
// target's outcomes add up to the route's requests whatever happened to
// the copies: sampled out, skipped on the live path, dropped on a full
// queue, abandoned with an aborted live answer, answered, failed.
func TestOutcomesPartitionRequests(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	blocked := newUpstream(t, "blocked", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	broken := newUpstream(t, "broken", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "v2 is broken", http.StatusInternalServerError)
	})
	healthy := newUpstream(t, "healthy", nil)
	// The live version answers /abort with a body shorter than it
	// announced: the gateway aborts the client's answer half way.
	live := newUpstream(t, "live", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.HasPrefix(r.URL.Path, "/abort") {
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "short")
			return
		}
		_, _ = io.WriteString(w, "answer from live\n")
	})
	g := startGW(t, fmt.Sprintf(`backends:
  live: {endpoints: [%q]}
  blocked: {endpoints: [%q]}
  broken: {endpoints: [%q]}
  healthy: {endpoints: [%q]}
  dead: {endpoints: [%q]}
routes:
  - name: mix
    backend: live
    key: "header:X-User-ID"
    shadow:
      - {backend: blocked, percent: 100, max_in_flight: 1, queue_size: 2, timeout: 60s}
      - {backend: broken, percent: 100, unsafe: allow, breaker: {failures: 3, open_for: 1m}}
      - {backend: healthy, percent: 50, max_body: 1KiB, unsafe: allow, match: {path_prefix: /api}}
      - {backend: dead, percent: 100, timeout: 1s}
`, live.URL, blocked.URL, broken.URL, healthy.URL, "http://"+testkit.DeadAddr(t)))
	c := testkit.NewClient(t, 8, testkit.Wait.Timeout)
	type req struct {
		method, path string
		body         string
	}
	// Aborted live answers first, one at a time, while every queue is
	// empty: their copies are taken, then abandoned.
	for i := 0; i < 3; i++ {
		if _, err := testkit.Send(c, "GET", g.URL+fmt.Sprint("/abort/", i), nil, "X-User-ID", key(i)); err == nil {
			t.Errorf("an aborted answer reached the client whole")
		}
	}
	var reqs []req
	for i := 0; i < 40; i++ {
		reqs = append(reqs, req{"GET", fmt.Sprint("/api/items/", i), ""})
	}
	for i := 0; i < 6; i++ {
		reqs = append(reqs, req{"GET", fmt.Sprint("/other/", i), ""}, req{"POST", "/api/orders", `{"n":1}`},
			req{"POST", "/api/big", strings.Repeat("x", 4096)})
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, rq := range reqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var body io.Reader
			if rq.body != "" {
				body = strings.NewReader(rq.body)
			}
			r, err := testkit.Send(c, rq.method, g.URL+rq.path, body, "X-User-ID", key(i))
			if err != nil || r.Status != 200 {
				t.Errorf("%s %s: %v %d", rq.method, rq.path, err, r.Status)
			}
		}()
	}
	wg.Wait()
	unblock()
	n := float64(len(reqs) + 3)
	want := map[string][]string{
		"blocked": {"ok", "dropped_queue_full", "skipped_live_aborted", "skipped_unsafe_method"},
		"broken":  {"status_5xx", "skipped_circuit_open"},
		"healthy": {"ok", "not_sampled", "skipped_no_match", "skipped_body_too_large"},
		"dead":    {"error_connect"},
	}
	for tg, outcomes := range want {
		m := g.settled(t, "mix", tg) // waits for the outcomes to add up to the route's requests
		o := m.outcomes("mix", tg)
		t.Logf("%s: %v", tg, o)
		if total(o) != n || m.liveRequests("mix") != n {
			t.Errorf("%s: outcomes %v add up to %v, want the %v requests (live requests %v)", tg, o, total(o), n, m.liveRequests("mix"))
		}
		for _, want := range outcomes {
			if o[want] == 0 {
				t.Errorf("%s: outcomes %v, want some %s", tg, o, want)
			}
		}
	}
}
