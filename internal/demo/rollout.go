package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/umbragw/umbra/internal/gateway"
	"github.com/umbragw/umbra/internal/rollout"
)

// rolloutLimit bounds how long the demo waits for its rollout to finish.
const rolloutLimit = 90 * time.Second

// runRollout drives steady traffic from 200 users while the accelerated
// rollout runs, and prints each decision as umbra makes it.
func runRollout(ctx context.Context, w io.Writer, g *gateway.Gateway) error {
	ctx, cancel := context.WithTimeout(ctx, rolloutLimit)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(worker int) {
			defer wg.Done()
			steadyTraffic(ctx, "http://"+g.Addr(), worker)
		}(i)
	}
	fmt.Fprintln(w, "Rolling out shortlinks-v2 (accelerated plan: shadow, canary 10%, canary 50%, promote):")
	fmt.Fprintln(w)
	seen := 0
	for ctx.Err() == nil {
		c, ok := g.Rollouts().Get("shortlinks")
		if !ok {
			break
		}
		st := c.Status()
		for _, d := range st.Decisions[min(seen, len(st.Decisions)):] {
			if d.Action != "hold" {
				fmt.Fprintf(w, "  %s  step %d  weight %3g%%  %-8s %s\n", d.At.Format("15:04:05.0"), d.Step+1, d.Weight, d.Action, d.Reason)
			}
		}
		seen = len(st.Decisions)
		if st.Phase != rollout.Running {
			fmt.Fprintf(w, "\nRollout %s.\n\n", st.Phase)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	return nil
}

// steadyTraffic sends reads as 50 users per worker until ctx ends.
func steadyTraffic(ctx context.Context, base string, worker int) {
	client := &http.Client{Timeout: 5 * time.Second}
	ids := []string{"gh", "go", "docs"}
	for i := 0; ctx.Err() == nil; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/shortlinks/"+ids[i%len(ids)], nil)
		if err != nil {
			return
		}
		req.Header.Set("X-User-ID", fmt.Sprintf("user-%d-%d", worker, i%50))
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(5 * time.Millisecond)
	}
}
