package ui

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/umbragw/umbra/internal/adoption"
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/flags"
	"github.com/umbragw/umbra/internal/rollout"
)

var roles = []string{"live", "canary", "shadow"}

// Chart sizes.
const (
	smallW, smallH = 220, 64
	wideW, wideH   = 460, 110
)

// --- Overview ---------------------------------------------------------

type overviewData struct {
	Routes   []routeView
	Shadows  []shadowView
	Sampled  time.Time
	Interval time.Duration
	Totals   struct {
		Routes, Shadowing, Comparing, Rollouts int
		LiveRPS, ShadowRPS                     float64
	}
}

type routeView struct {
	Route
	Roles                        []roleView
	Traffic, Errors, Latency     Chart
	HasCanary, HasShadow, Active bool
}

type roleView struct {
	Role           string
	Requests       float64 // since start
	RPS, ErrorRate float64 // last interval (NaN: none)
	P50, P99       float64 // ms, last interval
	ErrorsTotal    float64
	Backend, Note  string // Note: the comparison's secondary, also counted as shadow
}

type shadowView struct {
	*ShadowTotals
	Percent                                    float64
	Sent, OK, Failed, Skipped, Dropped, Queued float64
	Reasons                                    []Count
	BreakerOpen                                bool
	Chart                                      Chart
}

func (d *Dashboard) overview(*http.Request) (any, error) {
	snap := d.latest()
	var out overviewData
	out.Sampled, out.Interval = snap.At, d.sampler.interval
	routes := d.src.Routes()
	percent := map[[2]string]float64{}
	for _, r := range routes {
		rv := routeView{Route: r, HasCanary: r.Canary != "", HasShadow: len(r.Shadows) > 0}
		for _, role := range roles {
			t, ok := snap.Paths[pathKey{r.Name, role}]
			if !ok && !(role == "live") && !(role == "canary" && rv.HasCanary) {
				continue
			}
			v := roleView{Role: role, Requests: t.Requests, ErrorsTotal: t.Errors,
				RPS:       d.hist.Latest(Key{Metric: "rps", Route: r.Name, A: role}),
				ErrorRate: d.hist.Latest(Key{Metric: "error_rate", Route: r.Name, A: role}),
				P50:       d.hist.Latest(Key{Metric: "p50_ms", Route: r.Name, A: role}),
				P99:       d.hist.Latest(Key{Metric: "p99_ms", Route: r.Name, A: role})}
			switch role {
			case "live":
				v.Backend = r.Backend
				if !math.IsNaN(v.RPS) {
					out.Totals.LiveRPS += v.RPS
				}
			case "canary":
				v.Backend = r.Canary
			case "shadow":
				names := make([]string, 0, len(r.Shadows))
				for _, s := range r.Shadows {
					names = append(names, fmt.Sprintf("%s (%g%%)", s.Backend, s.Percent))
				}
				v.Backend = strings.Join(names, ", ")
				if r.Secondary != "" {
					v.Note = "and secondary " + r.Secondary
				}
				if !math.IsNaN(v.RPS) {
					out.Totals.ShadowRPS += v.RPS
				}
			}
			if t.Requests > 0 {
				rv.Active = true
			}
			rv.Roles = append(rv.Roles, v)
		}
		rv.Traffic = d.roleChart(r.Name, "rps", "/s", 0)
		rv.Errors = d.roleChart(r.Name, "error_rate", "%", 0)
		rv.Latency = d.roleChart(r.Name, "p99_ms", "ms", 0)
		out.Routes = append(out.Routes, rv)
		out.Totals.Routes++
		if rv.HasShadow {
			out.Totals.Shadowing++
		}
		if r.Compare != "" {
			out.Totals.Comparing++
		}
		for _, s := range r.Shadows {
			percent[[2]string{r.Name, s.Backend}] = s.Percent
		}
	}
	if d.src.Rollouts != nil {
		for _, st := range d.src.Rollouts.Statuses() {
			if st.Phase == rollout.Running || st.Phase == rollout.Paused {
				out.Totals.Rollouts++
			}
		}
	}
	for k, st := range snap.Shadows {
		sv := shadowView{ShadowTotals: st, Percent: percent[k], Sent: st.Group("sent"), OK: st.Group("ok"),
			Failed: st.Group("failed"), Skipped: st.Group("skipped"), Dropped: st.Group("dropped"),
			Queued: st.Queued, Reasons: st.Skipped(), BreakerOpen: snap.Breakers[k]}
		var lines []Line
		for _, g := range []string{"sent", "failed", "dropped", "skipped"} {
			lines = append(lines, Line{Label: g, Class: g, Points: d.hist.Series(Key{Metric: "shadow", Route: k[0], A: k[1], B: g})})
		}
		sv.Chart = Chart{W: smallW, H: smallH, Unit: "/s", Lines: lines, Legend: true}
		out.Shadows = append(out.Shadows, sv)
	}
	sort.Slice(out.Shadows, func(i, j int) bool {
		a, b := out.Shadows[i], out.Shadows[j]
		return a.Route < b.Route || a.Route == b.Route && a.Target < b.Target
	})
	return out, nil
}

