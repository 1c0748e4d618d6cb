package egress

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/shadow"
	"github.com/umbragw/umbra/internal/store"
)

// run is one umbra run over a data dir: a store and a sandbox on it.
type run struct {
	st *store.Store
	s  *Sandbox
}

// startRun opens dir's store and starts a sandbox on it with cfg.
func startRun(t *testing.T, dir string, cfg *config.Egress) *run {
	t.Helper()
	st, err := store.Open(dir, store.Options{Log: discard})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, st, nil, prometheus.NewRegistry(), discard)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return &run{st: st, s: s}
}

// stop ends the run cleanly: the sandbox writes what is left.
func (r *run) stop(t *testing.T) {
	r.s.Close()
	if err := r.st.Close(); err != nil {
		t.Fatal(err)
	}
}

// crash ends the run as a killed process would: nothing more is written.
func (r *run) crash(t *testing.T) {
	close(r.s.stop)
	r.s.wg.Wait()
	r.s.services.Load().close(nil)
	if err := r.st.Close(); err != nil {
		t.Fatal(err)
	}
}

// persistSetup starts a provider that counts its calls and returns a data
// dir and a config (with record, the record block, or "") on it.
func persistSetup(t *testing.T, record string) (*atomic.Int64, string, *config.Egress) {
	hits := new(atomic.Int64)
	dir := t.TempDir()
	return hits, dir, persistConfig(t, dir, chargeProvider(t, hits).URL, record)
}

// openStore opens dir's store for a look at what is on disk; the caller
// closes it.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{Log: discard})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// persistConfig is a config whose key file and store live in dir.
func persistConfig(t *testing.T, dir, upstream, record string) *config.Egress {
	cfg := parseEgress(t, upstream, record, "")
	cfg.KeyFile = filepath.Join(dir, "egress.key")
	return cfg
}

// A copy paired before a clean restart is replayed its live request's
// recorded answer after it, by the new process, and its calls keep their
// positions: a call it made before the restart is not made again. Nothing
// reaches the provider but the live call.
func TestRecordingsSurviveRestart(t *testing.T) {
	hits, dir, cfg := persistSetup(t, "")
	a := startRun(t, dir, cfg)
	// Two live requests, each with one charge; copy 1 makes its call
	// before the restart, copy 2 after.
	l1, l2 := liveWithCall(t, a.s), liveWithCall(t, a.s)
	tp1, done1 := l1.PairCopy("v2", shadow.CopyPlain)
	tp2, _ := l2.PairCopy("v2", shadow.CopyPlain)
	if w := charge(a.s, tp1); w.Code != 201 {
		t.Fatalf("copy 1 before the restart: %d %s", w.Code, w.Body)
	}
	done1(true)
	a.stop(t)

	b := startRun(t, dir, cfg)
	defer b.stop(t)
	if got := testutil.ToFloat64(b.s.metrics.restored.WithLabelValues(RoleLive)); got != 2 {
		t.Errorf("restored live requests = %v, want 2", got)
	}
	if w := charge(b.s, tp2); w.Code != 201 || !strings.Contains(w.Body.String(), "ch_live") || w.Header().Get("Content-Length") == "" {
		t.Errorf("copy 2 after the restart = %d %s, want the recorded answer", w.Code, w.Body)
	}
	// Copy 1's first charge was claimed before the restart: its second
	// has no recording.
	if w := charge(b.s, tp1); w.Code != 502 || w.Header().Get("X-Umbra-Egress") != OutcomeUnmatched {
		t.Errorf("copy 1's second call after the restart = %d %s, want unmatched", w.Code, w.Body)
	}
	if hits.Load() != 2 {
		t.Errorf("the provider saw %d calls, want 2 (the live ones)", hits.Load())
	}
	// The restored recordings are exported too.
	if sim, _ := b.s.Recorded("provider"); len(sim.Data.Pairs) != 2 {
		t.Errorf("export after the restart has %d pairs, want 2", len(sim.Data.Pairs))
	}
}

