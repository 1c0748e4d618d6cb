package shadowtest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"testing"

	"github.com/umbragw/umbra/internal/bucket"

	"github.com/umbragw/umbra/test/testkit"
)

// sampledBy predicts the documented decision: unsalted FNV-1a + fmix64
// bucket of the key, mod 1e6, below percent * 1e4.
func sampledBy(key string, percent float64) bool {
	return float64(bucket.Of("", key)) < percent*(bucket.Count/100)
}

// within4Sigma checks a binomial count.
func within4Sigma(t *testing.T, what string, got, n int, p float64) {
	t.Helper()
	mean := float64(n) * p
	sigma := math.Sqrt(float64(n) * p * (1 - p))
	t.Logf("%s: %d of %d (expected %.1f ± %.1f)", what, got, n, mean, 4*sigma)
	if math.Abs(float64(got)-mean) > 4*sigma {
		t.Errorf("%s: %d of %d sampled, want %.1f ± %.1f (4σ)", what, got, n, mean, 4*sigma)
	}
}

// keysAt returns the values of header name in the requests u received,
// with their counts.
func keysAt(u *testkit.Upstream, name string) map[string]int {
	out := map[string]int{}
	for _, s := range u.Seen() {
		out[s.Header.Get(name)]++
	}
	return out
}

func subset(a, b map[string]int) (string, bool) {
	for k := range a {
		if _, ok := b[k]; !ok {
			return k, false
		}
	}
	return "", true
}

