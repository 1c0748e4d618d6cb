package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/umbragw/umbra/internal/config"
)

// webhooks calls the rollout's optional hooks. The answer decides: 2xx
// goes on, 410 Gone aborts, anything else or no answer holds the rollout
// until the next evaluation asks again.
type webhooks struct {
	beforeStep, confirmPromotion, onRollback string
	client                                   *http.Client
}

func newWebhooks(c *config.Webhooks) *webhooks {
	return &webhooks{beforeStep: c.BeforeStep, confirmPromotion: c.ConfirmPromotion, onRollback: c.OnRollback,
		client: &http.Client{Timeout: c.Timeout.D()}}
}

// ask posts the event and reports whether the rollout may go on; why is
// "abort" on 410 and a short reason otherwise.
func (w *webhooks) ask(url string, event map[string]any) (ok bool, why string) {
	if url == "" {
		return true, ""
	}
	status, err := w.post(url, event)
	switch {
	case err != nil:
		return false, fmt.Sprintf("%s did not answer: %v", url, err)
	case status >= 200 && status < 300:
		return true, ""
	case status == http.StatusGone:
		return false, string(Abort)
	}
	return false, fmt.Sprintf("%s answered %d", url, status)
}

// notify posts the event and ignores the answer.
func (w *webhooks) notify(url string, event map[string]any) {
	if url != "" {
		_, _ = w.post(url, event)
	}
}

func (w *webhooks) post(url string, event map[string]any) (int, error) {
	body, err := json.Marshal(event)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.client.Timeout+time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "umbra-rollout")
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}