// After a crash the recordings written before it are restored, but the
// copies are not: their last claims may be lost, so their calls get the
// unmatched answer (never a possibly wrong recording, never the provider).
func TestRestoreAfterCrash(t *testing.T) {
	hits, dir, cfg := persistSetup(t, "")
	a := startRun(t, dir, cfg)
	l := liveWithCall(t, a.s)
	tp, _ := l.PairCopy("v2", shadow.CopyPlain)
	if err := a.s.rec.flush(false); err != nil {
		t.Fatal(err)
	}
	a.crash(t)

	b := startRun(t, dir, cfg)
	defer b.stop(t)
	if w := charge(b.s, tp); w.Code != 502 || w.Header().Get("X-Umbra-Egress") != OutcomeUnmatched {
		t.Errorf("a copy's call after a crash = %d %s, want unmatched", w.Code, w.Body)
	}
	if sim, _ := b.s.Recorded("provider"); len(sim.Data.Pairs) != 1 {
		t.Errorf("export after the crash has %d pairs, want the 1 recorded before it", len(sim.Data.Pairs))
	}
	if hits.Load() != 1 {
		t.Errorf("the provider saw %d calls, want 1", hits.Load())
	}
}

// What reaches the disk is redacted: headers and configured JSON fields.
func TestStoredRecordingsAreRedacted(t *testing.T) {
	_, dir, cfg := persistSetup(t, "  record: {redact: {json: [\"$.checkout_id\", \"$.id\"]}}\n")
	a := startRun(t, dir, cfg)
	liveWithCall(t, a.s)
	a.stop(t)
	st := openStore(t, dir)
	defer st.Close()
	var all strings.Builder
	var bodies []string
	n := 0
	st.View(func(tx *store.Tx) error {
		return tx.Scan(bucket, "", func(key string, raw []byte) error {
			n++
			all.WriteString(key + " " + string(raw) + "\n")
			if strings.HasPrefix(key, "c/") {
				var rec callRecord
				if err := json.Unmarshal(raw, &rec); err != nil {
					t.Errorf("%s: %v", key, err)
				}
				bodies = append(bodies, string(rec.Req.Body), string(rec.Resp.Body))
			}
			return nil
		})
	})
	if n < 3 || len(bodies) != 2 { // the state, the episode, its call
		t.Fatalf("the store holds %d records:\n%s", n, all.String())
	}
	text := all.String() + strings.Join(bodies, "\n")
	for _, secret := range []string{"sk_live", "co-000001", "ch_live"} {
		if strings.Contains(text, secret) {
			t.Errorf("the store holds %q:\n%s", secret, text)
		}
	}
	if !strings.Contains(text, Redacted) || !strings.Contains(bodies[0], `"amount":1999`) {
		t.Errorf("the stored call is not the redacted call:\n%s", text)
	}
}

