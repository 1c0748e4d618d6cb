package comparetest

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/test/testkit"
)

// bigItems is a JSON document of n items, heavy enough to keep a
// comparison worker busy; delta changes every value.
func bigItems(id string, n, delta int) string {
	var b strings.Builder
	b.WriteString(`{"id":"` + id + `","items":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"n":%d,"v":%d,"name":"item-%d"}`, i, i+delta, i)
	}
	b.WriteString("]}")
	return b.String()
}

// 12. Live traffic is unaffected by comparison: every client gets v1's
// body byte for byte, no live answer waits for the candidate, and a full
// comparison queue drops and counts (skipped_queue_full) instead of
// waiting. Not parallel: it sends bursts.
//
// The candidate holds every answer until all the live answers of its
// round have arrived, so a live answer that waited for it would never
// come (the client gives up after testkit.Wait.Timeout): a causal check
// that no machine load can fake, where a fixed candidate delay measured
// against live latency failed when a loaded machine made live answers
// slower than the delay. Released at once, a round's candidate answers
// then flood the comparison queue of 1.
func TestLiveUnaffectedByFullCompareQueue(t *testing.T) {
	const (
		burst     = 48
		maxRounds = 5
	)
	// Precomputed: the upstreams and the client spend no CPU building
	// bodies, so live latency measures the gateway.
	v1Body, v2Body := []byte(bigItems("x", 2000, 0)), []byte(bigItems("x", 2000, 1))
	live := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(v1Body)
	}
	release := make([]chan struct{}, maxRounds) // closed when the round's live answers are all in
	for i := range release {
		release[i] = make(chan struct{})
	}
	released := 0
	t.Cleanup(func() { // before the upstreams close: no handler may still hold
		for ; released < maxRounds; released++ {
			close(release[released])
		}
	})
	cand := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		n, _ := strconv.Atoi(id(r))
		select {
		case <-release[n/burst]:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(v2Body)
	}
	tr := newTrio(t, live, cand)
	g := start(t, "", "comparison: {workers: 1, queue_size: 1}\n"+tr.expand(`routes:
  - name: items
    match: {path: "/v1/items/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100, max_in_flight: 64, queue_size: 256}]
    compare: {}
`))
	const ep = "GET /v1/items/{id}"

	sent := 0
	var slowest time.Duration
	for round := 0; round < maxRounds; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, burst)
		lat := make(chan time.Duration, burst)
		for i := 0; i < burst; i++ {
			id := strconv.Itoa(round*burst + i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := g.send("GET", "/v1/items/"+id, nil)
				switch {
				case err != nil:
					errs <- fmt.Errorf("GET %s: %v: the live answer waited for the candidate, which answers only once every live answer of the round is in", id, err)
				case r.Status != 200 || !bytes.Equal(r.Body, v1Body):
					errs <- fmt.Errorf("GET %s: %d, %d bytes: not v1's answer", id, r.Status, len(r.Body))
				default:
					lat <- r.Latency
				}
			}()
		}
		wg.Wait()
		close(errs)
		close(lat)
		for err := range errs {
			t.Fatal(err)
		}
		for l := range lat {
			slowest = max(slowest, l)
		}
		close(release[round])
		released++
		sent += burst
		// Every exchange ends up counted exactly once: compared, or
		// skipped because the queue was full.
		testkit.Wait.UntilTrue(t, "every exchange of the round counted", func() bool {
			return g.compareTotal(t, "items", ep, "") == float64(sent)
		})
		if g.compareTotal(t, "items", ep, diffs.ResultQueueFull) > 0 {
			break
		}
	}
	full := g.compareTotal(t, "items", ep, diffs.ResultQueueFull)
	if full == 0 {
		t.Fatalf("%d exchanges in bursts of %d never filled a queue of 1 with 1 worker", sent, burst)
	}
	compared := g.compareTotal(t, "items", ep, diffs.ResultDifferent)
	if compared+full != float64(sent) || compared == 0 {
		t.Errorf("of %d exchanges %v compared and %v skipped_queue_full; want all accounted for and some compared", sent, compared, full)
	}
	// The report accounts for the drops too, so `umbra diff` shows them.
	e := g.wait(t, "items", ep, int64(compared+full))
	if e.Compared != int64(compared) || e.Differing != e.Compared || e.Skipped[diffs.ResultQueueFull] != int64(full) {
		t.Errorf("report: compared %d differing %d skipped %v, want %v compared and %v skipped_queue_full", e.Compared, e.Differing, e.Skipped, compared, full)
	}
	t.Logf("%d live requests, slowest %v; %v compared, %v skipped_queue_full", sent, slowest, compared, full)
}
