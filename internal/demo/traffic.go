package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/gateway"
)

// driveTraffic sends n requests as 50 different users: mostly reads, every
// tenth a write, as a small real client would.
func driveTraffic(ctx context.Context, base string, n int) error {
	client := &http.Client{Timeout: 5 * time.Second}
	ids := []string{"gh", "go", "docs", "missing"}
	for i := 0; i < n; i++ {
		var req *http.Request
		var err error
		if i%10 == 9 {
			body := fmt.Sprintf(`{"id":"demo-%d","url":"https://example.com/%d"}`, i, i)
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/shortlinks", strings.NewReader(body))
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/shortlinks/"+ids[i%len(ids)], nil)
		}
		if err != nil {
			return err
		}
		req.Header.Set("X-User-ID", fmt.Sprintf("user-%d", i%50))
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("demo traffic: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return nil
}

// waitForCopies gives the shadow senders a moment to finish: copies go out
// after the live answers, never before.
func waitForCopies(ctx context.Context, g *gateway.Gateway, v2 *service) {
	deadline := time.Now().Add(3 * time.Second)
	last := int64(-1)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if n := v2.hits.Load(); n == last && n > 0 {
			return
		}
		last = v2.hits.Load()
		time.Sleep(150 * time.Millisecond)
	}
}

// printShadowReport prints the shadow counters from the metrics registry,
// the same numbers /metrics shows.
func printShadowReport(w io.Writer, g *gateway.Gateway, n int, v1, v2 *service) {
	families, err := g.Metrics().Registry().Gather()
	if err != nil {
		fmt.Fprintln(w, "metrics:", err)
		return
	}
	counts := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "umbra_shadow_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["target"] == "shortlinks-v2" && m.GetCounter().GetValue() > 0 {
				counts[labels["outcome"]] += m.GetCounter().GetValue()
			}
		}
	}
	fmt.Fprintf(w, "Sent %d requests as 50 users. Users got shortlinks-v1's answers (%d served);\nshortlinks-v2 received %d shadow copies. Shadow outcomes for shortlinks-v2:\n\n", n, v1.hits.Load(), v2.hits.Load())
	outcomes := make([]string, 0, len(counts))
	for o := range counts {
		outcomes = append(outcomes, o)
	}
	sort.Strings(outcomes)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, o := range outcomes {
		fmt.Fprintf(tw, "  %s\t%.0f\n", o, counts[o])
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// printDiffReport waits for the comparisons to finish and prints what
// differs: the regression found, the noise set aside.
func printDiffReport(ctx context.Context, w io.Writer, g *gateway.Gateway) {
	var rep diffs.Report
	for i := 0; i < 20 && ctx.Err() == nil; i++ {
		rep = g.Diffs().Report("shortlinks")
		if len(rep.Routes) > 0 && len(rep.Routes[0].Endpoints) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(w, "How shortlinks-v2 answers differ from shortlinks-v1 (noise measured against a second v1):")
	fmt.Fprintln(w)
	for _, r := range rep.Routes {
		for _, e := range r.Endpoints {
			fmt.Fprintf(w, "  %s: %d compared, %d differ\n", e.Endpoint, e.Compared, e.Differing)
			for _, f := range e.Regressions {
				fmt.Fprintf(w, "    REGRESSION  %-12s differs in %.0f%% of answers (%.0f%% between the two v1s) %v\n", f.Field, 100*f.RawRate, 100*f.NoiseRate, f.Kinds)
			}
			for _, f := range e.Noise {
				fmt.Fprintf(w, "    noise       %-12s differs in %.0f%% of answers (%.0f%% between the two v1s)\n", f.Field, 100*f.RawRate, 100*f.NoiseRate)
			}
		}
	}
	fmt.Fprintln(w)
}
