package diffs

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/umbragw/umbra/internal/store"
)

// Fleet shares comparison results among the replicas of one gateway
// (internal/cluster implements it on etcd). Each replica publishes a
// bounded Summary of its own results; reports merge this replica's
// results with the others' on read, so every replica shows the fleet's
// view. Noise marks and resets go through the fleet, which applies them
// on every replica (ApplyMark, ApplyReset).
//
// Peers must not call back into the recorder: it is called with the
// recorder's lock held.
type Fleet interface {
	// Node names this replica in the fleet.
	Node() string
	// Peers returns the other replicas' latest summaries: those of live
	// replicas and those left by replicas that died or left (their
	// counts stay in the fleet's view, docs/fleet.md).
	Peers() []Summary
	// SetMark stores an operator's noise mark (or its removal) for every
	// replica.
	SetMark(m Mark, noise bool) error
	// Reset forgets an endpoint's results (all of the route's: endpoint
	// "", all routes': both "") on every replica and returns the reset's
	// mark, which this replica applies at once.
	Reset(route, endpoint string) (ResetMark, error)
}

// Summary is one replica's comparison results as the fleet shares them:
// every counter, a few recent latencies and at most one sample per field
// (within SummaryBudget), and the fleet resets they follow.
type Summary struct {
	// Origin names the counts: it stays with the data_dir the results are
	// persisted in, so a replica that restarts on the same data is not
	// counted twice beside what it left before.
	Origin string `json:"origin"`
	Node   string `json:"node"`
	// Resets are the fleet resets applied, by scope (resetScope).
	Resets map[string]ResetMark        `json:"resets,omitempty"`
	Routes map[string][]*EndpointStats `json:"routes"`
}

// ResetMark identifies a fleet-wide reset; Rev (etcd's revision of it)
// orders the resets of an endpoint, of its route and of every route.
type ResetMark struct {
	ID  string `json:"id"`
	Rev int64  `json:"rev"`
}

// Mark is an operator's noise mark: a field of an endpoint ("" for every
// endpoint of the route).
type Mark struct {
	Route    string `json:"route"`
	Endpoint string `json:"endpoint"`
	Field    string `json:"field"`
}

// Limits of a published summary. etcd refuses requests over 1.5 MiB by
// default; a summary stays well under it whatever the traffic.
const (
	SummaryBudget      = 1 << 20
	summaryLatencies   = 64
	summarySampleBytes = 256 << 10
)

type fleetRef struct{ f Fleet }

// SetFleet makes the recorder's reports the fleet's: called once, before
// Attach (which keeps the origin of the results in the store).
func (r *Recorder) SetFleet(f Fleet) { r.fleet.Store(&fleetRef{f}) }

func (r *Recorder) fleetOf() Fleet {
	if ref := r.fleet.Load(); ref != nil {
		return ref.f
	}
	return nil
}

// Origin names this replica's results (Summary.Origin).
func (r *Recorder) Origin() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.origin
}

func newOrigin() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Store keys of the fleet's bookkeeping (bucket "diffs").
const (
	originStoreKey   = "fleet/origin"
	resetStorePrefix = "fleet/reset/" // + resetScope
)

// loadFleet reads the origin (creating it) and the resets applied; r.mu
// is held.
func (r *Recorder) loadFleet(st *store.Store) error {
	return st.Update(func(tx *store.Tx) error {
		var origin string
		found, err := tx.Get(bucket, originStoreKey, &origin)
		switch {
		case err == nil && found && origin != "":
			r.origin = origin
		case r.fleetOf() != nil: // only a fleet needs it kept
			if err := tx.Put(bucket, originStoreKey, r.origin); err != nil {
				return err
			}
		}
		return tx.Scan(bucket, resetStorePrefix, func(key string, raw []byte) error {
			var m ResetMark
			if json.Unmarshal(raw, &m) == nil {
				r.resets[strings.TrimPrefix(key, resetStorePrefix)] = m
			}
			return nil
		})
	})
}

// resetScope names what a reset covers: every route (""), a route, or
// one endpoint of a route (route NUL endpoint).
func resetScope(route, endpoint string) string {
	if endpoint == "" {
		return route
	}
	return route + "\x00" + endpoint
}

// effective is the newest reset that applies to an endpoint.
func effective(resets map[string]ResetMark, route, endpoint string) ResetMark {
	m := resets[""]
	for _, scope := range []string{route, resetScope(route, endpoint)} {
		if s, ok := resets[scope]; ok && s.Rev > m.Rev {
			m = s
		}
	}
	return m
}

// Summary is this replica's results for the fleet, within SummaryBudget:
// samples are dropped first, then the least differing fields of the
// busiest endpoints are counted under "(other fields)". Everything it
// holds is in the store when it returns (an error when it could not be
// written: then it must not be published), so a replica that crashes and
// restarts on its data never has fewer counts than it published: the
// fleet's view does not go back.
func (r *Recorder) Summary() (Summary, error) {
	s := r.summary()
	if err := r.flushLimit(1<<62, false); err != nil {
		return Summary{}, err
	}
	return s, nil
}