// latest is the sampler's last snapshot, taking one if none was taken yet.
func (d *Dashboard) latest() Snapshot {
	snap := d.sampler.Latest()
	if snap.At.IsZero() {
		d.Sample()
		snap = d.sampler.Latest()
	}
	return snap
}

func (d *Dashboard) roleChart(route, metric, unit string, max float64) Chart {
	var lines []Line
	for _, role := range roles {
		if pts := d.hist.Series(Key{Metric: metric, Route: route, A: role}); pts != nil {
			lines = append(lines, Line{Label: role, Class: role, Points: pts})
		}
	}
	return Chart{W: smallW, H: smallH, Unit: unit, Max: max, Lines: lines}
}

// --- Differences ------------------------------------------------------

type diffsData struct {
	Routes   []diffRouteView
	Selected *samplesView // the field whose samples are open
}

type diffRouteView struct {
	diffs.RouteReport
	Endpoints []diffEndpointView
}

type diffEndpointView struct {
	diffs.EndpointReport
	Chart  Chart
	Fields []diffFieldView
}

type diffFieldView struct {
	diffs.FieldReport
	Chart Chart
	Link  string // the samples of this field
}

type samplesView struct {
	Route, Endpoint, Field string
	Report                 *diffs.FieldReport
	Samples                []sampleView
}

func (d *Dashboard) differences(r *http.Request) (any, error) {
	if d.src.Diffs == nil {
		return diffsData{}, nil
	}
	q := r.URL.Query()
	route := q.Get("route")
	rep := d.src.Diffs.Report("")
	var out diffsData
	for _, rr := range rep.Routes {
		rv := diffRouteView{RouteReport: rr}
		for _, e := range rr.Endpoints {
			ev := diffEndpointView{EndpointReport: e}
			ev.Chart = Chart{W: smallW, H: smallH, Unit: "%", Lines: []Line{
				{Label: "answers differing", Class: "raw", Points: d.hist.Series(Key{Metric: "diff_rate", Route: rr.Route, A: e.Endpoint})}}}
			for _, fs := range [][]diffs.FieldReport{e.Regressions, e.Noise} {
				for _, f := range fs {
					fv := diffFieldView{FieldReport: f, Link: samplesLink(rr.Route, e.Endpoint, f.Field)}
					fv.Chart = Chart{W: 160, H: 44, Unit: "%", Lines: []Line{
						{Label: "raw (live vs candidate)", Class: "raw", Points: d.hist.Series(Key{Metric: "field_raw", Route: rr.Route, A: e.Endpoint, B: f.Field})},
						{Label: "noise (live vs secondary)", Class: "noise", Points: d.hist.Series(Key{Metric: "field_noise", Route: rr.Route, A: e.Endpoint, B: f.Field})}}}
					ev.Fields = append(ev.Fields, fv)
				}
			}
			rv.Endpoints = append(rv.Endpoints, ev)
		}
		out.Routes = append(out.Routes, rv)
	}
	if field := q.Get("field"); route != "" && field != "" {
		ep := q.Get("endpoint")
		samples, ok := d.src.Diffs.Samples(route, ep, field)
		if !ok {
			return nil, fmt.Errorf("no samples for route %q, endpoint %q, field %q (reset since?)", route, ep, field)
		}
		sv := &samplesView{Route: route, Endpoint: ep, Field: field}
		if fields, ok := d.src.Diffs.Fields(route, ep); ok {
			for i := range fields {
				if fields[i].Field == field {
					sv.Report = &fields[i]
				}
			}
		}
		for _, s := range samples {
			sv.Samples = append(sv.Samples, newSampleView(s, field))
		}
		out.Selected = sv
	}
	return out, nil
}

