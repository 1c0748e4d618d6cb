package diffs

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/umbragw/umbra/internal/store"
)

// Store layout, bucket "diffs". Each record is written only when it
// changed, so a flush costs what changed since the last one, not the size
// of everything recorded (rewriting each endpoint's whole record, samples
// included, wrote about 90 MB/s on high-cardinality differences):
//
//	ep/<route>\x00<endpoint>                   epRecord: the endpoint's counters
//	lat/<route>\x00<endpoint>                  latRecord: recent latencies, every latencySaveEvery
//	f/<route>\x00<endpoint>\x00<field>         fieldRecord: one field's counters
//	s/<route>\x00<endpoint>\x00<field>\x00<n>  Sample n of the field, written once
//	mark/<route>\x00<endpoint>\x00<field>      true: the operator marked the field as noise
//
// Older versions kept fields and samples inside the ep/ record; load reads
// those and the next flush rewrites them in this layout.
//
// Retention: counters and samples stay until reset (DELETE /api/v1/diffs);
// endpoints per route, fields per endpoint and samples per field are
// bounded by the comparison settings, samples also by MaxSampleBytes and
// MaxEndpointSampleBytes, and each flush writes at most MaxFlushBytes (what
// is left waits for the next flush; counters only accumulate meanwhile).
const bucket = "diffs"

// MaxFlushBytes bounds the bytes one flush writes, and so the write rate
// (one flush per comparison.flush_interval) whatever the answers are.
const MaxFlushBytes = 1 << 20

// latencySaveEvery is how often the latency rings (about 10 KB an
// endpoint) are written: they are a recent window, and losing a few
// seconds of it in a crash costs nothing.
const latencySaveEvery = 30 * time.Second

type fieldKey struct{ route, endpoint, field string }

// epRecord is an endpoint's counters as stored.
type epRecord struct {
	Route         string           `json:"route"`
	Endpoint      string           `json:"endpoint"`
	Compared      int64            `json:"compared"`
	Differing     int64            `json:"differing"`
	NoiseCompared int64            `json:"noise_compared"`
	Skipped       map[string]int64 `json:"skipped,omitempty"`
	LastAt        time.Time        `json:"last_at"`
}

// latRecord is an endpoint's latency rings as stored.
type latRecord struct {
	LiveMs      []float64 `json:"live_ms,omitempty"`
	CandidateMs []float64 `json:"candidate_ms,omitempty"`
	LatencyNext int       `json:"latency_next"`
}

// fieldRecord is one field's counters as stored.
type fieldRecord struct {
	Raw   int64            `json:"raw"`
	Noise int64            `json:"noise"`
	Kinds map[string]int64 `json:"kinds,omitempty"`
}

func epStoreKey(k epKey) string { return "ep/" + k.route + "\x00" + k.endpoint }

func latStoreKey(k epKey) string { return "lat/" + k.route + "\x00" + k.endpoint }

func fieldStoreKey(k fieldKey) string {
	return "f/" + k.route + "\x00" + k.endpoint + "\x00" + k.field
}

func sampleStoreKey(k fieldKey, n int) string {
	return fmt.Sprintf("s/%s\x00%s\x00%s\x00%04d", k.route, k.endpoint, k.field, n)
}

func markStoreKey(k markKey) string {
	return "mark/" + k.route + "\x00" + k.endpoint + "\x00" + k.field
}

// recordPrefixes are the key prefixes of the results of one endpoint of a
// route, of a whole route (endpoint "") or of every route (both ""). An
// endpoint's field and sample keys all start with its prefix plus "\x00";
// its two single records are recordKeys.
func recordPrefixes(route, endpoint string) []string {
	out := []string{"ep/", "lat/", "f/", "s/"}
	if route != "" {
		for i := range out {
			out[i] += route + "\x00"
		}
	}
	if endpoint != "" {
		out = []string{out[2] + endpoint + "\x00", out[3] + endpoint + "\x00"}
	}
	return out
}

// recordKeys are the single keys of one endpoint's results that
// recordPrefixes leaves out (none for a route or everything): they end
// with the endpoint, and as a prefix "ep/r\x00GET /a" would also take
// "GET /ab".
func recordKeys(route, endpoint string) []string {
	if endpoint == "" {
		return nil
	}
	k := epKey{route, endpoint}
	return []string{epStoreKey(k), latStoreKey(k)}
}