func (r *Recorder) summary() Summary {
	r.mu.Lock()
	s := Summary{Origin: r.origin, Resets: maps.Clone(r.resets), Routes: map[string][]*EndpointStats{}}
	for _, e := range r.endpoints {
		s.Routes[e.Route] = append(s.Routes[e.Route], summarize(e))
	}
	r.mu.Unlock()
	for _, eps := range s.Routes {
		sort.Slice(eps, func(i, j int) bool { return eps[i].Endpoint < eps[j].Endpoint })
	}
	limitSamples(&s, summarySampleBytes)
	for maxFields := 1 << 16; maxFields > 0 && encodedSize(s) > SummaryBudget; maxFields /= 2 {
		capFields(&s, maxFields)
	}
	return s
}

func encodedSize(s Summary) int {
	b, _ := json.Marshal(s)
	return len(b)
}

// summarize copies an endpoint's counters, its first sample per field and
// its newest latencies; r.mu is held.
func summarize(e *EndpointStats) *EndpointStats {
	c := &EndpointStats{Route: e.Route, Endpoint: e.Endpoint, Compared: e.Compared, Differing: e.Differing,
		NoiseCompared: e.NoiseCompared, Skipped: maps.Clone(e.Skipped), Fields: make(map[string]*FieldStats, len(e.Fields)),
		LastAt: e.LastAt}
	for name, f := range e.Fields {
		cf := &FieldStats{Raw: f.Raw, Noise: f.Noise, Kinds: maps.Clone(f.Kinds)}
		if len(f.Samples) > 0 {
			cf.Samples = []*Sample{f.Samples[0]}
		}
		c.Fields[name] = cf
	}
	c.LiveMs, c.CandidateMs = newest(e.LiveMs, e.LatencyNext), newest(e.CandidateMs, e.LatencyNext)
	return c
}

// newest returns up to summaryLatencies of a ring's newest values.
func newest(ring []float64, next int) []float64 {
	n := min(len(ring), summaryLatencies)
	out := make([]float64, 0, n)
	for i := range n {
		out = append(out, ring[(next-1-i+2*len(ring))%len(ring)])
	}
	return out
}

// limitSamples keeps samples while their size fits budget, in a stable
// order (route, endpoint, field).
func limitSamples(s *Summary, budget int) {
	spent := 0
	for _, route := range slices.Sorted(maps.Keys(s.Routes)) {
		for _, e := range s.Routes[route] {
			for _, name := range slices.Sorted(maps.Keys(e.Fields)) {
				f := e.Fields[name]
				for _, smp := range f.Samples {
					if spent += smp.size(); spent > budget {
						f.Samples = nil
					}
				}
			}
		}
	}
}

// capFields keeps each endpoint's max most differing fields and counts
// the others under "(other fields)" (their raw and noise counts added, an
// upper bound of the entry's rates).
func capFields(s *Summary, max int) {
	for _, eps := range s.Routes {
		for _, e := range eps {
			if len(e.Fields) <= max {
				continue
			}
			names := slices.Collect(maps.Keys(e.Fields))
			sort.Slice(names, func(i, j int) bool {
				a, b := e.Fields[names[i]], e.Fields[names[j]]
				if a.Raw != b.Raw {
					return a.Raw > b.Raw
				}
				return names[i] < names[j]
			})
			other := &FieldStats{Kinds: map[string]int64{}}
			for _, name := range names[max-1:] {
				f := e.Fields[name]
				other.Raw, other.Noise = other.Raw+f.Raw, other.Noise+f.Noise
				for k, v := range f.Kinds {
					other.Kinds[k] += v
				}
				delete(e.Fields, name)
			}
			other.Raw, other.Noise = min(other.Raw, e.Differing), min(other.Noise, e.NoiseCompared)
			e.Fields[otherFields] = other
			for _, f := range e.Fields {
				f.Samples = nil
			}
		}
	}
}

// Valid reports whether a summary read from the fleet is sane enough to
// merge: anything written by another program or version is ignored.
func (s *Summary) Valid() error {
	if s.Origin == "" || s.Node == "" {
		return errors.New("summary without origin or node")
	}
	for route, eps := range s.Routes {
		for _, e := range eps {
			if e == nil || e.Route != route || e.Compared < 0 || e.Differing < 0 || e.Differing > e.Compared || e.NoiseCompared < 0 {
				return errors.New("summary with impossible endpoint counters")
			}
			for _, f := range e.Fields {
				if f == nil || f.Raw < 0 || f.Noise < 0 {
					return errors.New("summary with impossible field counters")
				}
			}
			for _, v := range append(slices.Clone(e.LiveMs), e.CandidateMs...) {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					return errors.New("summary with impossible latencies")
				}
			}
			e.init()
		}
	}
	return nil
}

// ReplicaCounts are one replica's counters of an endpoint in the merged
// report.
type ReplicaCounts struct {
	Compared  int64 `json:"compared"`
	Differing int64 `json:"differing"`
}