func samplesLink(route, endpoint, field string) string {
	return "/ui/diffs?" + urlValues("route", route, "endpoint", endpoint, "field", field) + "#samples"
}

// --- Rollouts ---------------------------------------------------------

type rolloutsData struct {
	Rollouts []rolloutView
}

type rolloutView struct {
	rollout.Status
	Steps       []stepView
	Current     *stepView
	Numbers     []numberView
	WeightChart Chart
	Decisions   []rollout.Decision // newest first
	Actions     []actionView
	LastReason  string
}

type stepView struct {
	N                     int
	Kind, Label, Detail   string
	Done, Current, Failed bool
}

// numberView is one of the current step's numbers against its threshold.
type numberView struct {
	Name, Value, Threshold string
	State                  string // ok, wait, or "" when informative only
}

type actionView struct {
	Command, Label, Confirm, Class string
}

func (d *Dashboard) rollouts(*http.Request) (any, error) {
	var out rolloutsData
	if d.src.Rollouts == nil {
		return out, nil
	}
	for _, st := range d.src.Rollouts.Statuses() {
		out.Rollouts = append(out.Rollouts, d.rolloutView(st))
	}
	return out, nil
}

func (d *Dashboard) rolloutView(st rollout.Status) rolloutView {
	v := rolloutView{Status: st}
	for i, s := range st.Steps {
		sv := stepView{N: i + 1, Kind: s.Kind()}
		switch {
		case s.Shadow != nil:
			sv.Label = "shadow"
			sv.Detail = fmt.Sprintf("%d compared, diff ≤ %s", s.Shadow.MinRequests, formatValue(s.Shadow.MaxDiffRate, "%"))
		case s.Canary != nil:
			sv.Label = fmt.Sprintf("canary %g%%", float64(s.Canary.Weight))
			sv.Detail = fmt.Sprintf("%d requests, %s", s.Canary.MinRequests, s.Canary.MinDuration.D())
		default:
			sv.Label = "promote"
			sv.Detail = "everyone on the canary"
		}
		if st.Phase != rollout.Idle {
			sv.Done = i < st.Step || st.Phase == rollout.Promoted
			sv.Current = i == st.Step && st.Phase != rollout.Promoted
			sv.Failed = sv.Current && (st.Phase == rollout.RolledBack || st.Phase == rollout.Aborted)
		}
		v.Steps = append(v.Steps, sv)
	}
	if st.Phase != rollout.Idle && st.Step < len(v.Steps) {
		v.Current = &v.Steps[st.Step]
	}
	for i := len(st.Decisions) - 1; i >= 0; i-- {
		v.Decisions = append(v.Decisions, st.Decisions[i])
	}
	if len(v.Decisions) > 0 {
		v.LastReason = v.Decisions[0].Reason
	}
	v.Numbers = stepNumbers(st)
	v.WeightChart = Chart{W: wideW, H: wideH, Unit: "%", Max: 1, Lines: []Line{
		{Label: "canary weight", Class: "canary", Points: weightPoints(st, d.hist.Series(Key{Metric: "weight", Route: st.Route})), Step: true}}}
	v.Actions = actions(st)
	return v
}