// Expired recordings are not restored and are deleted from the disk, and
// a restart with a smaller record.max_bytes keeps the newest recordings
// that fit and deletes the others: the bounds hold on disk too.
func TestRestoreKeepsBounds(t *testing.T) {
	_, dir, cfg := persistSetup(t, "")
	up := cfg.Services["provider"].Upstream
	a := startRun(t, dir, cfg)
	var lives []*Live
	for range 10 {
		lives = append(lives, liveWithCall(t, a.s))
	}
	oldest, _ := lives[0].PairCopy("v2", shadow.CopyPlain)
	newest, _ := lives[9].PairCopy("v2", shadow.CopyPlain)
	a.stop(t)
	// What a restored live request is charged (redacted, it is smaller
	// than when it was recorded).
	b0 := startRun(t, dir, persistConfig(t, dir, up, ""))
	per := (b0.s.table.bytes.Load() - 2*episodeOverhead) / 10
	b0.stop(t)
	// Room for three of the ten and one copy.
	b := startRun(t, dir, persistConfig(t, dir, up, "  record: {max_bytes: "+strconv.FormatInt(3*per+episodeOverhead+per/2, 10)+"}\n"))
	if got := testutil.ToFloat64(b.s.metrics.restored.WithLabelValues(RoleLive)); got != 3 {
		t.Errorf("restored %v live requests, want 3", got)
	}
	// The newest are kept.
	if w := charge(b.s, newest); w.Code != 201 {
		t.Errorf("the newest copy after the restart = %d %s, want its recording", w.Code, w.Body)
	}
	if w := charge(b.s, oldest); w.Code != 502 {
		t.Errorf("the oldest copy after the restart = %d %s, want unmatched", w.Code, w.Body)
	}
	b.stop(t)
	if n := countKeys(t, dir, "e/"); n != 4 {
		t.Errorf("%d episodes on disk after the restart, want 4 (3 live requests, 1 copy)", n)
	}
	// All expire: nothing restored, nothing left on disk.
	c := startRun(t, dir, persistConfig(t, dir, up, "  record: {ttl: 1ms}\n"))
	c.stop(t)
	time.Sleep(5 * time.Millisecond)
	d := startRun(t, dir, persistConfig(t, dir, up, "  record: {ttl: 1ms}\n"))
	if got := testutil.ToFloat64(d.s.metrics.restored.WithLabelValues(RoleLive)); got != 0 {
		t.Errorf("restored %v expired live requests", got)
	}
	d.stop(t)
	if n := countKeys(t, dir, "e/") + countKeys(t, dir, "c/"); n != 0 {
		t.Errorf("%d expired records left on disk", n)
	}
}

// An episode that leaves the table (expired) leaves the store in the
// next flush.
func TestSweptEpisodesLeaveTheStore(t *testing.T) {
	_, dir, cfg := persistSetup(t, "")
	a := startRun(t, dir, cfg)
	liveWithCall(t, a.s)
	if err := a.s.rec.flush(false); err != nil {
		t.Fatal(err)
	}
	a.s.table.sweep(time.Now().Add(time.Hour))
	a.stop(t)
	if n := countKeys(t, dir, "e/") + countKeys(t, dir, "c/"); n != 0 {
		t.Errorf("%d records of swept episodes left on disk", n)
	}
}

// record.persist: false never opens or writes the bucket.
func TestPersistOff(t *testing.T) {
	_, dir, cfg := persistSetup(t, "  record: {persist: false}\n")
	a := startRun(t, dir, cfg)
	liveWithCall(t, a.s)
	a.stop(t)
	if n := countKeys(t, dir, ""); n != 0 {
		t.Errorf("record.persist false wrote %d records", n)
	}
}

func countKeys(t *testing.T, dir, prefix string) int {
	t.Helper()
	st := openStore(t, dir)
	defer st.Close()
	n := 0
	st.View(func(tx *store.Tx) error { n = tx.Count(bucket, prefix); return nil })
	return n
}

// A live call still unanswered when the store was last written (a slow
// one beside a later one) keeps its place after a restart: the copy's
// first call is not replayed the second call's answer.
func TestRestoreKeepsPositionsOfUnwrittenCalls(t *testing.T) {
	hits, dir, cfg := persistSetup(t, "")
	a := startRun(t, dir, cfg)
	r := httptest.NewRequest("POST", "http://shop/checkout", nil)
	l := a.s.BeginLive(r, "r", false, true)
	key := callKey{"provider", "POST /v1/charges"}
	red := a.s.services.Load().redact
	req := message{Method: "POST", URI: "/v1/charges"}
	a.s.startRecording(l.e, key, req, red) // never answered
	second := a.s.startRecording(l.e, key, req, red)
	a.s.finishRecording(second, &message{Status: 201, Body: []byte(`{"id":"second"}`)}, "")
	tp, _ := l.PairCopy("v2", shadow.CopyPlain)
	a.stop(t)

	b := startRun(t, dir, cfg)
	defer b.stop(t)
	if w := charge(b.s, tp); w.Code != 502 || strings.Contains(w.Body.String(), "second") {
		t.Errorf("the copy's first call = %d %s, want unmatched (its live call has no answer)", w.Code, w.Body)
	}
	if w := charge(b.s, tp); w.Code != 201 || !strings.Contains(w.Body.String(), "second") {
		t.Errorf("the copy's second call = %d %s, want the second recorded answer", w.Code, w.Body)
	}
	if hits.Load() != 0 {
		t.Errorf("the provider saw %d calls", hits.Load())
	}
}

