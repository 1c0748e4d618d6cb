package integration

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

// TestRoundRobin: sequential requests cycle over three endpoints.
func TestRoundRobin(t *testing.T) {
	t.Parallel()
	a, b, c := testkit.NewUpstream(t, "a", nil), testkit.NewUpstream(t, "b", nil), testkit.NewUpstream(t, "c", nil)
	g := startGW(t, base+fmt.Sprintf(`
backends:
  rr: {endpoints: [%q, %q, %q]}
routes:
  - {name: rr, backend: rr}
`, a.URL, b.URL, c.URL))
	cl := newClient(t)
	var seq []string
	for range 9 {
		seq = append(seq, echoOf(t, do(t, cl, "GET", g.URL+"/", nil)).Backend)
	}
	first := seq[:3]
	if s := slices.Sorted(slices.Values(first)); !slices.Equal(s, []string{"a", "b", "c"}) {
		t.Fatalf("first three requests went to %v, want each endpoint once", first)
	}
	for i, name := range seq {
		if name != first[i%3] {
			t.Fatalf("sequence %v is not a round-robin cycle", seq)
		}
	}
	for _, u := range []*testkit.Upstream{a, b, c} {
		if n := u.Hits.Load(); n != 3 {
			t.Errorf("endpoint %s got %d requests, want 3", u.Name, n)
		}
	}
}

// TestPassiveHealthEjection: one of three endpoints refuses connections.
// It is ejected after max_fails failures; from then on no request fails
// and the dead endpoint gets no attempt. Without retries the failures
// before ejection reach the client (exactly max_fails of them); with the
// default retry none does.
func TestPassiveHealthEjection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		settings     string
		wantFailures int
	}{
		{"retry disabled", "health: {max_fails: 2, eject_for: 1m}, retry: {disable: true}", 2},
		{"default retry", "health: {eject_for: 1m}", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := testkit.NewUpstream(t, "a", nil), testkit.NewUpstream(t, "b", nil)
			dead := "http://" + testkit.DeadAddr(t)
			g := startGW(t, base+fmt.Sprintf(`
backends:
  pool: {endpoints: [%q, %q, %q], %s}
routes:
  - {name: pool, backend: pool}
`, a.URL, dead, b.URL, tc.settings))
			c := newClient(t)

			failures, sent := 0, 0
			for ; sent < 30; sent++ {
				r := do(t, c, "GET", g.URL+"/", nil)
				if r.Status != http.StatusOK {
					wantJSONError(t, r, http.StatusBadGateway, "upstream_connect_failed")
					failures++
				}
				if !endpointOf(t, routes(t, g)["pool"], dead).Healthy {
					break
				}
			}
			st := endpointOf(t, routes(t, g)["pool"], dead)
			if st.Healthy {
				t.Fatalf("dead endpoint not ejected after %d requests: %+v", sent, st)
			}
			if failures != tc.wantFailures {
				t.Errorf("%d requests failed before ejection, want %d", failures, tc.wantFailures)
			}
			aBefore, bBefore := a.Hits.Load(), b.Hits.Load()
			for i := range 30 {
				if r := do(t, c, "GET", g.URL+"/", nil); r.Status != http.StatusOK {
					t.Fatalf("request %d after ejection: %d %s", i, r.Status, r.Body)
				}
			}
			after := endpointOf(t, routes(t, g)["pool"], dead)
			if after.Requests != st.Requests {
				t.Errorf("ejected endpoint got %d attempts after ejection", after.Requests-st.Requests)
			}
			if got := a.Hits.Load() - aBefore + b.Hits.Load() - bBefore; got != 30 {
				t.Errorf("live endpoints got %d of 30 requests", got)
			}
		})
	}
}