// weightPoints draws the weight from the recorded decisions (which
// survive restarts), ending with the sampled present.
func weightPoints(st rollout.Status, sampled []Point) []Point {
	var pts []Point
	for _, dc := range st.Decisions {
		pts = append(pts, Point{T: dc.At, V: dc.Weight / 100})
	}
	if len(pts) == 0 {
		for i := range sampled {
			sampled[i].V /= 100
		}
		return sampled
	}
	pts = append(pts, Point{T: time.Now(), V: st.Weight / 100})
	return pts
}

// stepNumbers lists the current step's numbers (from the latest
// decision's inputs) against the step's and the analysis' thresholds.
func stepNumbers(st rollout.Status) []numberView {
	if st.Phase == rollout.Idle || st.Step >= len(st.Steps) {
		return nil
	}
	var in map[string]float64
	for i := len(st.Decisions) - 1; i >= 0; i-- {
		if st.Decisions[i].Step == st.Step && st.Decisions[i].Inputs != nil {
			in = st.Decisions[i].Inputs
			break
		}
	}
	num := func(k string) (float64, bool) { v, ok := in[k]; return v, ok }
	var out []numberView
	add := func(name, key string, format func(float64) string, threshold string, ok func(float64) bool) {
		v, has := num(key)
		if !has {
			out = append(out, numberView{Name: name, Value: "–", Threshold: threshold})
			return
		}
		nv := numberView{Name: name, Value: format(v), Threshold: threshold}
		if ok != nil {
			nv.State = "wait"
			if ok(v) {
				nv.State = "ok"
			}
		}
		out = append(out, nv)
	}
	count := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	pct := func(v float64) string { return formatValue(v, "%") }
	ratio := func(v float64) string { return fmt.Sprintf("%.2fx", v) }
	pval := func(v float64) string { return fmt.Sprintf("%.3g", v) }
	step, a := st.Steps[st.Step], st.Analysis
	switch {
	case step.Shadow != nil:
		s := step.Shadow
		add("answers compared", "compared", count, fmt.Sprintf("≥ %d", s.MinRequests), func(v float64) bool { return v >= float64(s.MinRequests) })
		add("worst field beyond noise", "worst_diff_rate", pct, "≤ "+pct(s.MaxDiffRate), func(v float64) bool { return v <= s.MaxDiffRate })
		add("shadow copies sent", "shadow_sent", count, "", nil)
		add("shadow error rate", "shadow_error_rate", pct, "≤ "+pct(s.MaxErrorRate), func(v float64) bool { return v <= s.MaxErrorRate })
		add("time in step", "elapsed_seconds", seconds, "≥ "+s.MinDuration.D().String(), func(v float64) bool { return v >= s.MinDuration.D().Seconds() })
	case step.Canary != nil:
		c := step.Canary
		min := func(v float64) bool { return v >= float64(c.MinRequests) }
		add("canary requests", "canary_requests", count, fmt.Sprintf("≥ %d", c.MinRequests), min)
		add("live requests", "live_requests", count, fmt.Sprintf("≥ %d", c.MinRequests), min)
		add("time in step", "elapsed_seconds", seconds, "≥ "+c.MinDuration.D().String(), func(v float64) bool { return v >= c.MinDuration.D().Seconds() })
		add("live error rate", "live_error_rate", pct, "", nil)
		if live, ok := num("live_error_rate"); ok {
			add("canary error rate", "canary_error_rate", pct, "≤ live + "+pct(a.MaxErrorRateIncrease), func(v float64) bool { return v-live <= a.MaxErrorRateIncrease })
		} else {
			add("canary error rate", "canary_error_rate", pct, "≤ live + "+pct(a.MaxErrorRateIncrease), nil)
		}
		add("error test p-value", "error_p_value", pval, fmt.Sprintf("fails below %.3g", 1-a.Confidence), nil)
		add("latency shift (Hodges-Lehmann)", "latency_shift_ratio", ratio, fmt.Sprintf("≤ %.2fx", a.Latency.MaxIncrease), func(v float64) bool { return v <= a.Latency.MaxIncrease })
		add("latency test p-value (Mann-Whitney)", "latency_p_value", pval, fmt.Sprintf("fails below %.3g", 1-a.Latency.Confidence), nil)
		add("p99 ratio", "p99_ratio", ratio, fmt.Sprintf("≤ %.2fx", a.Latency.MaxP99Ratio), func(v float64) bool { return v <= a.Latency.MaxP99Ratio })
	}
	return out
}

