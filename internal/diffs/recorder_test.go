package diffs

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/umbragw/umbra/internal/compare"
	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/shadow"
	"github.com/umbragw/umbra/internal/store"
)

// ---- fixtures: a fake exchange stream, no network ----

func testCfg() config.Comparison {
	return config.Comparison{Workers: 1, QueueSize: 64, SamplesPerField: 5, MaxEndpoints: 200, MaxFields: 200,
		FlushInterval: config.Duration(time.Hour)}
}

// rec is a Recorder under test; Close is idempotent and runs at cleanup.
type rec struct {
	*Recorder
	once sync.Once
	t    *testing.T
}

func (r *rec) close() {
	r.once.Do(func() {
		if err := r.Close(); err != nil {
			r.t.Errorf("Close: %v", err)
		}
	})
}

// newRec starts a recorder comparing the given routes with default options.
func newRec(t *testing.T, cfg config.Comparison, routes ...string) *rec {
	t.Helper()
	r := &rec{Recorder: New(cfg, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil))), t: t}
	specs := map[string]*RouteSpec{}
	for _, name := range routes {
		specs[name] = &RouteSpec{Comparator: compare.MustNew(compare.Options{}), Thresholds: compare.DefaultThresholds, Target: "v2"}
	}
	r.Configure(specs)
	t.Cleanup(r.close)
	return r
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func resp(body string) *shadow.Response {
	return &shadow.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body),
		Latency: 2 * time.Millisecond}
}

// exch is an exchange on route/endpoint with JSON answers; sec may be nil.
func exch(route, endpoint string, live, cand, sec *shadow.Response) *shadow.Exchange {
	return &shadow.Exchange{Route: route, Endpoint: endpoint, Method: "GET", URI: "/items/1?x=1",
		Header: http.Header{"Accept": {"application/json"}}, At: time.Now(), Live: live, Candidate: cand, Secondary: sec}
}

// priced is live {"price":10} vs a candidate at price.
func priced(route, endpoint, price string) *shadow.Exchange {
	return exch(route, endpoint, resp(`{"price":10}`), resp(`{"price":`+price+`}`), nil)
}

func (r *rec) ep(route, endpoint string) *EndpointStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.endpoints[epKey{route, endpoint}]
}

