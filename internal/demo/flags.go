package demo

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/umbragw/umbra/internal/gateway"
)

// printFlagTour shows caller-controlled rollout: the OFREP answer a UI
// would get for alice, and the dark endpoint open to her and not to bob.
func printFlagTour(w io.Writer, g *gateway.Gateway) {
	base := "http://" + g.Addr()
	client := &http.Client{Timeout: 5 * time.Second}
	fmt.Fprintln(w, "Feature flag geo-report (flagd format) opens the dark endpoint GET /v1/shortlinks/{id}/geo:")
	fmt.Fprintln(w)
	resp, err := client.Post(base+"/ofrep/v1/evaluate/flags/geo-report", "application/json",
		strings.NewReader(`{"context":{"targetingKey":"alice"}}`))
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(w, "  OFREP for alice: %s\n", strings.TrimSpace(string(body)))
	}
	for _, user := range []string{"alice", "bob"} {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/shortlinks/gh/geo", nil)
		req.Header.Set("X-User-ID", user)
		req.Header.Set("X-Client-ID", "demo-ui")
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			fmt.Fprintf(w, "  GET /v1/shortlinks/gh/geo as %-5s -> %d\n", user, resp.StatusCode)
		}
	}
	fmt.Fprintln(w)
}
