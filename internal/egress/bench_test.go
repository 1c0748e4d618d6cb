package egress

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/shadow"
)

// parseEgress parses a config whose egress section ends with extra keys
// and the service "provider" forwarding to upstream.
func parseEgress(tb testing.TB, upstream, extra, svcExtra string) *config.Egress {
	tb.Helper()
	text := "data_dir: " + filepath.Join(tb.TempDir(), "data") + "\n" +
		"backends: {app: {endpoints: [\"http://127.0.0.1:1\"]}}\n" +
		"routes: [{name: r, backend: app}]\n" +
		"egress:\n  listen: 127.0.0.1:0\n" + extra +
		"  services:\n    provider: {upstream: \"" + upstream + "\", endpoints: [\"/v1/charges/{id}\"]" + svcExtra + "}\n"
	cfg, err := config.Parse("test.yaml", []byte(text))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg.Egress
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// newSandbox starts a sandbox whose service "provider" forwards to upstream.
func newSandbox(tb testing.TB, upstream, extra string) *Sandbox {
	tb.Helper()
	s, err := New(parseEgress(tb, upstream, extra, ""), nil, nil, prometheus.NewRegistry(), discard)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// chargeProvider is a third party that counts its calls.
func chargeProvider(tb testing.TB, hits *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		io.WriteString(w, `{"id":"ch_live","status":"succeeded","amount":1999}`)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

const chargeBody = `{"checkout_id":"co-000001","amount":1999,"currency":"usd","kind":"charge","ts":1700000000}`

// charge makes one call to the provider through s, in process.
func charge(s *Sandbox, traceparent string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/provider/v1/charges", strings.NewReader(chargeBody))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer sk_live")
	if traceparent != "" {
		r.Header.Set("Traceparent", traceparent)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// liveWithCall registers a live request that made one charge.
func liveWithCall(tb testing.TB, s *Sandbox) *Live {
	r := httptest.NewRequest("POST", "http://shop/checkout", nil)
	l := s.BeginLive(r, "r", false, true)
	if w := charge(s, r.Header.Get("Traceparent")); w.Code != 201 {
		tb.Fatalf("live call: %d %s", w.Code, w.Body)
	}
	l.End()
	return l
}

// BenchmarkEgressReplay: a copy's call answered from its live request's
// recording (the copy paired, its call classified by its tag, its
// recording looked up and replayed), in process. Target: 20,000 calls/s
// on one core (GOMAXPROCS=1).
func BenchmarkEgressReplay(b *testing.B) {
	var hits atomic.Int64
	s := newSandbox(b, chargeProvider(b, &hits).URL, "")
	l := liveWithCall(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tp, done := l.PairCopy("v2", shadow.CopyPlain)
		if w := charge(s, tp); w.Code != 201 {
			b.Fatalf("replay: %d %s", w.Code, w.Body)
		}
		done(true)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	if hits.Load() != 1 {
		b.Fatalf("the provider saw %d calls, want 1", hits.Load())
	}
}

// BenchmarkEgressLiveRecorded: a live request's call forwarded to a real
// upstream on loopback and recorded, redaction included.
func BenchmarkEgressLiveRecorded(b *testing.B) {
	var hits atomic.Int64
	s := newSandbox(b, chargeProvider(b, &hits).URL, "  record: {redact: {json: [\"$.card.number\"]}}\n")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r := httptest.NewRequest("POST", "http://shop/checkout", nil)
		l := s.BeginLive(r, "r", false, false)
		if w := charge(s, r.Header.Get("Traceparent")); w.Code != 201 {
			b.Fatalf("live call: %d %s", w.Code, w.Body)
		}
		l.End()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// Replay through the public path: the copy gets the live answer, its calls
// are never forwarded, a call with X-Umbra-Shadow alone is a shadow call,
// and a live request can borrow neither a copy's trace nor the mark.
func TestReplayAndShadowHeader(t *testing.T) {
	var hits atomic.Int64
	s := newSandbox(t, chargeProvider(t, &hits).URL, "")
	l := liveWithCall(t, s)
	tp, done := l.PairCopy("v2", shadow.CopyPlain)
	if w := charge(s, tp); w.Code != 201 || !strings.Contains(w.Body.String(), "ch_live") {
		t.Errorf("replay = %d %s", w.Code, w.Body)
	}
	// The copy's second charge has no recording: unmatched, not forwarded.
	if w := charge(s, tp); w.Code != 502 || w.Header().Get("X-Umbra-Egress") != OutcomeUnmatched {
		t.Errorf("second call = %d %s", w.Code, w.Body)
	}
	done(true)
	r := httptest.NewRequest("POST", "/provider/v1/charges", strings.NewReader(chargeBody))
	r.Header.Set(HeaderShadow, "1")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != 502 {
		t.Errorf("X-Umbra-Shadow call = %d", w.Code)
	}
	if hits.Load() != 1 {
		t.Errorf("the provider saw %d calls, want 1 (the live one)", hits.Load())
	}
	lr := httptest.NewRequest("GET", "http://shop/", nil)
	lr.Header.Set("Traceparent", tp)
	lr.Header.Set(HeaderShadow, "1")
	s.BeginLive(lr, "r", false, false).End()
	if lr.Header.Get("Traceparent") == tp || lr.Header.Get(HeaderShadow) != "" {
		t.Errorf("live request kept %q / %q", lr.Header.Get("Traceparent"), lr.Header.Get(HeaderShadow))
	}
}

// unknown: deny refuses calls nobody can place, forward sends them on;
// a reload changes the policy and keeps the recordings.
func TestUnknownPolicyAndReload(t *testing.T) {
	var hits atomic.Int64
	srv := chargeProvider(t, &hits)
	s := newSandbox(t, srv.URL, "")
	l := liveWithCall(t, s)
	const stranger = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if w := charge(s, stranger); w.Code != 201 || hits.Load() != 2 {
		t.Errorf("unknown, forward: %d, hits %d", w.Code, hits.Load())
	}
	if err := s.Configure(parseEgress(t, srv.URL, "", ", unknown: deny"), discard); err != nil {
		t.Fatal(err)
	}
	if w := charge(s, stranger); w.Code != 403 || hits.Load() != 2 {
		t.Errorf("unknown, deny: %d, hits %d", w.Code, hits.Load())
	}
	if w := charge(s, ""); w.Code != 403 || hits.Load() != 2 {
		t.Errorf("no traceparent, deny: %d, hits %d", w.Code, hits.Load())
	}
	tp, done := l.PairCopy("v2", shadow.CopyPlain)
	defer done(true)
	if w := charge(s, tp); w.Code != 201 {
		t.Errorf("recording lost in the reload: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("GET", "http://shop/", nil)
	l2 := s.BeginLive(r, "r", false, false)
	if w := charge(s, r.Header.Get("Traceparent")); w.Code != 201 || hits.Load() != 3 {
		t.Errorf("live call under deny: %d, hits %d", w.Code, hits.Load())
	}
	l2.End()
}

// Live requests that arrive at once with the same incoming trace id (a
// client reusing its traceparent) are ambiguous: their copies are never
// replayed a recording, and the flag is set and read under each
// episode's lock (the race detector checks it).
func TestSharedTraceIDConcurrently(t *testing.T) {
	var hits atomic.Int64
	s := newSandbox(t, chargeProvider(t, &hits).URL, "")
	const shared = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const n = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	lives := make(chan *Live, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := httptest.NewRequest("POST", "http://shop/checkout", nil)
			r.Header.Set("Traceparent", shared)
			l := s.BeginLive(r, "r", false, true)
			_ = charge(s, r.Header.Get("Traceparent"))
			tp, done := l.PairCopy("v2", shadow.CopyPlain)
			_ = charge(s, tp) // replayed or refused, never forwarded
			done(true)
			l.End()
			lives <- l
		}()
	}
	close(start)
	wg.Wait()
	close(lives)
	if got := hits.Load(); got > n {
		t.Errorf("the provider saw %d calls for %d live requests: a copy's call was forwarded", got, n)
	}
}
