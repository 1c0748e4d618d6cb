package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbragw/umbra/internal/config"
)

// adminClient talks to a running umbra's admin API.
type adminClient struct {
	base      string
	tokenFile string
}

func (a *adminClient) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.base, "admin", "http://127.0.0.1:9901", "admin API address of the running umbra")
	cmd.Flags().StringVar(&a.tokenFile, "token-file", "", "file with the admin bearer token")
}

// do sends a request and decodes a JSON answer into out (if non-nil).
func (a *adminClient) do(method, path string, body io.Reader, out any) error {
	base := a.base
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequest(method, strings.TrimRight(base, "/")+path, body)
	if err != nil {
		return &exitError{2, err}
	}
	if a.tokenFile != "" {
		tok, err := config.ReadToken(a.tokenFile)
		if err != nil {
			return &exitError{2, fmt.Errorf("token file: %w", err)}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return &exitError{1, fmt.Errorf("admin API: %w (is umbra running? see --admin)", err)}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode >= 300 {
		return &exitError{1, fmt.Errorf("admin API %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}
