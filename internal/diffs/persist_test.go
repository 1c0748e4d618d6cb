package diffs

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/umbragw/umbra/internal/store"
)

// storedKeys lists the store's diffs keys with their value sizes.
func storedKeys(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := st.View(func(tx *store.Tx) error {
		return tx.Scan(bucket, "", func(k string, v []byte) error { out[k] = len(v); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFlushWritesOnlyWhatChanged: a flush after one more exchange on one
// field writes that endpoint's counters and that field's, not the other
// fields nor any sample again.
func TestFlushWritesOnlyWhatChanged(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	r := newRec(t, testCfg(), "r")
	if err := r.Attach(st); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r.process(exch("r", "GET /a", resp(`{"a":1,"b":1,"c":1}`), resp(fmt.Sprintf(`{"a":2,"b":2,"c":%d}`, i+2)), nil))
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	first := st.Written()
	if n := len(storedKeys(t, st)); n != 1+3+15 {
		t.Fatalf("stored %d keys, want 1 endpoint, 3 fields and 15 samples: %v", n, storedKeys(t, st))
	}
	r.process(exch("r", "GET /a", resp(`{"a":1,"b":1,"c":1}`), resp(`{"a":1,"b":1,"c":9}`), nil))
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	keys := storedKeys(t, st)
	second := st.Written() - first
	want := int64(len(epStoreKey(epKey{"r", "GET /a"})) + keys[epStoreKey(epKey{"r", "GET /a"})] +
		len(fieldStoreKey(fieldKey{"r", "GET /a", "$.c"})) + keys[fieldStoreKey(fieldKey{"r", "GET /a", "$.c"})])
	if second != want {
		t.Errorf("the second flush wrote %d bytes, want %d (the endpoint's and $.c's counters); first flush %d", second, want, first)
	}
}

// TestFlushBudgetCatchesUp: flushes smaller than what is queued write a
// part each, never more than their limit, and together everything: a
// restart then sees what memory holds.
func TestFlushBudgetCatchesUp(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	r := newRec(t, testCfg(), "r")
	if err := r.Attach(st); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		r.process(exch("r", fmt.Sprintf("GET /%d", i%4), resp(`{"a":1,"b":1}`), resp(fmt.Sprintf(`{"a":%d,"b":%d}`, i, i)), resp(`{"a":1,"b":3}`)))
	}
	const limit = 4 << 10
	for flushes := 0; ; flushes++ {
		before := st.Written()
		if err := r.flushLimit(limit, true); err != nil {
			t.Fatal(err)
		}
		wrote := st.Written() - before
		if wrote > limit+sampleBodyLimit*4 { // a single record may exceed the limit on its own
			t.Fatalf("a flush wrote %d bytes, limit %d", wrote, limit)
		}
		if wrote == 0 {
			if flushes < 3 {
				t.Fatalf("caught up after %d flushes: the limit did not bind", flushes)
			}
			break
		}
	}
	want := r.Report("r")
	samples, _ := r.Samples("r", "GET /1", "$.a")
	r.close()
	st.Close()
	st2 := openStore(t, dir)
	t.Cleanup(func() { st2.Close() })
	r2 := newRec(t, testCfg(), "r")
	if err := r2.Attach(st2); err != nil {
		t.Fatal(err)
	}
	if got := r2.Report("r"); !reportsEqual(got, want) {
		t.Errorf("after a restart\n%s\nwant\n%s", js(got), js(want))
	}
	got, _ := r2.Samples("r", "GET /1", "$.a")
	if js(got) != js(samples) {
		t.Errorf("samples after a restart\n%s\nwant\n%s", js(got), js(samples))
	}
	r2.checkBudget(t)
}

// TestLoadsTheOlderLayout: a store written by the previous version (each
// endpoint one record with its fields, samples and latencies inline) is
// read as it was and rewritten in the current layout.
func TestLoadsTheOlderLayout(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	old := newRec(t, testCfg(), "r")
	for range 3 {
		old.process(exch("r", "GET /a", resp(`{"price":10,"ts":1}`), resp(`{"price":12,"ts":2}`), resp(`{"price":10,"ts":3}`)))
	}
	want := old.Report("r")
	wantSamples, _ := old.Samples("r", "GET /a", "$.price")
	e := old.ep("r", "GET /a")
	err := st.Update(func(tx *store.Tx) error {
		b, err := json.Marshal(e) // the whole EndpointStats: the older layout
		if err != nil {
			return err
		}
		return tx.Put(bucket, epStoreKey(epKey{"r", "GET /a"}), json.RawMessage(b))
	})
	if err != nil {
		t.Fatal(err)
	}
	r := newRec(t, testCfg(), "r")
	if err := r.Attach(st); err != nil {
		t.Fatal(err)
	}
	if got := r.Report("r"); !reportsEqual(got, want) {
		t.Errorf("older record read as\n%s\nwant\n%s", js(got), js(want))
	}
	r.close()
	keys := storedKeys(t, st)
	if _, ok := keys[fieldStoreKey(fieldKey{"r", "GET /a", "$.price"})]; !ok {
		t.Errorf("not rewritten in the current layout: %v", keys)
	}
	if n := keys[epStoreKey(epKey{"r", "GET /a"})]; n > 300 {
		t.Errorf("the endpoint record is %d bytes: fields or samples are still inline", n)
	}
	st.Close()
	st2 := openStore(t, dir)
	t.Cleanup(func() { st2.Close() })
	r2 := newRec(t, testCfg(), "r")
	if err := r2.Attach(st2); err != nil {
		t.Fatal(err)
	}
	if got := r2.Report("r"); !reportsEqual(got, want) {
		t.Errorf("after the rewrite\n%s\nwant\n%s", js(got), js(want))
	}
	if got, _ := r2.Samples("r", "GET /a", "$.price"); js(got) != js(wantSamples) {
		t.Errorf("samples after the rewrite\n%s\nwant\n%s", js(got), js(wantSamples))
	}
	r2.checkBudget(t)
}
