package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// adminTry calls the admin API with a JSON body (in, nil for none) and
// returns the status and body, or what went wrong. It sends the
// gateway's Token when set and touches no testing.T, so any goroutine may
// call it.
func (g *Gateway) adminTry(method, path string, in any) (int, []byte, error) {
	r, err := g.adminSend(method, path, in)
	return r.Status, r.Body, err
}

func (g *Gateway) adminSend(method, path string, in any) (Response, error) {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(b)
	}
	var hdr []string
	if in != nil {
		hdr = append(hdr, "Content-Type", "application/json")
	}
	if g.Token != "" {
		hdr = append(hdr, "Authorization", "Bearer "+g.Token)
	}
	return Send(g.Client, method, g.AdminURL+path, rd, hdr...)
}

// AdminDo is adminTry that fails the test when the call fails.
func (g *Gateway) AdminDo(t testing.TB, method, path string, in any) (int, []byte) {
	t.Helper()
	code, body, err := g.adminTry(method, path, in)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	return code, body
}

// Admin calls the admin API, fails the test unless the answer has
// wantStatus and a JSON body, decodes it into out (when not nil) and
// returns it.
func (g *Gateway) Admin(t testing.TB, method, path string, in any, wantStatus int, out any) []byte {
	t.Helper()
	r, err := g.adminSend(method, path, in)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	code, hdr, body := r.Status, r.Header, r.Body
	if code != wantStatus {
		t.Fatalf("admin %s %s: %d %s, want %d", method, path, code, body, wantStatus)
	}
	if !json.Valid(body) {
		t.Fatalf("admin %s %s: the answer is not JSON: %q", method, path, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("admin %s %s: Content-Type %q, want JSON", method, path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("admin %s %s: %v\n%s", method, path, err, body)
		}
	}
	return body
}

// GetJSON is GET path on the admin API, wanting 200, decoded into out.
func (g *Gateway) GetJSON(t testing.TB, path string, out any) []byte {
	t.Helper()
	return g.Admin(t, http.MethodGet, path, nil, http.StatusOK, out)
}

// Decode unmarshals JSON into a T, failing the test when it does not decode.
func Decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return v
}

// ---- metrics ----

// TryScrape fetches and parses the gateway's /metrics.
func (g *Gateway) TryScrape() (Metrics, error) { return TryScrape(g.Client, g.AdminURL) }

// Scrape is TryScrape that fails the test on error.
func (g *Gateway) Scrape(t testing.TB) Metrics {
	t.Helper()
	return Scrape(t, g.Client, g.AdminURL)
}

// ScrapeText returns the gateway's /metrics as text.
func (g *Gateway) ScrapeText(t testing.TB) string {
	t.Helper()
	r := Do(t, g.Client, http.MethodGet, g.AdminURL+"/metrics", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("/metrics: status %d: %s", r.Status, r.Body)
	}
	return string(r.Body)
}

// Metric is the sum of the samples of name whose labels include the
// name/value pairs labels (0 when none matched).
func (g *Gateway) Metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, _ := g.Scrape(t).Sum(name, Labels(labels...))
	return v
}

// WaitMetrics polls /metrics until cond holds and returns that scrape.
// cond's message describes what it saw, for the failure message.
func (g *Gateway) WaitMetrics(t testing.TB, what string, cond func(m Metrics) (bool, string)) Metrics {
	t.Helper()
	var m Metrics
	g.Poll.Until(t, what, func() (bool, string) {
		var err error
		if m, err = g.TryScrape(); err != nil {
			return false, err.Error()
		}
		return cond(m)
	})
	return m
}

// WaitMetric polls /metrics until name{labels} sums to want. Metrics are
// recorded after the response is written, so a client may see its answer
// a moment before the counter moves.
func (g *Gateway) WaitMetric(t testing.TB, name string, labels map[string]string, want float64) {
	t.Helper()
	g.WaitMetrics(t, fmt.Sprintf("%s%v == %v", name, labels, want), func(m Metrics) (bool, string) {
		got, _ := m.Sum(name, labels)
		return got == want, fmt.Sprint(got)
	})
}

// Filter returns the text lines of a scrape whose metric name starts with
// one of prefixes, for failure messages.
func Filter(text string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