// TestSampling: shares within 4σ over 10,000 keys at 10%, 5% and 0.5%;
// the decision is the documented bucket of the key (so deterministic);
// 5% ⊆ 10% and 0.5% ⊆ 5%, between targets of one route and between
// routes; random (but still nested) without a key.
func TestSampling(t *testing.T) {
	base := testkit.Goroutines()
	live := newUpstream(t, "live", func(w http.ResponseWriter, r *http.Request) {})
	quiet := func(w http.ResponseWriter, r *http.Request) {}
	p10 := newUpstream(t, "p10", quiet)
	p5 := newUpstream(t, "p5", quiet)
	p05 := newUpstream(t, "p05", quiet)
	p0 := newUpstream(t, "p0", quiet)
	other := newUpstream(t, "other", quiet)
	g := startGW(t, fmt.Sprintf(noAccessLog+`backends:
  live: {endpoints: [%q]}
  p10: {endpoints: [%q]}
  p5: {endpoints: [%q]}
  p05: {endpoints: [%q]}
  p0: {endpoints: [%q]}
  other: {endpoints: [%q]}
routes:
  - name: users
    match: {path_prefix: /u}
    backend: live
    key: "header:X-User-ID"
    shadow:
      - {backend: p10, percent: 10}
      - {backend: p5, percent: "5%%"}
      - {backend: p05, percent: 0.5}
      - {backend: p0, percent: 0}
  - name: second
    match: {path_prefix: /second}
    backend: live
    key: "cookie:uid"
    shadow:
      - {backend: other, percent: 5}
`, live.URL, p10.URL, p5.URL, p05.URL, p0.URL, other.URL))
	c := testkit.NewClient(t, 8, testkit.Wait.Timeout)
	const keys = 10000
	testkit.Parallel(keys, 6, func(i int) {
		r, err := testkit.Send(c, "GET", g.URL+"/u/"+strconv.Itoa(i), nil, "X-User-ID", key(i))
		if err != nil || r.Status != 200 {
			t.Errorf("request %d: %v %d", i, err, r.Status)
		}
	})
	for _, tg := range []string{"p10", "p5", "p05"} {
		g.settled(t, "users", tg)
	}
	m := g.scrape(t)
	sets := map[string]map[string]int{"p10": keysAt(p10, "X-User-ID"), "p5": keysAt(p5, "X-User-ID"), "p05": keysAt(p05, "X-User-ID")}
	percents := map[string]float64{"p10": 10, "p5": 5, "p05": 0.5}
	for tg, set := range sets {
		within4Sigma(t, "share at "+tg, len(set), keys, percents[tg]/100)
		o := m.outcomes("users", tg)
		if o["ok"] != float64(len(set)) || o["not_sampled"] != float64(keys-len(set)) || total(o) != float64(keys) {
			t.Errorf("%s outcomes %v, want ok %d, not_sampled %d", tg, o, len(set), keys-len(set))
		}
		// The decision is the documented bucket of the key: deterministic.
		for i := 0; i < keys; i++ {
			if _, got := set[key(i)]; got != sampledBy(key(i), percents[tg]) {
				t.Fatalf("%s: key %q sampled = %v, want the bucket's decision %v", tg, key(i), got, !got)
			}
		}
	}
	if k, ok := subset(sets["p5"], sets["p10"]); !ok {
		t.Errorf("key %q sampled at 5%% but not at 10%%", k)
	}
	if k, ok := subset(sets["p05"], sets["p5"]); !ok {
		t.Errorf("key %q sampled at 0.5%% but not at 5%%", k)
	}
	if n := p0.Hits.Load(); n != 0 || m.shadow("users", "p0", "not_sampled") != keys {
		t.Errorf("percent 0: %d copies, not_sampled %v", n, m.shadow("users", "p0", "not_sampled"))
	}

	// Determinism over repeated requests: 50 keys, 4 times each.
	p10.Reset()
	testkit.Parallel(200, 4, func(i int) {
		testkit.Do(t, c, "GET", g.URL+"/u/again", nil, "X-User-ID", key(i%50))
	})
	g.settled(t, "users", "p10")
	for k, n := range keysAt(p10, "X-User-ID") {
		if n != 4 {
			t.Errorf("key %q copied %d times out of 4", k, n)
		}
	}

	// Unsalted: the same caller is sampled alike on another route (another
	// key kind, 5%), and that route's 5% is inside this one's 10%.
	const callers = 1000
	testkit.Parallel(callers, 4, func(i int) {
		testkit.Do(t, c, "GET", g.URL+"/second", nil, "Cookie", "uid="+key(i))
	})
	g.settled(t, "second", "other")
	onSecond := map[string]int{}
	for _, s := range other.Seen() {
		ck, _ := (&http.Request{Header: s.Header}).Cookie("uid")
		onSecond[ck.Value]++
	}
	first5 := map[string]int{}
	for k := range sets["p5"] {
		if n, _ := strconv.Atoi(k[len("user-"):]); n < callers {
			first5[k] = 1
		}
	}
	if len(onSecond) != len(first5) {
		t.Errorf("route 2 (cookie, 5%%) sampled %d of the first %d callers; route 1 (header, 5%%) sampled %d", len(onSecond), callers, len(first5))
	}
	if k, ok := subset(onSecond, sets["p10"]); !ok {
		t.Errorf("caller %q sampled at 5%% on route 2 but not at 10%% on route 1", k)
	}
	if k, ok := subset(onSecond, first5); !ok {
		t.Errorf("caller %q sampled on route 2 but not at the same share on route 1", k)
	}

	// Without a key: random, at the share, and still nested per request.
	for _, u := range []*testkit.Upstream{p10, p5, p05} {
		u.Reset()
	}
	const anon = 2000
	testkit.Parallel(anon, 6, func(i int) {
		testkit.Do(t, c, "GET", g.URL+"/u/anon", nil, "X-Seq", strconv.Itoa(i))
	})
	for _, tg := range []string{"p10", "p5", "p05"} {
		g.settled(t, "users", tg)
	}
	a10, a5 := keysAt(p10, "X-Seq"), keysAt(p5, "X-Seq")
	within4Sigma(t, "keyless share at 10%", len(a10), anon, 0.10)
	within4Sigma(t, "keyless share at 5%", len(a5), anon, 0.05)
	if k, ok := subset(a5, a10); !ok {
		t.Errorf("keyless request %s copied at 5%% but not at 10%%", k)
	}

	// Close the client's idle connections first: a pooled connection
	// that never carried a request holds Shutdown for 5 s.
	c.CloseIdleConnections()
	if err := g.Stop(); err != nil {
		t.Error(err)
	}
	for _, u := range []*testkit.Upstream{live, p10, p5, p05, p0, other} {
		u.Close()
	}
	testkit.WaitGoroutines(t, base, "after shutdown")
}

