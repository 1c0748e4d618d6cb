package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/umbragw/umbra/internal/diffs"
)

// diffReset forgets the results of one endpoint of a route, of a route,
// or of all (DELETE /api/v1/diffs[/{route}][?endpoint=E]).
func diffReset(w io.Writer, a *adminClient, route, endpoint string) error {
	path := "/api/v1/diffs"
	if route != "" {
		path += "/" + url.PathEscape(route)
	}
	if endpoint != "" {
		path += "?endpoint=" + url.QueryEscape(endpoint)
	}
	var out struct {
		Reset int `json:"reset_endpoints"`
	}
	if err := a.do("DELETE", path, nil, &out); err != nil {
		return err
	}
	what := "every route"
	switch {
	case endpoint != "":
		what = "route " + route + " endpoint " + endpoint
	case route != "":
		what = "route " + route
	}
	fmt.Fprintf(w, "Reset %s: %d endpoints forgotten (noise marks kept).\n", what, out.Reset)
	return nil
}

// sampleSet is one field's samples as GET /api/v1/diffs/{route}/samples
// answers them.
type sampleSet struct {
	Route    string          `json:"route"`
	Endpoint string          `json:"endpoint"`
	Field    string          `json:"field"`
	Samples  []*diffs.Sample `json:"samples"`
}

// diffSamples prints the samples of the chosen field, or of every
// regressed field of the matching routes and endpoints.
func diffSamples(w io.Writer, a *adminClient, route, endpoint, field string, asJSON bool) error {
	type pick struct {
		route, endpoint, field string
		rep                    *diffs.FieldReport
	}
	var picks []pick
	path := "/api/v1/diffs"
	if route != "" {
		path += "/" + url.PathEscape(route)
	}
	var rep diffs.Report
	if err := a.do("GET", path, nil, &rep); err != nil {
		return err
	}
	for _, r := range rep.Routes {
		for _, e := range r.Endpoints {
			if endpoint != "" && e.Endpoint != endpoint {
				continue
			}
			for _, fs := range [][]diffs.FieldReport{e.Regressions, e.Noise} {
				for i := range fs {
					f := &fs[i]
					if field == f.Field || field == "" && f.Regression {
						picks = append(picks, pick{r.Route, e.Endpoint, f.Field, f})
					}
				}
			}
		}
	}
	if len(picks) == 0 {
		switch {
		case field != "":
			return &exitError{1, fmt.Errorf("no field %q on route %q%s (see umbra diff)", field, route, endpointNote(endpoint))}
		default:
			fmt.Fprintln(w, "No field regressed; nothing to show (name one with --route and --field).")
			return nil
		}
	}
	var all []sampleSet
	for _, p := range picks {
		q := url.Values{"endpoint": {p.endpoint}, "field": {p.field}}
		var set sampleSet
		if err := a.do("GET", "/api/v1/diffs/"+url.PathEscape(p.route)+"/samples?"+q.Encode(), nil, &set); err != nil {
			return err
		}
		if asJSON {
			all = append(all, set)
			continue
		}
		printSamples(w, set, p.rep)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	return nil
}

func endpointNote(endpoint string) string {
	if endpoint == "" {
		return ""
	}
	return fmt.Sprintf(" endpoint %q", endpoint)
}

// printSamples shows each sample's request, the three answers' statuses
// and latencies side by side, and its differences with live's and the
// candidate's values side by side (the secondary's column says whether it
// agreed with live).
func printSamples(w io.Writer, set sampleSet, f *diffs.FieldReport) {
	verdict := "noise"
	switch {
	case f.Regression:
		verdict = "REGRESSION"
	case f.MarkedNoise:
		verdict = "marked noise"
	}
	fmt.Fprintf(w, "route %s  endpoint %s  field %s: %s (raw %.2f%%, noise %.2f%%), %d samples\n",
		set.Route, set.Endpoint, set.Field, verdict, 100*f.RawRate, 100*f.NoiseRate, len(set.Samples))
	for i, s := range set.Samples {
		fmt.Fprintf(w, "\n  sample %d: %s %s at %s\n", i+1, s.Method, s.URI, s.At.UTC().Format("2006-01-02 15:04:05.000Z"))
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "    \tLIVE\tCANDIDATE\tSECONDARY\n")
		fmt.Fprintf(tw, "    status\t%s\t%s\t%s\n", status(s.Live), status(s.Candidate), status(s.Secondary))
		fmt.Fprintf(tw, "    latency\t%s\t%s\t%s\n", latency(s.Live), latency(s.Candidate), latency(s.Secondary))
		tw.Flush()
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "    PATH\tKIND\tLIVE\tCANDIDATE\n")
		for _, d := range s.Differences {
			mark := " "
			if d.Field == set.Field {
				mark = "*"
			}
			fmt.Fprintf(tw, "  %s %s\t%s\t%s\t%s\n", mark, d.Path, d.Kind, orDash(oneLine(d.Live)), orDash(oneLine(d.Other)))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
}

func status(r *diffs.SampleResponse) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprint(r.Status)
}

func latency(r *diffs.SampleResponse) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", r.LatencyMs)
}

func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", `\n`), "\t", " ")
}
