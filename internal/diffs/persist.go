package diffs

import (
	"encoding/json"
	"strings"

	"github.com/umbragw/umbra/internal/store"
)

// Store layout, bucket "diffs":
//
//	ep/<route>\x00<endpoint>          EndpointStats (counters, fields, samples)
//	mark/<route>\x00<endpoint>\x00<field>   true: the operator marked the field as noise
//
// Retention: counters and samples stay until reset (DELETE /api/v1/diffs);
// endpoints per route, fields per endpoint and samples per field are
// bounded by the comparison settings, and all samples together by
// MaxSampleBytes.
const bucket = "diffs"

func epStoreKey(k epKey) string { return "ep/" + k.route + "\x00" + k.endpoint }

func markStoreKey(k markKey) string {
	return "mark/" + k.route + "\x00" + k.endpoint + "\x00" + k.field
}

// load merges persisted results into memory; r.mu is held.
func (r *Recorder) load(st *store.Store) error {
	return st.View(func(tx *store.Tx) error {
		err := tx.Scan(bucket, "ep/", func(key string, raw []byte) error {
			e := &EndpointStats{}
			if err := json.Unmarshal(raw, e); err != nil {
				// One unreadable record must not keep umbra from starting.
				r.log.Error("skipping an unreadable comparison record in the store", "key", key, "err", err)
				return nil
			}
			if e.Skipped == nil {
				e.Skipped = map[string]int64{}
			}
			if e.Fields == nil {
				e.Fields = map[string]*FieldStats{}
			}
			for _, f := range e.Fields {
				for _, s := range f.Samples {
					r.sampleBytes += int64(s.size())
				}
				if f.Kinds == nil {
					f.Kinds = map[string]int64{}
				}
			}
			k := epKey{e.Route, e.Endpoint}
			if mem := r.endpoints[k]; mem != nil {
				r.sampleBytes -= e.merge(mem, r.cfg.SamplesPerField)
			}
			r.endpoints[k] = e
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
}

// flush writes the endpoints changed since the last flush in one
// transaction. Encoding happens under the lock; the write does not.
func (r *Recorder) flush() error {
	r.persist.Lock()
	defer r.persist.Unlock()
	r.mu.Lock()
	st := r.store
	if st == nil || len(r.dirty) == 0 {
		r.mu.Unlock()
		return nil
	}
	encoded := make(map[string][]byte, len(r.dirty))
	for k := range r.dirty {
		if e := r.endpoints[k]; e != nil {
			b, err := json.Marshal(e)
			if err != nil {
				r.mu.Unlock()
				return err
			}
			encoded[epStoreKey(k)] = b
		}
	}
	r.dirty = map[epKey]bool{}
	r.mu.Unlock()
	return st.Update(func(tx *store.Tx) error {
		for k, b := range encoded {
			if err := tx.Put(bucket, k, json.RawMessage(b)); err != nil {
				return err
			}
		}
		return nil
	})
}