// TestSamplingKeyKinds: header, cookie, query and client_ip keys each
// decide by the key's bucket, the same on every request.
func TestSamplingKeyKinds(t *testing.T) {
	live := newUpstream(t, "live", func(w http.ResponseWriter, r *http.Request) {})
	quiet := func(w http.ResponseWriter, r *http.Request) {}
	kinds := []struct{ name, key string }{
		{"header", "header:X-Caller"}, {"cookie", "cookie:session"}, {"query", "query:user"},
	}
	ups := map[string]*testkit.Upstream{}
	yaml := fmt.Sprintf(noAccessLog+"backends:\n  live: {endpoints: [%q]}\n", live.URL)
	for _, k := range kinds {
		ups[k.name] = newUpstream(t, k.name, quiet)
		yaml += fmt.Sprintf("  %s: {endpoints: [%q]}\n", k.name, ups[k.name].URL)
	}
	// client_ip: every request comes from 127.0.0.1, one bucket b. A target
	// at b+0.5 (in units of 1e-4 %) takes it, one at b-0.5 does not.
	b := float64(bucket.Of("", "127.0.0.1"))
	ipIn, ipOut := newUpstream(t, "ip-in", quiet), newUpstream(t, "ip-out", quiet)
	yaml += fmt.Sprintf("  ipin: {endpoints: [%q]}\n  ipout: {endpoints: [%q]}\nroutes:\n", ipIn.URL, ipOut.URL)
	for _, k := range kinds {
		yaml += fmt.Sprintf("  - name: %s\n    match: {path_prefix: /%s}\n    backend: live\n    key: %q\n    shadow:\n      - {backend: %s, percent: 50}\n",
			k.name, k.name, k.key, k.name)
	}
	yaml += fmt.Sprintf("  - name: ip\n    match: {path_prefix: /ip}\n    backend: live\n    key: client_ip\n    shadow:\n      - {backend: ipin, percent: %.5f}\n      - {backend: ipout, percent: %.5f}\n",
		(b+0.5)/1e4, max(0, (b-0.5)/1e4))
	g := startGW(t, yaml)
	c := testkit.NewClient(t, 8, testkit.Wait.Timeout)

	const n = 100
	testkit.Parallel(2*n, 4, func(i int) {
		k := "caller-" + strconv.Itoa(i%n) + "/é"
		testkit.Do(t, c, "GET", g.URL+"/header", nil, "X-Caller", k, "X-Key", k)
		testkit.Do(t, c, "GET", g.URL+"/cookie", nil, "Cookie", "session="+strconv.Itoa(i%n)+"abc", "X-Key", strconv.Itoa(i%n)+"abc")
		testkit.Do(t, c, "GET", g.URL+"/query?a=1&user=u%2B"+strconv.Itoa(i%n)+"&b=2", nil, "X-Key", "u+"+strconv.Itoa(i%n))
		testkit.Do(t, c, "GET", g.URL+"/ip", nil)
	})
	for _, k := range kinds {
		g.settled(t, k.name, k.name)
		got := keysAt(ups[k.name], "X-Key")
		want := 0
		for i := 0; i < n; i++ {
			var key string
			switch k.name {
			case "header":
				key = "caller-" + strconv.Itoa(i) + "/é"
			case "cookie":
				key = strconv.Itoa(i) + "abc"
			case "query":
				key = "u+" + strconv.Itoa(i)
			}
			in := sampledBy(key, 50)
			if in {
				want++
			}
			if cnt := got[key]; (in && cnt != 2) || (!in && cnt != 0) {
				t.Errorf("%s key %q: %d copies of 2 requests, want %v", k.name, key, cnt, map[bool]int{true: 2, false: 0}[in])
			}
		}
		t.Logf("%s key: %d of %d callers sampled at 50%%", k.name, len(got), n)
		if len(got) != want {
			t.Errorf("%s: %d callers sampled, want %d", k.name, len(got), want)
		}
	}
	g.settled(t, "ip", "ipin")
	if in, out := ipIn.Hits.Load(), ipOut.Hits.Load(); in != 2*n || out != 0 {
		t.Errorf("client_ip (bucket %v): target just above got %d of %d, target just below got %d; want all and none", b, in, 2*n, out)
	}
	m := g.scrape(t)
	if v := m.shadow("ip", "ipout", "not_sampled"); v != 2*n {
		t.Errorf("client_ip below the bucket: not_sampled = %v, want %d", v, 2*n)
	}
}
