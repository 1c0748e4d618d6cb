package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/umbragw/umbra/internal/cluster"
	"github.com/umbragw/umbra/internal/rollout"
)

func rolloutCmd() *cobra.Command {
	var a adminClient
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rollout status|start|pause|resume|promote|abort [ROUTE]",
		Short: "Show or steer the automated canary rollouts of a running umbra",
		Long: `status [ROUTE]  show the rollouts (all, or one with its decisions)
start ROUTE     begin the route's rollout plan at its first step
pause ROUTE     stop evaluating; the canary keeps its weight
resume ROUTE    evaluate again, with a fresh window for the current step
promote ROUTE   pass the current step now (webhooks are still asked);
                from held: send everyone to the canary (promoted)
abort ROUTE     send everyone back to live and stop

A held rollout lost its saved state (damaged or empty store): callers stay
at the config's canary.weight until you start, promote or abort it.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			verb := args[0]
			route := ""
			if len(args) == 2 {
				route = args[1]
			}
			out := cmd.OutOrStdout()
			if verb == "status" {
				return rolloutStatus(&a, route, asJSON, out)
			}
			if slices.Contains(rollout.Commands, rollout.Action(verb)) {
				if route == "" {
					return &exitError{2, fmt.Errorf("rollout %s needs a ROUTE", verb)}
				}
				var st rollout.Status
				if err := a.do("POST", "/api/v1/rollouts/"+url.PathEscape(route)+"/"+verb, nil, &st); err != nil {
					return err
				}
				printRollout(out, st, true)
				return nil
			}
			verbs := []string{"status"}
			for _, c := range rollout.Commands {
				verbs = append(verbs, string(c))
			}
			return &exitError{2, fmt.Errorf("unknown rollout command %q (%s)", verb, strings.Join(verbs, ", "))}
		},
	}
	a.flags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the admin API's JSON")
	return cmd
}

func rolloutStatus(a *adminClient, route string, asJSON bool, out io.Writer) error {
	path := "/api/v1/rollouts"
	if route != "" {
		path += "/" + url.PathEscape(route)
	}
	if asJSON {
		var raw json.RawMessage
		if err := a.do("GET", path, nil, &raw); err != nil {
			return err
		}
		_, err := out.Write(raw)
		return err
	}
	if route != "" {
		var st rollout.Status
		if err := a.do("GET", path, nil, &st); err != nil {
			return err
		}
		printRollout(out, st, true)
		return nil
	}
	var all struct {
		Rollouts []rollout.Status `json:"rollouts"`
	}
	if err := a.do("GET", path, nil, &all); err != nil {
		return err
	}
	if len(all.Rollouts) == 0 {
		fmt.Fprintln(out, "No route has a rollout plan.")
	}
	for _, st := range all.Rollouts {
		printRollout(out, st, false)
	}
	return nil
}

// printRollout shows a rollout's phase, plan and (optionally) decisions.
func printRollout(w io.Writer, st rollout.Status, decisions bool) {
	fmt.Fprintf(w, "route %s: %s, step %d of %d (%s), canary weight %g%%\n", st.Route, st.Phase, st.Step+1, len(st.Steps), orDash(st.StepKind), st.Weight)
	for i, s := range st.Steps {
		mark := " "
		if i == st.Step && st.Phase != rollout.Idle {
			mark = ">"
		}
		fmt.Fprintf(w, "  %s %d. %s\n", mark, i+1, describeStep(s.Kind(), s))
	}
	if st.HeldReason != "" {
		fmt.Fprintf(w, "  held: %s\n  run `umbra rollout start|promote|abort %s`\n", st.HeldReason, st.Route)
	}
	printFleet(w, st)
	if !decisions || len(st.Decisions) == 0 {
		return
	}
	fmt.Fprintln(w, "  decisions:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, d := range st.Decisions {
		by := ""
		if d.Node != "" {
			by = "by " + d.Node
		}
		fmt.Fprintf(tw, "    %s\tstep %d\t%g%%\t%s\t%s\t%s\t%s\n", d.At.Format("15:04:05"), d.Step+1, d.Weight, d.Action, by, d.Reason, inputs(d.Inputs))
	}
	tw.Flush()
}

// printFleet shows, in fleet mode, who leads the rollout and each
// replica's window of the current step.
func printFleet(w io.Writer, st rollout.Status) {
	if st.Fleet == nil {
		return
	}
	var v cluster.FleetView
	b, _ := json.Marshal(st.Fleet)
	if json.Unmarshal(b, &v) != nil {
		return
	}
	health := "etcd ok"
	if !v.Healthy {
		health = "etcd trouble: " + v.Problem
	}
	fmt.Fprintf(w, "  fleet: this replica %s, leader %s, members %s; %s\n", v.Node, orDash(v.Leader), strings.Join(v.Members, " "), health)
	if len(v.Windows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    REPLICA\tLIVE REQUESTS\tERRORS\tp50/p99 ms\tCANARY REQUESTS\tERRORS\tp50/p99 ms")
	for _, x := range v.Windows {
		if x.Epoch != st.Window {
			continue // an older step's, not yet replaced
		}
		fmt.Fprintf(tw, "    %s\t%d\t%d\t%.1f / %.1f\t%d\t%d\t%.1f / %.1f\n", x.Node, x.LiveRequests, x.LiveErrors, x.LiveP50, x.LiveP99,
			x.CanaryRequest, x.CanaryErrors, x.CanaryP50, x.CanaryP99)
	}
	tw.Flush()
}

func describeStep(kind string, s any) string {
	b, _ := json.Marshal(s)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return kind + " " + strings.TrimSpace(string(m[kind]))
}

func inputs(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.4g", k, m[k])
	}
	return strings.Join(parts, " ")
}
