package adoption

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Fleet shares adoption counts among the replicas of one gateway
// (internal/cluster on etcd): each replica publishes a Summary of its
// counts; Report adds the others' to this replica's, so every replica
// shows the fleet's use of its endpoints and fields.
type Fleet interface {
	// Peers returns the other replicas' latest summaries, and those left
	// by replicas that died or left (docs/fleet.md, "Shared results").
	Peers() []Summary
}

// Summary is one replica's counts as the fleet shares them: its report
// since it started, callers past SummaryCallers per endpoint or field
// counted as "other".
type Summary struct {
	// Origin names the counts: they live as long as the process.
	Origin string `json:"origin"`
	Node   string `json:"node"`
	Report Report `json:"report"`
}

// SummaryCallers bounds the callers a summary names per endpoint or
// field, so a summary stays far below etcd's request limit.
const SummaryCallers = 200

type fleetRef struct{ f Fleet }

// fleetState is the tracker's fleet mode.
type fleetState struct {
	ref    atomic.Pointer[fleetRef]
	origin string
}

func newFleetState() fleetState {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fleetState{origin: hex.EncodeToString(b[:])}
}

// SetFleet makes Report the fleet's.
func (t *Tracker) SetFleet(f Fleet) { t.fleet.ref.Store(&fleetRef{f}) }

// Summary is this replica's counts for the fleet.
func (t *Tracker) Summary() Summary {
	rep := t.localReport(0)
	rep.GeneratedAt = time.Time{} // unchanged counts make an unchanged summary
	for i := range rep.Routes {
		r := &rep.Routes[i]
		for j := range r.Endpoints {
			r.Endpoints[j].Callers = capCallers(r.Endpoints[j].Callers)
		}
		for j := range r.Fields {
			r.Fields[j].Callers = capCallers(r.Fields[j].Callers)
		}
	}
	return Summary{Origin: t.fleet.origin, Report: rep}
}

// capCallers keeps the busiest SummaryCallers callers (the list is
// sorted busiest first) and adds the rest to "other".
func capCallers(cs []CallerUsage) []CallerUsage {
	if len(cs) <= SummaryCallers {
		return cs
	}
	kept := slices.Clone(cs[:SummaryCallers-1])
	other := CallerUsage{Caller: Other}
	for _, c := range cs[SummaryCallers-1:] {
		other.Requests += c.Requests
		other.LastSeen = later(other.LastSeen, c.LastSeen)
	}
	return mergeCallers(kept, []CallerUsage{other})
}

// Valid reports whether a summary read from the fleet is sane enough to
// merge.
func (s *Summary) Valid() error {
	if s.Origin == "" || s.Node == "" {
		return errors.New("adoption summary without origin or node")
	}
	for _, r := range s.Report.Routes {
		if r.Route == "" || len(r.Endpoints) > maxEndpoints+1 || len(r.Fields) > MaxFields {
			return errors.New("adoption summary with impossible routes")
		}
		for _, e := range r.Endpoints {
			if len(e.Callers) > SummaryCallers {
				return errors.New("adoption summary with too many callers")
			}
		}
		for _, f := range r.Fields {
			if len(f.Callers) > SummaryCallers {
				return errors.New("adoption summary with too many callers")
			}
		}
	}
	return nil
}

// merged adds the peers' counts to rep (this replica's report) for the
// routes configured here, and judges use within the window again.
func merged(rep Report, peers []Summary, window time.Duration) Report {
	for _, p := range peers {
		if p.Report.Since.Before(rep.Since) {
			rep.Since = p.Report.Since
		}
		rep.CallersCapped = rep.CallersCapped || p.Report.CallersCapped
	}
	cutoff := rep.Since.Add(-time.Nanosecond)
	if window > 0 {
		cutoff = rep.GeneratedAt.Add(-window)
	}
	rep.UnusedRoutes = []string{}
	for i := range rep.Routes {
		r := &rep.Routes[i]
		for _, p := range peers {
			for _, pr := range p.Report.Routes {
				if pr.Route == r.Route {
					mergeRoute(r, pr)
				}
			}
		}
		r.Used = r.LastSeen != nil && r.LastSeen.After(cutoff)
		if !r.Used {
			rep.UnusedRoutes = append(rep.UnusedRoutes, r.Route)
		}
		for j := range r.Endpoints {
			inWindow(r.Endpoints[j].Callers, cutoff)
		}
		for j := range r.Fields {
			f := &r.Fields[j]
			f.Used = f.LastSeen != nil && f.LastSeen.After(cutoff)
			inWindow(f.Callers, cutoff)
		}
	}
	return rep
}

func mergeRoute(r *RouteReport, o RouteReport) {
	r.Requests += o.Requests
	r.LastSeen = laterPtr(r.LastSeen, o.LastSeen)
	for _, oe := range o.Endpoints {
		i := slices.IndexFunc(r.Endpoints, func(e EndpointReport) bool { return e.Endpoint == oe.Endpoint })
		if i < 0 {
			oe.Callers = slices.Clone(oe.Callers)
			r.Endpoints = append(r.Endpoints, oe)
			continue
		}
		e := &r.Endpoints[i]
		e.Requests += oe.Requests
		e.LastSeen = laterPtr(e.LastSeen, oe.LastSeen)
		e.Callers = mergeCallers(e.Callers, oe.Callers)
	}
	slices.SortFunc(r.Endpoints, func(a, b EndpointReport) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	for _, of := range o.Fields {
		i := slices.IndexFunc(r.Fields, func(f FieldReport) bool { return f.Name == of.Name && f.Path == of.Path })
		if i < 0 {
			continue // a field this replica's config does not have
		}
		f := &r.Fields[i]
		f.Requests += of.Requests
		f.LastSeen = laterPtr(f.LastSeen, of.LastSeen)
		f.Callers = mergeCallers(f.Callers, of.Callers)
	}
	for reason, n := range o.BodiesSkipped {
		if r.BodiesSkipped == nil {
			r.BodiesSkipped = map[string]uint64{}
		}
		r.BodiesSkipped[reason] += n
	}
}

// mergeCallers adds b's counts to a's, busiest first.
func mergeCallers(a, b []CallerUsage) []CallerUsage {
	out := slices.Clone(a)
	for _, c := range b {
		i := slices.IndexFunc(out, func(x CallerUsage) bool { return x.Caller == c.Caller })
		if i < 0 {
			out = append(out, c)
			continue
		}
		out[i].Requests += c.Requests
		out[i].LastSeen = later(out[i].LastSeen, c.LastSeen)
	}
	sortCallers(out)
	return out
}

func inWindow(cs []CallerUsage, cutoff time.Time) {
	for i := range cs {
		cs[i].InWindow = cs[i].LastSeen.After(cutoff)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func laterPtr(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.After(*a)) {
		return b
	}
	return a
}