// view is what reports of route ("": every route) read: this replica's
// endpoints alone, or merged with the fleet's (copies, in fleet mode).
// byNode is each replica's counts, in fleet mode only. r.mu is held.
func (r *Recorder) view(route string) (eps map[epKey]*EndpointStats, byNode map[epKey]map[string]ReplicaCounts) {
	f := r.fleetOf()
	if f == nil {
		return r.endpoints, nil
	}
	eps = make(map[epKey]*EndpointStats, len(r.endpoints))
	byNode = map[epKey]map[string]ReplicaCounts{}
	count := func(k epKey, node string, e *EndpointStats) {
		if byNode[k] == nil {
			byNode[k] = map[string]ReplicaCounts{}
		}
		c := byNode[k][node]
		byNode[k][node] = ReplicaCounts{c.Compared + e.Compared, c.Differing + e.Differing}
	}
	self := f.Node()
	for k, e := range r.endpoints {
		if route == "" || k.route == route {
			eps[k] = e.clone()
			count(k, self, e)
		}
	}
	for _, p := range f.Peers() {
		if p.Origin == r.origin {
			continue // this replica's own results, left before a restart
		}
		for name, pes := range p.Routes {
			if route != "" && name != route {
				continue
			}
			for _, pe := range pes {
				if effective(p.Resets, name, pe.Endpoint).ID != effective(r.resets, name, pe.Endpoint).ID {
					continue // from before a reset the peer has not applied yet (or since)
				}
				k := epKey{name, pe.Endpoint}
				count(k, p.Node, pe)
				if e := eps[k]; e != nil {
					e.merge(pe, r.cfg.SamplesPerField)
					e.LiveMs = append(e.LiveMs, pe.LiveMs...)
					e.CandidateMs = append(e.CandidateMs, pe.CandidateMs...)
				} else {
					eps[k] = pe.clone()
				}
			}
		}
	}
	return eps, byNode
}

// clone copies an endpoint deeply enough to merge into it.
func (e *EndpointStats) clone() *EndpointStats {
	c := *e
	c.Skipped = maps.Clone(e.Skipped)
	if c.Skipped == nil {
		c.Skipped = map[string]int64{}
	}
	c.Fields = make(map[string]*FieldStats, len(e.Fields))
	for name, f := range e.Fields {
		c.Fields[name] = f.clone()
	}
	c.LiveMs, c.CandidateMs = slices.Clone(e.LiveMs), slices.Clone(e.CandidateMs)
	return &c
}

func (f *FieldStats) clone() *FieldStats {
	c := *f
	c.Kinds = maps.Clone(f.Kinds)
	if c.Kinds == nil {
		c.Kinds = map[string]int64{}
	}
	c.Samples = slices.Clone(f.Samples)
	return &c
}

// ApplyMark sets or clears a noise mark the fleet stores (made on any
// replica), here and in this replica's store.
func (r *Recorder) ApplyMark(m Mark, noise bool) error {
	return r.markLocal(markKey{m.Route, m.Endpoint, m.Field}, noise)
}

// ApplyMarks makes the fleet's marks this replica's: marks the fleet does
// not hold (removed while this replica was away, or made before it joined
// the fleet) are cleared.
func (r *Recorder) ApplyMarks(marks []Mark) error {
	want := map[markKey]bool{}
	for _, m := range marks {
		want[markKey{m.Route, m.Endpoint, m.Field}] = true
	}
	r.mu.Lock()
	var drop []markKey
	for k := range r.marks {
		if !want[k] {
			drop = append(drop, k)
		}
	}
	r.mu.Unlock()
	var errs []error
	for k := range want {
		errs = append(errs, r.markLocal(k, true))
	}
	for _, k := range drop {
		errs = append(errs, r.markLocal(k, false))
	}
	return errors.Join(errs...)
}

// ApplyReset forgets an endpoint's results (all of the route's:
// endpoint "", all routes': both "") for a fleet reset made on any
// replica, once: a reset already applied (the same mark) is not applied
// again, so a replica that restarts keeps what it counted since.
func (r *Recorder) ApplyReset(route, endpoint string, m ResetMark) error {
	scope := resetScope(route, endpoint)
	r.mu.Lock()
	applied := r.resets[scope]
	r.mu.Unlock()
	if applied.ID == m.ID {
		return nil
	}
	if _, err := r.resetLocal(route, endpoint); err != nil {
		return err
	}
	return r.noteReset(scope, m)
}

// noteReset records a reset as applied (in memory and in the store).
func (r *Recorder) noteReset(scope string, m ResetMark) error {
	r.persist.Lock()
	defer r.persist.Unlock()
	r.mu.Lock()
	r.resets[scope] = m
	st := r.store
	r.mu.Unlock()
	if st == nil {
		return nil
	}
	return st.Update(func(tx *store.Tx) error { return tx.Put(bucket, resetStorePrefix+scope, m) })
}