func seconds(v float64) string { return (time.Duration(v) * time.Second).String() }

func actions(st rollout.Status) []actionView {
	r := st.Route
	switch st.Phase {
	case rollout.Running:
		return []actionView{
			{"pause", "Pause", "Pause the rollout of " + r + "? The canary keeps its weight until resumed.", ""},
			{"promote", "Promote step", "Pass the current step of " + r + " now, without waiting for its analysis?", ""},
			{"abort", "Abort", "Abort the rollout of " + r + "? Everyone goes back to live at once.", "danger"},
		}
	case rollout.Paused:
		return []actionView{
			{"resume", "Resume", "Resume the rollout of " + r + "? The step's window starts again.", ""},
			{"promote", "Promote step", "Pass the current step of " + r + " now, without waiting for its analysis?", ""},
			{"abort", "Abort", "Abort the rollout of " + r + "? Everyone goes back to live at once.", "danger"},
		}
	}
	return []actionView{{"start", "Start", "Start the rollout of " + r + " from its first step?", ""}}
}

// --- Flags and adoption -----------------------------------------------

type flagsData struct {
	HasFlags bool
	Info     flags.Info
	Flags    []flagView
	Context  string // the evaluation form's text
	Results  []flags.Result
	EvalErr  string
	Adoption *adoption.Report
	Routes   []adoptionRouteView
}

type flagView struct {
	Key               string
	Variants          []string
	NeedsTargetingKey bool
}

type adoptionRouteView struct {
	adoption.RouteReport
	Fields []adoptionFieldView
}

type adoptionFieldView struct {
	adoption.FieldReport
	Chart Chart
}

func (d *Dashboard) flags(r *http.Request) (any, error) {
	var out flagsData
	if e := d.flagEvaluator(); e != nil {
		out.HasFlags, out.Info = true, e.Info()
		for _, k := range e.Keys() {
			out.Flags = append(out.Flags, flagView{Key: k, Variants: e.Variants(k), NeedsTargetingKey: e.NeedsTargetingKey(k)})
		}
		if r.URL.Query().Has("context") {
			out.Context = r.URL.Query().Get("context")
			ctx, err := ParseContext(out.Context)
			if err != nil {
				out.EvalErr = err.Error()
			} else {
				out.Results, _ = e.EvaluateAll(ctx)
			}
		}
	}
	if d.src.Adoption != nil {
		rep := d.src.Adoption.Report(adoption.DefaultWindow)
		out.Adoption = &rep
		for _, rr := range rep.Routes {
			av := adoptionRouteView{RouteReport: rr}
			for _, f := range rr.Fields {
				av.Fields = append(av.Fields, adoptionFieldView{FieldReport: f, Chart: Chart{W: smallW, H: smallH, Unit: "/s",
					Lines: []Line{{Label: f.Name, Class: "live", Points: d.hist.Series(Key{Metric: "field_use", Route: rr.Route, A: f.Name})}}}})
			}
			out.Routes = append(out.Routes, av)
		}
	}
	return out, nil
}

func (d *Dashboard) flagEvaluator() *flags.Evaluator {
	if d.src.Flags == nil {
		return nil
	}
	return d.src.Flags()
}

// ParseContext reads an evaluation context written one attribute a line,
// "name=value"; a line without "=" is the targeting key. Values stay
// strings except true, false and numbers, as flagd's rules compare them.
func ParseContext(text string) (map[string]any, error) {
	ctx := map[string]any{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			name, value = flags.TargetingKey, line
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if name == "" {
			return nil, fmt.Errorf("line %d: want name=value", i+1)
		}
		ctx[name] = contextValue(value)
	}
	return ctx, nil
}