// Records umbra cannot read (garbage written by anything else, a trace id
// that is not one, a copy whose tag is not this key's) are ignored and
// deleted at start-up; the sandbox starts and the good ones are restored.
func TestRestoreIgnoresGarbage(t *testing.T) {
	_, dir, cfg := persistSetup(t, "")
	a := startRun(t, dir, cfg)
	liveWithCall(t, a.s)
	a.stop(t)
	st := openStore(t, dir)
	far := time.Now().Add(time.Hour).UnixNano()
	err := st.Update(func(tx *store.Tx) error {
		for key, v := range map[string]any{
			"e/zz":                            "not an episode",
			"e/00000000000000f0":              episodeRecord{Trace: "nothex", Role: RoleLive, Expires: far},
			"e/00000000000000f1":              episodeRecord{Trace: newTraceID().String(), Role: RoleShadow, Live: 1, Expires: far},
			"c/00000000000000f2/00000000":     callRecord{Service: "provider", Endpoint: "POST /x"},
			"c/nothex/00000000":               1,
			"c/00000000000000f0/00000000/bad": 2,
			"state":                           "?",
		} {
			if err := tx.Put(bucket, key, v); err != nil {
				return err
			}
		}
		return nil
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := startRun(t, dir, cfg)
	if got := testutil.ToFloat64(b.s.metrics.restored.WithLabelValues(RoleLive)); got != 1 {
		t.Errorf("restored %v live requests, want the 1 good one", got)
	}
	if got := testutil.ToFloat64(b.s.metrics.restored.WithLabelValues(RoleShadow)); got != 0 {
		t.Errorf("restored %v copies, want 0 (the stored one is not tagged with this key)", got)
	}
	b.stop(t)
	if n := countKeys(t, dir, "e/") + countKeys(t, dir, "c/"); n != 2 {
		t.Errorf("%d records left, want the good episode and its call", n)
	}
}

// A store that fails to write (closed under the sandbox here; a full
// disk in life) is counted and logged; the recordings stay in memory and
// the live calls and replays go on.
func TestStoreWriteFailureKeepsServing(t *testing.T) {
	hits, dir, cfg := persistSetup(t, "")
	a := startRun(t, dir, cfg)
	holdBackground(a.s) // the test flushes
	a.st.Close()
	l := liveWithCall(t, a.s)
	if err := a.s.rec.flush(false); err == nil {
		t.Fatal("a flush to a closed store succeeded")
	}
	if got := testutil.ToFloat64(a.s.metrics.storeErrors); got != 1 {
		t.Errorf("umbra_egress_store_errors_total = %v, want 1", got)
	}
	tp, done := l.PairCopy("v2", shadow.CopyPlain)
	defer done(true)
	if w := charge(a.s, tp); w.Code != 201 || !strings.Contains(w.Body.String(), "ch_live") {
		t.Errorf("replay with a failing store = %d %s", w.Code, w.Body)
	}
	liveWithCall(t, a.s)
	if hits.Load() != 2 {
		t.Errorf("the provider saw %d calls, want the 2 live ones", hits.Load())
	}
	// The failed batch is queued again, not lost.
	a.s.rec.mu.Lock()
	queued := len(a.s.rec.dirty)
	a.s.rec.mu.Unlock()
	if queued == 0 {
		t.Error("the failed batch was dropped")
	}
	a.s.Close()
}
