package backend

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/umbragw/umbra/internal/config"
)

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	a, b2, c := echoServer(t, "a"), echoServer(t, "b"), echoServer(t, "c")
	b := newBackend(t, config.Backend{}, a.URL, b2.URL, c.URL)
	counts := map[string]int{}
	for range 300 {
		name, err := do(t, b, http.MethodGet, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[name]++
	}
	for _, name := range []string{"a", "b", "c"} {
		if counts[name] != 100 {
			t.Errorf("round robin counts = %v, want 100 each", counts)
		}
	}
}

func TestRoundRobinConcurrentSpread(t *testing.T) {
	a, b2 := echoServer(t, "a"), echoServer(t, "b")
	b := newBackend(t, config.Backend{}, a.URL, b2.URL)
	var na, nb atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				name, err := do(t, b, http.MethodGet, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if name == "a" {
					na.Add(1)
				} else {
					nb.Add(1)
				}
			}
		})
	}
	wg.Wait()
	// Picks are exactly alternating even under concurrency.
	if na.Load() != 200 || nb.Load() != 200 {
		t.Errorf("a=%d b=%d, want 200 each", na.Load(), nb.Load())
	}
}

// TestLeastRequestPrefersIdle holds responses open on a slow endpoint and
// checks that new requests go to the idle one. The slow endpoint sends
// its headers at once and then stalls the body, so the load it carries is
// visible only through the body tracking.
func TestLeastRequestPrefersIdle(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 100)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Endpoint", "slow")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		arrived <- struct{}{}
		<-release
	}))
	t.Cleanup(slow.Close)
	fast := echoServer(t, "fast")
	b := newBackend(t, config.Backend{Balance: BalanceLeastRequest}, slow.URL, fast.URL)

	var held []*http.Response
	fastCount := 0
	for range 50 {
		resp, err := b.RoundTrip(outgoing(t, t.Context(), http.MethodGet, nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("X-Endpoint") == "slow" {
			<-arrived
			held = append(held, resp) // keep the body open: still load
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fastCount++
	}
	// Only the very first pick can tie (both idle); after that the slow
	// endpoint always carries one more request than the fast one.
	if len(held) > 1 {
		t.Errorf("slow endpoint got %d requests while busy, fast got %d", len(held), fastCount)
	}
	if got := statusOf(t, b, slow.URL).InFlight; got != int64(len(held)) {
		t.Errorf("slow in-flight = %d, want %d (open bodies)", got, len(held))
	}
	close(release)
	for _, resp := range held {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		resp.Body.Close() // a second Close must not decrement again
	}
	for _, st := range b.Status() {
		if st.InFlight != 0 {
			t.Errorf("%s in-flight = %d after all bodies closed", st.URL, st.InFlight)
		}
	}
}

func TestLeastRequestSpreadsWhenIdle(t *testing.T) {
	a, b2 := echoServer(t, "a"), echoServer(t, "b")
	b := newBackend(t, config.Backend{Balance: BalanceLeastRequest}, a.URL, b2.URL)
	counts := map[string]int{}
	for range 400 {
		name, err := do(t, b, http.MethodGet, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[name]++
	}
	// Ties break at random: both endpoints must see a fair share.
	if counts["a"] < 120 || counts["b"] < 120 {
		t.Errorf("idle least_request counts = %v, want both well used", counts)
	}
}

func TestLeastRequestInFlightEndsOnError(t *testing.T) {
	dead := closedPort(t)
	b := newBackend(t, config.Backend{Balance: BalanceLeastRequest, Retry: config.Retry{Disable: true}}, dead)
	if _, err := do(t, b, http.MethodGet, nil); err == nil {
		t.Fatal("want an error from a closed port")
	}
	if st := statusOf(t, b, dead); st.InFlight != 0 || st.Requests != 1 {
		t.Errorf("status = %+v, want 0 in flight, 1 request", st)
	}
}

func TestHostPolicies(t *testing.T) {
	srv := echoServer(t, "a")
	for _, tc := range []struct{ policy, want string }{
		{"", "client.example"},
		{HostKeep, "client.example"},
		{HostEndpoint, srv.Listener.Addr().String()},
		{"api.internal", "api.internal"},
	} {
		t.Run("policy="+tc.policy, func(t *testing.T) {
			b := newBackend(t, config.Backend{Host: tc.policy}, srv.URL)
			resp, err := b.RoundTrip(outgoing(t, t.Context(), http.MethodGet, nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Host"); got != tc.want {
				t.Errorf("upstream Host = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRequestURLPointsAtEndpoint(t *testing.T) {
	uris := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris <- r.RequestURI
	}))
	t.Cleanup(srv.Close)
	b := newBackend(t, config.Backend{}, srv.URL)
	req := outgoing(t, t.Context(), http.MethodGet, nil)
	resp, err := b.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.URL.Host != srv.Listener.Addr().String() || req.URL.Scheme != "http" {
		t.Errorf("req.URL = %s, want it pointed at %s", req.URL, srv.URL)
	}
	if got := <-uris; got != "/path?q=1" {
		t.Errorf("upstream saw %q, want path and query kept", got)
	}
}

func TestPickRoundRobinDoesNotAllocate(t *testing.T) {
	b := newBackend(t, config.Backend{}, "http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3")
	if n := testing.AllocsPerRun(1000, func() { b.pick(nil) }); n != 0 {
		t.Errorf("round-robin pick allocates %.1f times", n)
	}
	lr := newBackend(t, config.Backend{Balance: BalanceLeastRequest}, "http://127.0.0.1:1", "http://127.0.0.1:2")
	if n := testing.AllocsPerRun(1000, func() { lr.pick(nil) }); n != 0 {
		t.Errorf("least-request pick allocates %.1f times", n)
	}
}

func TestTwoDistinct(t *testing.T) {
	for _, n := range []int{2, 3, 7} {
		seen := make([]int, n)
		for range 10000 {
			i, j := twoDistinct(n)
			if i == j || i < 0 || j < 0 || i >= n || j >= n {
				t.Fatalf("twoDistinct(%d) = %d, %d", n, i, j)
			}
			seen[i]++
			seen[j]++
		}
		for k, c := range seen {
			if want := 20000 / n; c < want*8/10 || c > want*12/10 {
				t.Errorf("n=%d: index %d chosen %d times, want about %d", n, k, c, want)
			}
		}
	}
}
