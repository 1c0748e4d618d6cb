package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/umbragw/umbra/internal/diffs"
)

func diffCmd() *cobra.Command {
	var a adminClient
	var route, endpoint, field string
	var asJSON, samples, reset, replicas bool
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Show how shadow answers differ from live ones, per route, endpoint and field",
		Long: `Show how shadow answers differ from live ones, per route, endpoint and field.

  umbra diff                                   the report, one table per route
  umbra diff --samples                         the kept samples of every regression
  umbra diff --samples --route checkout --endpoint "GET /checkout/{id}" --field '$.total'
  umbra diff --reset --route checkout          forget one route's results (noise marks stay)
  umbra diff --reset --route checkout --endpoint "GET /checkout/{id}"   forget one endpoint's
  umbra diff --reset                           forget every route's results
  umbra diff --replicas                        fleet mode: each replica's share of every endpoint`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case samples && reset:
				return &exitError{2, fmt.Errorf("--samples and --reset do not go together")}
			case reset && field != "":
				return &exitError{2, fmt.Errorf("--reset forgets whole endpoints, not one --field (a field's rates are over its endpoint's compared answers)")}
			case reset && endpoint != "" && route == "":
				return &exitError{2, fmt.Errorf("--reset --endpoint needs --route")}
			case (endpoint != "" || field != "") && !samples && !reset:
				return &exitError{2, fmt.Errorf("--endpoint and --field select samples: add --samples")}
			case field != "" && route == "":
				return &exitError{2, fmt.Errorf("--field needs --route")}
			case reset:
				return diffReset(cmd.OutOrStdout(), &a, route, endpoint)
			case samples:
				return diffSamples(cmd.OutOrStdout(), &a, route, endpoint, field, asJSON)
			}
			path := "/api/v1/diffs"
			if route != "" {
				path += "/" + url.PathEscape(route)
			}
			if asJSON {
				var raw json.RawMessage
				if err := a.do("GET", path, nil, &raw); err != nil {
					return err
				}
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			var rep diffs.Report
			if err := a.do("GET", path, nil, &rep); err != nil {
				return err
			}
			printDiffReport(cmd.OutOrStdout(), rep, replicas)
			return nil
		},
	}
	a.flags(cmd)
	cmd.Flags().StringVar(&route, "route", "", "only this route")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the admin API's JSON")
	cmd.Flags().BoolVar(&samples, "samples", false, "show the kept sample pairs (live, candidate, secondary) of the regressed fields, or of --field")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", `with --samples or --reset: only this endpoint, as the report names it ("GET /checkout/{id}")`)
	cmd.Flags().StringVar(&field, "field", "", "with --samples: this field's samples, regression or not (needs --route)")
	cmd.Flags().BoolVar(&replicas, "replicas", false, "fleet mode: under each endpoint, the answers each replica compared and found differing")
	cmd.Flags().BoolVar(&reset, "reset", false, "forget the comparison results and samples of --endpoint of --route, of --route, or of every route (noise marks stay)")
	return cmd
}

// printDiffReport renders the report as one table per route, with each
// replica's counts under its endpoint when asked (fleet mode).
func printDiffReport(w io.Writer, rep diffs.Report, replicas bool) {
	if len(rep.Routes) == 0 {
		fmt.Fprintln(w, "No route compares answers (add compare: to a route with a shadow target).")
		return
	}
	for _, r := range rep.Routes {
		fmt.Fprintf(w, "route %s: candidate %s", r.Route, orDash(r.Target))
		if r.Secondary != "" {
			fmt.Fprintf(w, ", noise from secondary %s", r.Secondary)
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ENDPOINT\tCOMPARED\tDIFFERING\tLIVE p50/p99 ms\tCANDIDATE p50/p99 ms\tSKIPPED")
		for _, e := range r.Endpoints {
			fmt.Fprintf(tw, "  %s\t%d\t%d (%.1f%%)\t%.1f / %.1f\t%.1f / %.1f\t%s\n", e.Endpoint, e.Compared, e.Differing,
				100*e.DiffRate, e.Latency.LiveP50, e.Latency.LiveP99, e.Latency.CandidateP50, e.Latency.CandidateP99, skipped(e.Skipped))
			if replicas {
				for _, node := range slices.Sorted(maps.Keys(e.Replicas)) {
					c := e.Replicas[node]
					fmt.Fprintf(tw, "    replica %s\t%d\t%d\t\t\t\n", node, c.Compared, c.Differing)
				}
			}
			for _, f := range e.Regressions {
				fmt.Fprintf(tw, "    REGRESSION %s\traw %.2f%%\tnoise %.2f%%\t%s\t\t\n", f.Field, 100*f.RawRate, 100*f.NoiseRate, kinds(f.Kinds))
			}
			for _, f := range e.Noise {
				label := "noise"
				if f.MarkedNoise {
					label = "noise (marked)"
				}
				fmt.Fprintf(tw, "    %s %s\traw %.2f%%\tnoise %.2f%%\t%s\t\t\n", label, f.Field, 100*f.RawRate, 100*f.NoiseRate, kinds(f.Kinds))
			}
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func skipped(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return orDash(strings.Join(parts, " "))
}

func kinds(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