func (r *rec) metric(route, endpoint, result string) float64 {
	var m dto.Metric
	if err := r.total.WithLabelValues(route, endpoint, result).Write(&m); err != nil {
		r.t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// sampleSizes sums the sizes of every kept sample, which sampleBytes must equal.
func (r *rec) sampleSizes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, e := range r.endpoints {
		for _, f := range e.Fields {
			for _, s := range f.Samples {
				n += int64(s.size())
			}
		}
	}
	return n
}

func (r *rec) checkBudget(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	got := r.sampleBytes
	r.mu.Unlock()
	if want := r.sampleSizes(); got != want {
		t.Errorf("sampleBytes = %d, but the kept samples total %d bytes (the budget leaks)", got, want)
	}
}

// ---- counting ----

func TestProcessCountsEveryOutcome(t *testing.T) {
	r := newRec(t, testCfg(), "r")
	const ep = "GET /items/{id}"
	equal := exch("r", ep, resp(`{"price":10}`), resp(`{"price":10}`), resp(`{"price":10}`))
	changed := exch("r", ep, resp(`{"price":10}`), resp(`{"price":12}`), resp(`{"price":10}`))
	noSec := priced("r", ep, "12")
	secFailed := exch("r", ep, resp(`{"price":10}`), resp(`{"price":12}`), &shadow.Response{Err: "error_timeout"})
	secTooBig := exch("r", ep, resp(`{"price":10}`), resp(`{"price":10}`), &shadow.Response{Status: 200, Truncated: true})
	candErr := exch("r", ep, resp(`{}`), &shadow.Response{Err: "dropped_queue_full"}, nil)
	candNil := exch("r", ep, resp(`{}`), nil, nil)
	liveBig := exch("r", ep, &shadow.Response{Status: 200, Truncated: true}, resp(`{}`), nil)
	candBig := exch("r", ep, resp(`{}`), &shadow.Response{Status: 200, Truncated: true}, nil)
	other := priced("unconfigured", ep, "12")
	for _, ex := range []*shadow.Exchange{equal, changed, noSec, secFailed, secTooBig, candErr, candNil, liveBig, candBig, other} {
		r.process(ex)
	}

	e := r.ep("r", ep)
	if e.Compared != 5 || e.Differing != 3 || e.NoiseCompared != 2 {
		t.Errorf("compared %d differing %d noise_compared %d, want 5 3 2", e.Compared, e.Differing, e.NoiseCompared)
	}
	if want := map[string]int64{ResultCandidateError: 2, ResultTooLarge: 2}; !mapsEqual(e.Skipped, want) {
		t.Errorf("skipped %v, want %v", e.Skipped, want)
	}
	f := e.Fields["$.price"]
	if f == nil || f.Raw != 3 || f.Noise != 0 || f.Kinds[compare.KindValue] != 3 || len(f.Samples) != 3 {
		t.Fatalf("$.price = %+v, want raw 3, noise 0, value:3, 3 samples", f)
	}
	if len(e.LiveMs) != 5 || len(e.CandidateMs) != 5 || e.LiveMs[0] != 2 {
		t.Errorf("latency windows %v %v, want 5 observations of 2ms", e.LiveMs, e.CandidateMs)
	}
	if !e.LastAt.Equal(candBig.At) {
		t.Errorf("last_at %v, want the last exchange's %v", e.LastAt, candBig.At)
	}
	for result, want := range map[string]float64{ResultEqual: 2, ResultDifferent: 3, ResultCandidateError: 2, ResultTooLarge: 2} {
		if got := r.metric("r", ep, result); got != want {
			t.Errorf("umbra_compare_total{result=%s} = %v, want %v", result, got, want)
		}
	}
	if r.ep("unconfigured", ep) != nil || r.metric("unconfigured", ep, ResultDifferent) != 0 {
		t.Errorf("an exchange of a route that no longer compares was recorded")
	}
	r.checkBudget(t)
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A field that differs several times in one exchange (array elements)
// counts once for that exchange, for raw and noise alike.
func TestByFieldCountsAFieldOncePerExchange(t *testing.T) {
	r := newRec(t, testCfg(), "r")
	live := resp(`{"items":[{"id":1},{"id":2},{"id":3}]}`)
	cand := resp(`{"items":[{"id":7},{"id":8},{"id":9}]}`)
	sec := resp(`{"items":[{"id":1},{"id":5},{"id":6}]}`)
	r.process(exch("r", "GET /items", live, cand, sec))
	r.process(exch("r", "GET /items", live, cand, sec))

	e := r.ep("r", "GET /items")
	f := e.Fields["$.items[*].id"]
	if f == nil || f.Raw != 2 || f.Noise != 2 || f.Kinds[compare.KindValue] != 6 || len(f.Samples) != 2 {
		t.Fatalf("$.items[*].id = %+v, want raw 2 and noise 2 for 2 exchanges, value:6, 2 samples", f)
	}
	if n := len(f.Samples[0].Differences); n != 3 {
		t.Errorf("a sample keeps %d differences, want the exchange's 3", n)
	}
	rep := r.Report("r").Routes[0].Endpoints[0]
	if len(rep.Noise) != 1 || rep.Noise[0].RawRate != 1 || rep.Noise[0].NoiseRate != 1 || rep.Noise[0].Regression {
		t.Errorf("report %+v: want $.items[*].id as noise at rates 1 and 1", rep)
	}

	got := byField([]compare.Difference{{Field: "a", Path: "a[0]"}, {Field: "b"}, {Field: "a", Path: "a[1]"}})
	if len(got) != 2 || len(got["a"]) != 2 || got["a"][1].Path != "a[1]" || len(got["b"]) != 1 {
		t.Errorf("byField = %v", got)
	}
}

// ---- caps ----

func TestEndpointCapPerRoute(t *testing.T) {
	cfg := testCfg()
	cfg.MaxEndpoints = 2
	r := newRec(t, cfg, "r", "s")
	for _, ep := range []string{"GET /a", "GET /b", "GET /c", "GET /d", "GET /a"} {
		r.process(priced("r", ep, "12"))
	}
	r.process(priced("s", "GET /e", "12"))

	for ep, want := range map[string]int64{"GET /a": 2, "GET /b": 1, "(other)": 2} {
		if e := r.ep("r", ep); e == nil || e.Compared != want {
			t.Errorf("route r endpoint %q: %+v, want %d compared", ep, e, want)
		}
	}
	for _, ep := range []string{"GET /c", "GET /d"} {
		if r.ep("r", ep) != nil {
			t.Errorf("endpoint %q tracked past max_endpoints", ep)
		}
	}
	if e := r.ep("s", "GET /e"); e == nil || e.Compared != 1 {
		t.Errorf("the cap is per route: route s endpoint GET /e = %+v", e)
	}
	rep := r.Report("r").Routes[0]
	if len(rep.Endpoints) != 3 {
		t.Errorf("report lists %d endpoints, want GET /a, GET /b and (other)", len(rep.Endpoints))
	}
}

// Past max_fields the other fields are counted together; the bucket is a
// field like the others, so it counts an exchange once (its rate is at
// most 1) and keeps one sample per exchange.
func TestFieldCapOtherFields(t *testing.T) {
	cfg := testCfg()
	cfg.MaxFields = 2
	r := newRec(t, cfg, "r")
	live := resp(`{"a":1,"b":1,"c":1,"d":1,"e":1}`)
	cand := resp(`{"a":2,"b":2,"c":2,"d":2,"e":2}`)
	const n = 3
	for i := 0; i < n; i++ {
		a, b := exch("r", "GET /x", live, cand, live), exch("r", "GET /x", live, cand, cand) // b's secondary differs too
		a.URI, b.URI = fmt.Sprintf("/x/%da", i), fmt.Sprintf("/x/%db", i)
		r.process(a)
		r.process(b)
	}
	e := r.ep("r", "GET /x")
	if len(e.Fields) != cfg.MaxFields+1 {
		t.Fatalf("fields %v: want %d named fields and (other fields)", keys(e.Fields), cfg.MaxFields)
	}
	other := e.Fields["(other fields)"]
	if other == nil {
		t.Fatalf("no (other fields) bucket: %v", keys(e.Fields))
	}
	if other.Raw != 2*n || other.Noise != n {
		t.Errorf("(other fields) raw %d noise %d over %d exchanges (%d with a differing secondary), want raw %d noise %d: an exchange counts once per field",
			other.Raw, other.Noise, 2*n, n, 2*n, n)
	}
	if other.Kinds[compare.KindValue] != 3*2*n {
		t.Errorf("(other fields) kinds %v, want value:%d (3 fields in each of %d exchanges)", other.Kinds, 3*2*n, 2*n)
	}
	if len(other.Samples) != cfg.SamplesPerField {
		t.Errorf("(other fields) keeps %d samples, want %d", len(other.Samples), cfg.SamplesPerField)
	}
	var m dto.Metric
	if err := r.overflow.WithLabelValues("r").Write(&m); err != nil || m.GetCounter().GetValue() != 2*n {
		t.Errorf("umbra_compare_fields_overflow_total = %v (%v), want %d: every exchange had fields past the cap", m.GetCounter().GetValue(), err, 2*n)
	}
	uris := map[string]bool{}
	for _, s := range other.Samples {
		if uris[s.URI] {
			t.Errorf("(other fields) keeps exchange %s more than once", s.URI)
		}
		uris[s.URI] = true
	}
	for _, f := range r.Report("r").Routes[0].Endpoints[0].Regressions {
		if f.RawRate > 1 || f.NoiseRate > 1 {
			t.Errorf("field %s has raw rate %v and noise rate %v: a rate is a share of exchanges", f.Field, f.RawRate, f.NoiseRate)
		}
	}
	r.checkBudget(t)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- samples ----

func TestSampleCapAndByteBudget(t *testing.T) {
	cfg := testCfg()
	cfg.SamplesPerField = 2
	r := newRec(t, cfg, "r")
	for i := 0; i < 5; i++ {
		r.process(priced("r", "GET /x", "12"))
	}
	f := r.ep("r", "GET /x").Fields["$.price"]
	if f.Raw != 5 || len(f.Samples) != 2 {
		t.Errorf("raw %d samples %d, want 5 counted and 2 kept", f.Raw, len(f.Samples))
	}
	r.checkBudget(t)

	// A full budget keeps counting but keeps no new sample, on any field.
	r.mu.Lock()
	kept := r.sampleBytes
	r.sampleBytes = MaxSampleBytes
	r.mu.Unlock()
	r.process(exch("r", "GET /x", resp(`{"price":10,"name":"a"}`), resp(`{"price":10,"name":"b"}`), nil))
	g := r.ep("r", "GET /x").Fields["$.name"]
	if g == nil || g.Raw != 1 || len(g.Samples) != 0 {
		t.Errorf("over the byte budget: $.name = %+v, want counted without a sample", g)
	}
	r.mu.Lock()
	r.sampleBytes = kept
	r.mu.Unlock()

	// Reset returns the budget.
	if n, err := r.Reset("r", ""); err != nil || n != 1 {
		t.Fatalf("Reset = %d, %v", n, err)
	}
	r.mu.Lock()
	left := r.sampleBytes
	r.mu.Unlock()
	if left != 0 {
		t.Errorf("after a reset of everything sampleBytes = %d, want 0", left)
	}
}

func TestSampleIsBoundedAndRedacted(t *testing.T) {
	r := newRec(t, testCfg(), "r")
	big := `{"blob":"` + strings.Repeat("x", 10<<10) + `","v":1}`
	cand := `{"blob":"` + strings.Repeat("x", 10<<10) + `","v":2}`
	// Two fields differing 30 times each: more differences than a sample
	// keeps, whatever the engine's own limits per field.
	var many, manyC strings.Builder
	many.WriteString(`{`)
	manyC.WriteString(`{`)
	for _, name := range []string{"m", "n"} {
		fmt.Fprintf(&many, `"%s":[`, name)
		fmt.Fprintf(&manyC, `"%s":[`, name)
		for i := 0; i < 30; i++ {
			if i > 0 {
				many.WriteString(",")
				manyC.WriteString(",")
			}
			fmt.Fprintf(&many, "%d", i)
			fmt.Fprintf(&manyC, "%d", i+100)
		}
		many.WriteString("],")
		manyC.WriteString("],")
	}
	many.WriteString(`"z":0}`)
	manyC.WriteString(`"z":0}`)

	ex := exch("r", "POST /x", resp(big), resp(cand), resp(big))
	ex.Method = "POST"
	ex.Body = []byte(strings.Repeat("b", 5<<10))
	ex.Header = http.Header{"Authorization": {"Bearer secret"}, "X-Visible": {"yes"}}
	ex.Live.Header.Set("Set-Cookie", "sid=secret")
	r.process(ex)
	r.process(exch("r", "GET /many", resp(many.String()), resp(manyC.String()), nil))

	s, ok := r.Samples("r", "POST /x", "$.v")
	if !ok || len(s) != 1 {
		t.Fatalf("samples %v %v", s, ok)
	}
	if len(s[0].Live.Body) != sampleBodyLimit+len("…[truncated]") || !strings.HasSuffix(s[0].Live.Body, "…[truncated]") {
		t.Errorf("sample live body of %d bytes, want %d and a truncation mark", len(s[0].Live.Body), sampleBodyLimit)
	}
	if len(s[0].Body) != sampleRequestLimit+len("…[truncated]") {
		t.Errorf("sample request body of %d bytes, want %d and a truncation mark", len(s[0].Body), sampleRequestLimit)
	}
	if s[0].Header.Get("Authorization") != "[redacted]" || s[0].Header.Get("X-Visible") != "yes" ||
		s[0].Live.Header.Get("Set-Cookie") != "[redacted]" {
		t.Errorf("sample headers %v / %v: want credentials redacted and the rest kept", s[0].Header, s[0].Live.Header)
	}
	if ex.Header.Get("Authorization") != "Bearer secret" {
		t.Errorf("redaction changed the exchange's own headers")
	}
	if s[0].Secondary == nil || s[0].Candidate == nil {
		t.Errorf("sample lacks the candidate or secondary answer")
	}
	m, _ := r.Samples("r", "GET /many", "$.n[*]")
	if len(m) != 1 || len(m[0].Differences) != maxSampleDiffs {
		t.Errorf("sample of an exchange with over %d differences keeps %d, want %d", maxSampleDiffs, len(m[0].Differences), maxSampleDiffs)
	}
	if _, ok := r.Samples("r", "GET /many", "$.nope"); ok {
		t.Errorf("samples of an unknown field found")
	}
	r.checkBudget(t)
}

func TestRedact(t *testing.T) {
	h := http.Header{
		"Authorization": {"Bearer a"}, "Proxy-Authorization": {"Basic b"}, "Cookie": {"c=1"}, "Set-Cookie": {"d=2", "e=3"},
		"X-Auth-Token": {"t"}, "X-Client-Secret": {"s"}, "X-Api-Key": {"k"}, "Apikey": {"k2"}, "X-Password": {"p"},
		"Content-Type": {"application/json"}, "Accept": {"*/*"}, "X-Request-Id": {"id"},
	}
	orig := h.Clone()
	got := redact(h)
	for name := range h {
		want := orig[name]
		if sensitiveHeader(name) {
			want = []string{"[redacted]"}
		}
		if !slices.Equal(got[name], want) {
			t.Errorf("redact %s = %q, want %q", name, got[name], want)
		}
	}
	for _, name := range []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Auth-Token",
		"X-Client-Secret", "X-Api-Key", "Apikey", "X-Password", "authorization"} {
		if !sensitiveHeader(name) {
			t.Errorf("%s is not treated as sensitive", name)
		}
	}
	for _, name := range []string{"Content-Type", "Accept", "X-Request-Id"} {
		if sensitiveHeader(name) {
			t.Errorf("%s is treated as sensitive", name)
		}
	}
	if h.Get("Authorization") != "Bearer a" {
		t.Errorf("redact modified its input")
	}
	if len(redact(nil)) != 0 {
		t.Errorf("redact(nil) not empty")
	}
}

func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.5, 7},
		{[]float64{7}, 0.99, 7},
		{[]float64{4, 1, 3, 2}, 0.5, 2.5},
		{[]float64{4, 1, 3, 2}, 0, 1},
		{[]float64{4, 1, 3, 2}, 1, 4},
		{[]float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.99, 99.1},
	} {
		in := slices.Clone(c.xs)
		if got := quantile(c.xs, c.q); abs(got-c.want) > 1e-9 {
			t.Errorf("quantile(%v, %v) = %v, want %v", in, c.q, got, c.want)
		}
		if !slices.Equal(in, c.xs) {
			t.Errorf("quantile sorted its input %v", in)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestLatencyWindowIsARing(t *testing.T) {
	e := newEndpoint("r", "GET /x")
	for i := 0; i < latencyWindow+10; i++ {
		e.observeLatency(time.Duration(i)*time.Millisecond, time.Duration(2*i)*time.Millisecond)
	}
	if len(e.LiveMs) != latencyWindow || len(e.CandidateMs) != latencyWindow || e.LatencyNext != 10 {
		t.Fatalf("window %d/%d next %d, want %d and 10", len(e.LiveMs), len(e.CandidateMs), e.LatencyNext, latencyWindow)
	}
	if e.LiveMs[0] != latencyWindow || e.LiveMs[10] != 10 || e.CandidateMs[9] != 2*(latencyWindow+9) {
		t.Errorf("the oldest observations were not replaced first: %v ...", e.LiveMs[:12])
	}
}

// ---- queue ----

// Submit never blocks: with no worker and a full queue it counts
// skipped_queue_full and returns.
func TestSubmitNeverBlocksWhenFull(t *testing.T) {
	cfg := testCfg()
	cfg.Workers, cfg.QueueSize = 0, 1
	r := newRec(t, cfg, "r")
	done := make(chan struct{})
	go func() {
		for i := 0; i < 5; i++ {
			r.Submit(priced("r", "GET /x", "12"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Submit blocked on a full queue")
	}
	if got := r.metric("r", "GET /x", ResultQueueFull); got != 4 {
		t.Errorf("skipped_queue_full = %v, want 4", got)
	}
}

func TestWorkersProcessSubmitted(t *testing.T) {
	r := newRec(t, testCfg(), "r")
	for i := 0; i < 10; i++ {
		r.Submit(priced("r", "GET /x", "12"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if e := r.Report("r").Routes[0].Endpoints; len(e) == 1 && e[0].Compared == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers did not compare 10 exchanges: %+v", r.Report("r"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- persistence ----

// Results recorded in memory before a store is attached are added to what
// the store holds, samples and the byte budget included; marks are loaded.
func TestAttachMergesMemoryWithStore(t *testing.T) {
	dir := t.TempDir()
	cfg := testCfg()
	cfg.SamplesPerField = 4

	first := newRec(t, cfg, "r")
	st := openStore(t, dir)
	if err := first.Attach(st); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		first.process(priced("r", "GET /a", "12"))
	}
	if err := first.MarkNoise("r", "GET /a", "$.other", true); err != nil {
		t.Fatal(err)
	}
	first.close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	second := newRec(t, cfg, "r")
	for i := 0; i < 2; i++ {
		second.process(exch("r", "GET /a", resp(`{"price":10,"name":"a"}`), resp(`{"price":12,"name":"b"}`), nil))
	}
	second.process(priced("r", "GET /b", "11"))
	st2 := openStore(t, dir)
	t.Cleanup(func() { st2.Close() })
	if err := second.Attach(st2); err != nil {
		t.Fatal(err)
	}

	a := second.ep("r", "GET /a")
	if a.Compared != 5 || a.Differing != 5 {
		t.Errorf("GET /a compared %d differing %d, want 3+2 and 3+2", a.Compared, a.Differing)
	}
	if p := a.Fields["$.price"]; p.Raw != 5 || p.Kinds[compare.KindValue] != 5 || len(p.Samples) != cfg.SamplesPerField {
		t.Errorf("$.price raw %d kinds %v samples %d, want 5, value:5 and %d samples (3 stored + 1 of memory's 2)",
			p.Raw, p.Kinds, len(p.Samples), cfg.SamplesPerField)
	}
	if n := a.Fields["$.name"]; n == nil || n.Raw != 2 || len(n.Samples) != 2 {
		t.Errorf("$.name (memory only) = %+v, want raw 2 with its 2 samples", n)
	}
	if b := second.ep("r", "GET /b"); b == nil || b.Compared != 1 {
		t.Errorf("GET /b (memory only) = %+v", b)
	}
	if !second.marked("r", "GET /a", "$.other") {
		t.Errorf("the stored noise mark was not loaded")
	}
	second.checkBudget(t)

	// Everything merged is written back.
	second.close()
	third := newRec(t, cfg, "r")
	if err := third.Attach(st2); err != nil {
		t.Fatal(err)
	}
	if got, want := third.Report("r"), second.Report("r"); !reportsEqual(got, want) {
		t.Errorf("after a round trip the report is\n%s\nwant\n%s", js(got), js(want))
	}
}

func js(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

func reportsEqual(a, b Report) bool { return js(a) == js(b) }

func TestPersistRoundTripAndMarks(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	r := newRec(t, testCfg(), "r")
	if err := r.Attach(st); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		r.process(exch("r", "GET /a", resp(`{"price":10,"ts":1}`), resp(`{"price":12,"ts":2}`), resp(`{"price":10,"ts":3}`)))
	}
	r.process(exch("r", "GET /a", resp(`{}`), &shadow.Response{Err: "error_timeout"}, nil))
	if err := r.MarkNoise("r", "GET /a", "$.price", true); err != nil {
		t.Fatal(err)
	}
	if err := r.MarkNoise("r", "", "$.everywhere", true); err != nil {
		t.Fatal(err)
	}
	if err := r.MarkNoise("r", "GET /a", "$.gone", true); err != nil {
		t.Fatal(err)
	}
	if err := r.MarkNoise("r", "GET /a", "$.gone", false); err != nil {
		t.Fatal(err)
	}
	want := r.Report("r")
	r.close()
	st.Close()

	st2 := openStore(t, dir)
	t.Cleanup(func() { st2.Close() })
	r2 := newRec(t, testCfg(), "r")
	if err := r2.Attach(st2); err != nil {
		t.Fatal(err)
	}
	if got := r2.Report("r"); !reportsEqual(got, want) {
		t.Errorf("restored report\n%s\nwant\n%s", js(got), js(want))
	}
	ep := want.Routes[0].Endpoints[0]
	if len(ep.Regressions) != 0 || len(ep.Noise) != 2 || ep.Skipped[ResultCandidateError] != 1 {
		t.Errorf("report %s: want $.price marked and $.ts noise, one candidate error", js(ep))
	}
	if !r2.marked("r", "GET /a", "$.price") || !r2.marked("r", "GET /other", "$.everywhere") || r2.marked("r", "GET /a", "$.gone") {
		t.Errorf("marks after restart: %v", r2.marks)
	}
	s1, _ := r2.Samples("r", "GET /a", "$.price")
	if len(s1) != 4 || s1[0].Candidate.Body != `{"price":12,"ts":2}` {
		t.Errorf("restored samples %s", js(s1))
	}
	r2.checkBudget(t)
}

func TestResetKeepsMarksAndOtherRoutes(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	r := newRec(t, testCfg(), "a", "ab")
	if err := r.Attach(st); err != nil {
		t.Fatal(err)
	}
	r.process(priced("a", "GET /x", "12"))
	r.process(priced("a", "GET /y", "12"))
	r.process(priced("ab", "GET /x", "12"))
	if err := r.MarkNoise("a", "GET /x", "$.price", true); err != nil {
		t.Fatal(err)
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}

	if n, err := r.Reset("a", ""); err != nil || n != 2 {
		t.Fatalf("Reset(a) = %d, %v; want 2", n, err)
	}
	if r.ep("a", "GET /x") != nil || r.ep("ab", "GET /x") == nil {
		t.Errorf("Reset(a) must forget route a only (not route ab, whose name starts the same)")
	}
	r.checkBudget(t)
	stored := func() []string {
		var out []string
		_ = st.View(func(tx *store.Tx) error {
			return tx.Scan(bucket, "", func(k string, _ []byte) error {
				out = append(out, strings.ReplaceAll(k, "\x00", "|"))
				return nil
			})
		})
		return out
	}
	if got, want := stored(), []string{"ep/ab|GET /x", "f/ab|GET /x|$.price", "mark/a|GET /x|$.price", "s/ab|GET /x|$.price|0000"}; !slices.Equal(got, want) {
		t.Errorf("store after Reset(a): %q, want %q", got, want)
	}
	r.process(priced("a", "GET /x", "12"))
	rep := r.Report("a").Routes[0].Endpoints
	if len(rep) != 1 || rep[0].Compared != 1 || len(rep[0].Noise) != 1 || !rep[0].Noise[0].MarkedNoise {
		t.Errorf("after a reset, new results start from zero and the mark still holds: %s", js(rep))
	}

	if n, err := r.Reset("", ""); err != nil || n != 2 {
		t.Fatalf("Reset() = %d, %v; want 2", n, err)
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := stored(), []string{"mark/a|GET /x|$.price"}; !slices.Equal(got, want) {
		t.Errorf("store after Reset(): %q, want %q", got, want)
	}
	if rep := r.Report(""); len(rep.Routes) != 2 || len(rep.Routes[0].Endpoints)+len(rep.Routes[1].Endpoints) != 0 {
		t.Errorf("report after Reset(): %s", js(rep))
	}
}

// TestResetOneEndpoint: Reset(route, endpoint) forgets that endpoint's
// counters, latencies and samples in memory and in the store; the
// route's other endpoints (one whose name starts the same), other routes
// and every noise mark stay, and new results start from zero.
func TestResetOneEndpoint(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	r := newRec(t, testCfg(), "a", "b")
	if err := r.Attach(st); err != nil {
		t.Fatal(err)
	}
	for _, ex := range []*shadow.Exchange{priced("a", "GET /x", "12"), priced("a", "GET /x", "13"),
		priced("a", "GET /xy", "12"), priced("b", "GET /x", "12")} {
		r.process(ex)
	}
	if err := r.MarkNoise("a", "GET /x", "$.price", true); err != nil {
		t.Fatal(err)
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reset("", "GET /x"); err == nil {
		t.Errorf("an endpoint without its route was reset")
	}
	if n, err := r.Reset("a", "GET /x"); err != nil || n != 1 {
		t.Fatalf("Reset(a, GET /x) = %d, %v; want 1", n, err)
	}
	if r.ep("a", "GET /x") != nil || r.ep("a", "GET /xy") == nil || r.ep("b", "GET /x") == nil {
		t.Errorf("Reset(a, GET /x) must forget that endpoint only")
	}
	r.checkBudget(t)
	var stored []string
	_ = st.View(func(tx *store.Tx) error {
		return tx.Scan(bucket, "", func(k string, _ []byte) error {
			if strings.Contains(k, "a\x00GET /x\x00") || strings.HasSuffix(k, "a\x00GET /x") {
				stored = append(stored, strings.ReplaceAll(k, "\x00", "|"))
			}
			return nil
		})
	})
	if want := []string{"mark/a|GET /x|$.price"}; !slices.Equal(stored, want) {
		t.Errorf("store after Reset(a, GET /x): %q, want only the mark %q", stored, want)
	}
	if n, err := r.Reset("a", "GET /nothing"); err != nil || n != 0 {
		t.Errorf("Reset of an unknown endpoint = %d, %v; want 0", n, err)
	}
	r.process(priced("a", "GET /x", "12"))
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	r2 := newRec(t, testCfg(), "a", "b")
	if err := r2.Attach(st); err != nil {
		t.Fatal(err)
	}
	for _, ep := range r2.Report("a").Routes[0].Endpoints {
		if want := map[string]int64{"GET /x": 1, "GET /xy": 1}[ep.Endpoint]; ep.Compared != want {
			t.Errorf("after the reset and a restart, %s has %d compared, want %d", ep.Endpoint, ep.Compared, want)
		}
		if ep.Endpoint == "GET /x" && (len(ep.Noise) != 1 || !ep.Noise[0].MarkedNoise) {
			t.Errorf("the noise mark of GET /x did not survive its reset: %s", js(ep))
		}
	}
}

// A flush that encoded its snapshot before a reset must not write it back
// after the reset deleted the route from the store: the reset would come
// undone at the next restart.
func TestResetIsNotUndoneByAConcurrentFlush(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	r := newRec(t, testCfg(), "r")
	if err := r.Attach(st); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		r.process(priced("r", "GET /x", "12"))
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := r.flush(); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := r.Reset("r", ""); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		inMemory := r.ep("r", "GET /x") != nil
		inStore := false
		_ = st.View(func(tx *store.Tx) error {
			inStore = tx.Count(bucket, "ep/r\x00") > 0
			return nil
		})
		if inStore && !inMemory {
			t.Fatalf("iteration %d: the reset route is back in the store after a concurrent flush", i)
		}
	}
}

// The flusher runs from the start; attaching a store later (a reload that
// adds the first comparing route) must not race with it.
func TestAttachWhileFlusherRuns(t *testing.T) {
	cfg := testCfg()
	cfg.FlushInterval = config.Duration(time.Millisecond)
	r := newRec(t, cfg, "r")
	time.Sleep(5 * time.Millisecond) // let the flusher tick a few times (not an assertion)
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { r.close(); st.Close() }) // Close writes the rest
	if err := r.Attach(st); err != nil {
		t.Fatal(err)
	}
	r.process(priced("r", "GET /x", "12"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		_ = st.View(func(tx *store.Tx) error { n = tx.Count(bucket, "ep/"); return nil })
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flusher never wrote the attached store")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ---- report and handlers ----

// The report is encoded after the recorder's lock is released; it must not
// share maps that workers keep writing (a concurrent map read and write is
// a fatal error, not a panic: it would take the gateway down).
func TestReportWhileRecording(t *testing.T) {
	r := newRec(t, testCfg(), "r")
	h := r.Handlers()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		kinds := []string{`{"price":11}`, `"11"`, `{"price":[1]}`}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r.process(exch("r", "GET /x", resp(`{"price":10}`), resp(`{"price":`+kinds[i%3]+`}`), nil))
			r.process(exch("r", "GET /x", resp(`{}`), &shadow.Response{Err: fmt.Sprint("error_", i%2)}, nil))
		}
	}()
	for i := 0; i < 200; i++ {
		for _, p := range []string{"/api/v1/diffs", "/api/v1/diffs/r/fields?endpoint=GET+%2Fx"} {
			req := httptest.NewRequest("GET", p, nil)
			req.SetPathValue("route", "r")
			w := httptest.NewRecorder()
			if strings.Contains(p, "fields") {
				h["GET /api/v1/diffs/{route}/fields"](w, req)
			} else {
				h["GET /api/v1/diffs"](w, req)
			}
			if w.Code != 200 && w.Code != 404 {
				t.Fatalf("%s: %d %s", p, w.Code, w.Body)
			}
		}
	}
	close(stop)
	wg.Wait()
}

func TestReportClassifiesAndSorts(t *testing.T) {
	r := newRec(t, testCfg(), "r")
	for i := 0; i < 10; i++ {
		cand := `{"a":2,"b":1,"c":1}`
		if i < 5 {
			cand = `{"a":2,"b":2,"c":1}`
		}
		sec := `{"a":1,"b":1,"c":1}`
		if i%2 == 0 {
			sec = `{"a":1,"b":1,"c":9}`
		}
		r.process(exch("r", "GET /x", resp(`{"a":1,"b":1,"c":1}`), resp(cand), resp(sec)))
	}
	// $.c differs only in the secondary: noise-only fields are not listed.
	rep := r.Report("")
	if len(rep.Routes) != 1 || rep.Routes[0].Target != "v2" || rep.Routes[0].Thresholds != compare.DefaultThresholds {
		t.Fatalf("report %s", js(rep))
	}
	ep := rep.Routes[0].Endpoints[0]
	if got := fieldNames(ep.Regressions); !slices.Equal(got, []string{"$.a", "$.b"}) {
		t.Errorf("regressions %v, want $.a (rate 1) before $.b (rate 0.5)", got)
	}
	if len(ep.Noise) != 0 || ep.DiffRate != 1 || ep.NoiseCompared != 10 {
		t.Errorf("endpoint %s", js(ep))
	}
	fs, ok := r.Fields("r", "GET /x")
	if !ok || len(fs) != 3 || fs[2].Field != "$.c" || fs[2].Raw != 0 || fs[2].Noise != 5 || fs[2].Regression {
		t.Errorf("fields %s: want $.c listed with noise 5 and no regression", js(fs))
	}
	if _, ok := r.Fields("r", "GET /nope"); ok {
		t.Errorf("fields of an unknown endpoint found")
	}
	// A route-wide mark applies to every endpoint.
	if err := r.MarkNoise("r", "", "$.a", true); err != nil {
		t.Fatal(err)
	}
	ep = r.Report("r").Routes[0].Endpoints[0]
	if got := fieldNames(ep.Regressions); !slices.Equal(got, []string{"$.b"}) || len(ep.Noise) != 1 || !ep.Noise[0].MarkedNoise {
		t.Errorf("after a route-wide mark of $.a: %s", js(ep))
	}
	// Results of a route that stopped comparing stay, with default thresholds.
	r.Configure(map[string]*RouteSpec{})
	if rep := r.Report(""); len(rep.Routes) != 1 || rep.Routes[0].Route != "r" || rep.Routes[0].Target != "" {
		t.Errorf("report after the route stopped comparing: %s", js(rep))
	}
}

func fieldNames(fs []FieldReport) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Field
	}
	return out
}

func TestNoiseHandler(t *testing.T) {
	r := newRec(t, testCfg(), "r")
	h := r.Handlers()["POST /api/v1/diffs/{route}/noise"]
	post := func(body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/diffs/r/noise", strings.NewReader(body))
		req.SetPathValue("route", "r")
		w := httptest.NewRecorder()
		h(w, req)
		return w
	}
	for _, bad := range []string{``, `{`, `{"endpoint":"GET /x"}`, `{"field":"$.a","bogus":1}`, `[]`} {
		if w := post(bad); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("POST noise %q: %d %s, want 400 with an error", bad, w.Code, w.Body)
		}
	}
	if w := post(`{"endpoint":"GET /x","field":"$.a"}`); w.Code != 200 || !r.marked("r", "GET /x", "$.a") {
		t.Errorf("noise omitted means true: %d %s", w.Code, w.Body)
	}
	if w := post(`{"endpoint":"GET /x","field":"$.a","noise":false}`); w.Code != 200 || r.marked("r", "GET /x", "$.a") {
		t.Errorf("noise:false unmarks: %d %s", w.Code, w.Body)
	}
}

// A sample of a field shows that field's differences even when the
// exchange has more differences than a sample keeps.
func TestSampleShowsItsOwnField(t *testing.T) {
	r := newRec(t, testCfg(), "r")
	var live, cand strings.Builder
	live.WriteString(`{`)
	cand.WriteString(`{`)
	for _, name := range []string{"a", "b", "c"} { // each array differs everywhere
		fmt.Fprintf(&live, `"%s":[`, name)
		fmt.Fprintf(&cand, `"%s":[`, name)
		for i := 0; i < 2*maxSampleDiffs; i++ {
			if i > 0 {
				live.WriteString(",")
				cand.WriteString(",")
			}
			fmt.Fprintf(&live, "%d", i)
			fmt.Fprintf(&cand, "%d", -i-1)
		}
		live.WriteString("],")
		cand.WriteString("],")
	}
	live.WriteString(`"z":1}`)
	cand.WriteString(`"z":2}`)
	r.process(exch("r", "GET /x", resp(live.String()), resp(cand.String()), nil))
	for _, f := range []string{"$.z", "$.a[*]", "$.c[*]"} {
		s, ok := r.Samples("r", "GET /x", f)
		if !ok || len(s) != 1 {
			t.Fatalf("samples of %s: %v %v", f, s, ok)
		}
		ds := s[0].Differences
		if len(ds) > maxSampleDiffs || !slices.ContainsFunc(ds, func(d compare.Difference) bool { return d.Field == f }) {
			t.Errorf("the sample of %s keeps %d differences, none of them its own: %+v", f, len(ds), ds)
		}
	}
}