// load merges persisted results into memory; r.mu is held. An unreadable
// record is logged and skipped: it must not keep umbra from starting.
func (r *Recorder) load(st *store.Store) error {
	loaded := map[epKey]*EndpointStats{}
	err := st.View(func(tx *store.Tx) error {
		skip := func(key string, err error) error {
			r.log.Error("skipping an unreadable comparison record in the store", "key", key, "err", err)
			return nil
		}
		err := tx.Scan(bucket, "ep/", func(key string, raw []byte) error {
			// EndpointStats reads both layouts: older records carry their
			// fields, samples and latencies inline.
			e := &EndpointStats{}
			if err := json.Unmarshal(raw, e); err != nil {
				return skip(key, err)
			}
			e.init()
			loaded[epKey{e.Route, e.Endpoint}] = e
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Scan(bucket, "lat/", func(key string, raw []byte) error {
			e := loaded[splitEpKey(strings.TrimPrefix(key, "lat/"))]
			if e == nil {
				return nil
			}
			var l latRecord
			if err := json.Unmarshal(raw, &l); err != nil {
				return skip(key, err)
			}
			e.LiveMs, e.CandidateMs, e.LatencyNext = l.LiveMs, l.CandidateMs, l.LatencyNext
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Scan(bucket, "f/", func(key string, raw []byte) error {
			fk, ok := splitFieldKey(strings.TrimPrefix(key, "f/"))
			e := loaded[epKey{fk.route, fk.endpoint}]
			if !ok || e == nil {
				return nil
			}
			var fr fieldRecord
			if err := json.Unmarshal(raw, &fr); err != nil {
				return skip(key, err)
			}
			f := e.Fields[fk.field]
			if f == nil {
				f = &FieldStats{}
				e.Fields[fk.field] = f
			}
			f.Raw, f.Noise, f.Kinds = fr.Raw, fr.Noise, fr.Kinds
			if f.Kinds == nil {
				f.Kinds = map[string]int64{}
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Scan(bucket, "s/", func(key string, raw []byte) error {
			rest := strings.TrimPrefix(key, "s/")
			cut := strings.LastIndexByte(rest, 0)
			if cut < 0 {
				return nil
			}
			fk, ok := splitFieldKey(rest[:cut])
			e := loaded[epKey{fk.route, fk.endpoint}]
			if !ok || e == nil || e.Fields[fk.field] == nil {
				return nil
			}
			f := e.Fields[fk.field]
			if len(f.Samples) >= r.cfg.SamplesPerField {
				return nil
			}
			s := &Sample{}
			if err := json.Unmarshal(raw, s); err != nil {
				return skip(key, err)
			}
			f.Samples = append(f.Samples, s)
			f.saved = len(f.Samples)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Scan(bucket, "mark/", func(key string, _ []byte) error {
			parts := strings.SplitN(strings.TrimPrefix(key, "mark/"), "\x00", 3)
			if len(parts) == 3 {
				r.marks[markKey{parts[0], parts[1], parts[2]}] = true
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for k, e := range loaded {
		for _, f := range e.Fields {
			for _, s := range f.Samples {
				r.sampleBytes += int64(s.size())
				e.sampleBytes += int64(s.size())
			}
		}
		if mem := r.endpoints[k]; mem != nil {
			dropped := e.merge(mem, r.cfg.SamplesPerField)
			r.sampleBytes -= dropped
			e.sampleBytes += mem.sampleBytes - dropped
		}
		r.endpoints[k] = e
	}
	return nil
}

func splitEpKey(s string) epKey {
	route, endpoint, _ := strings.Cut(s, "\x00")
	return epKey{route, endpoint}
}

func splitFieldKey(s string) (fieldKey, bool) {
	parts := strings.SplitN(s, "\x00", 3)
	if len(parts) != 3 {
		return fieldKey{}, false
	}
	return fieldKey{parts[0], parts[1], parts[2]}, true
}

// markAllDirty queues every record for writing (after Attach: memory
// results merged in, or records of the older layout to rewrite); r.mu is
// held.
func (r *Recorder) markAllDirty() {
	for k, e := range r.endpoints {
		r.dirty[k] = true
		r.dirtyLat[k] = true
		for name, f := range e.Fields {
			fk := fieldKey{k.route, k.endpoint, name}
			r.dirtyFields[fk] = true
			if f.saved < len(f.Samples) {
				r.unsaved[fk] = true
			}
		}
	}
}

// pending is one record of a flush, kept to queue it again if the write fails.
type pending struct {
	key   string
	value []byte
	undo  func()
}

// flush writes what changed since the last flush, at most MaxFlushBytes,
// in one transaction. Encoding happens under the lock; the write does not.
// Records left over stay queued for the next flush.
func (r *Recorder) flush() error {
	return r.flushLimit(MaxFlushBytes, false)
}

// flushAll writes everything queued, latencies included (on Close).
func (r *Recorder) flushAll() error {
	return r.flushLimit(1<<62, true)
}

func (r *Recorder) flushLimit(limit int, latencies bool) error {
	r.persist.Lock()
	defer r.persist.Unlock()
	r.mu.Lock()
	st := r.store
	if st == nil {
		r.mu.Unlock()
		return nil
	}
	if time.Since(r.latSavedAt) >= latencySaveEvery {
		latencies = true
	}
	batch, err := r.collect(limit, latencies)
	r.backlog.Set(float64(len(r.dirty) + len(r.dirtyFields) + len(r.unsaved)))
	r.mu.Unlock()
	if err != nil || len(batch) == 0 {
		return err
	}
	err = st.Update(func(tx *store.Tx) error {
		for _, p := range batch {
			if err := tx.Put(bucket, p.key, json.RawMessage(p.value)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		r.mu.Lock()
		for _, p := range batch {
			p.undo()
		}
		r.mu.Unlock()
	}
	return err
}

// collect encodes queued records up to limit bytes and unqueues them;
// r.mu is held.
func (r *Recorder) collect(limit int, latencies bool) ([]pending, error) {
	var batch []pending
	size := 0
	add := func(key string, v any, undo func()) (bool, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return false, err
		}
		if size > 0 && size+len(key)+len(b) > limit {
			return false, nil
		}
		size += len(key) + len(b)
		batch = append(batch, pending{key, b, undo})
		return true, nil
	}
	for k := range r.dirty {
		e := r.endpoints[k]
		delete(r.dirty, k)
		if e == nil {
			continue
		}
		rec := epRecord{Route: e.Route, Endpoint: e.Endpoint, Compared: e.Compared, Differing: e.Differing,
			NoiseCompared: e.NoiseCompared, Skipped: e.Skipped, LastAt: e.LastAt}
		if ok, err := add(epStoreKey(k), rec, func() { r.dirty[k] = true }); !ok {
			r.dirty[k] = true
			return batch, err
		}
	}
	for fk := range r.dirtyFields {
		delete(r.dirtyFields, fk)
		f := r.fieldOf(fk)
		if f == nil {
			continue
		}
		rec := fieldRecord{Raw: f.Raw, Noise: f.Noise, Kinds: f.Kinds}
		if ok, err := add(fieldStoreKey(fk), rec, func() { r.dirtyFields[fk] = true }); !ok {
			r.dirtyFields[fk] = true
			return batch, err
		}
	}
	for fk := range r.unsaved {
		f := r.fieldOf(fk)
		for f != nil && f.saved < len(f.Samples) {
			n := f.saved
			ok, err := add(sampleStoreKey(fk, n), f.Samples[n], func() {
				if f.saved > n {
					f.saved = n
				}
				r.unsaved[fk] = true
			})
			if !ok {
				return batch, err
			}
			f.saved++
		}
		delete(r.unsaved, fk)
	}
	if latencies {
		for k := range r.dirtyLat {
			e := r.endpoints[k]
			delete(r.dirtyLat, k)
			if e == nil {
				continue
			}
			rec := latRecord{LiveMs: e.LiveMs, CandidateMs: e.CandidateMs, LatencyNext: e.LatencyNext}
			if ok, err := add(latStoreKey(k), rec, func() { r.dirtyLat[k] = true }); !ok {
				r.dirtyLat[k] = true
				return batch, err
			}
		}
		r.latSavedAt = time.Now()
	}
	return batch, nil
}

// fieldOf returns the stats of a field, nil when it is gone (a reset).
func (r *Recorder) fieldOf(fk fieldKey) *FieldStats {
	e := r.endpoints[epKey{fk.route, fk.endpoint}]
	if e == nil {
		return nil
	}
	return e.Fields[fk.field]
}