// TestEjectedShareSpreadEvenly: once an endpoint is ejected, round robin
// spreads its share over the remaining endpoints (as Envoy and nginx do).
// Walking on from the ejected endpoint to the next one in the ring instead
// hands its whole share to that one successor: with [a, dead, b], b gets
// 2/3 of the traffic and a 1/3; with several consecutive ejected endpoints
// one survivor takes all their shares.
func TestEjectedShareSpreadEvenly(t *testing.T) {
	t.Parallel()
	a, b := testkit.NewUpstream(t, "a", nil), testkit.NewUpstream(t, "b", nil)
	dead := "http://" + testkit.DeadAddr(t)
	g := startGW(t, base+fmt.Sprintf(`
backends:
  pool: {endpoints: [%q, %q, %q], health: {max_fails: 1, eject_for: 1m}}
routes:
  - {name: pool, backend: pool}
`, a.URL, dead, b.URL))
	c := newClient(t)
	for i := 0; endpointOf(t, routes(t, g)["pool"], dead).Healthy; i++ {
		if i == 10 {
			t.Fatal("dead endpoint not ejected")
		}
		do(t, c, "GET", g.URL+"/", nil)
	}
	aBefore, bBefore := a.Hits.Load(), b.Hits.Load()
	for range 30 {
		if r := do(t, c, "GET", g.URL+"/", nil); r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	da, db := a.Hits.Load()-aBefore, b.Hits.Load()-bBefore
	if da < 14 || db < 14 {
		t.Errorf("after ejection the two live endpoints got a=%d b=%d of 30 sequential requests, want 15 each: "+
			"round robin gives the ejected endpoint's turn to its successor in the ring (internal/backend/balance.go pickRoundRobin)", da, db)
	}
}

// TestRetryOnConnectionRefused: a GET whose connection is refused is
// retried on another endpoint and succeeds.
func TestRetryOnConnectionRefused(t *testing.T) {
	t.Parallel()
	live := testkit.NewUpstream(t, "live", nil)
	dead := "http://" + testkit.DeadAddr(t)
	g := startGW(t, base+fmt.Sprintf(`
backends:
  pair: {endpoints: [%q, %q], health: {max_fails: 100}}
routes:
  - {name: pair, backend: pair}
`, dead, live.URL))
	c := newClient(t)
	for i := range 4 {
		r := do(t, c, "GET", g.URL+"/idempotent", nil)
		if e := echoOf(t, r); e.Backend != "live" {
			t.Fatalf("request %d served by %s", i, e.Backend)
		}
	}
	if st := endpointOf(t, routes(t, g)["pair"], dead); st.Requests == 0 {
		t.Fatalf("the dead endpoint was never tried, so nothing was retried: %+v", st)
	}
	if n := live.Hits.Load(); n != 4 {
		t.Errorf("live endpoint got %d requests, want 4", n)
	}
}

// TestNoRetryForPOSTWithBody: a POST with a body whose connection is
// refused is not retried: the client gets a 502 and the other endpoint
// never sees that request.
func TestNoRetryForPOSTWithBody(t *testing.T) {
	t.Parallel()
	live := testkit.NewUpstream(t, "live", nil)
	dead := "http://" + testkit.DeadAddr(t)
	g := startGW(t, base+fmt.Sprintf(`
backends:
  pair: {endpoints: [%q, %q], health: {max_fails: 100}}
routes:
  - {name: pair, backend: pair}
`, dead, live.URL))
	c := newClient(t)
	statuses := map[int]int{}
	for range 4 {
		r := do(t, c, "POST", g.URL+"/orders", strings.NewReader(`{"item":1}`), "Content-Type", "application/json")
		statuses[r.Status]++
		if r.Status == http.StatusBadGateway {
			wantJSONError(t, r, http.StatusBadGateway, "upstream_connect_failed")
		} else if e := echoOf(t, r); e.Body != `{"item":1}` {
			t.Errorf("live endpoint got body %q", e.Body)
		}
	}
	if statuses[200] != 2 || statuses[502] != 2 {
		t.Errorf("statuses %v, want two 200 (live endpoint) and two 502 (dead endpoint, not retried)", statuses)
	}
	if n := live.Hits.Load(); n != 2 {
		t.Errorf("live endpoint got %d POSTs, want 2 (a POST with a body must not be retried there)", n)
	}
	g.WaitMetric(t, "umbra_upstream_errors_total", testkit.Labels("route", "pair", "kind", "connect"), 2)
}
