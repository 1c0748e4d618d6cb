package testkit

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one sample of the Prometheus text format. Histograms and
// summaries appear as their _bucket, _sum and _count (or quantile) samples.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is one parsed scrape.
type Metrics []Sample

// ParseMetrics parses the Prometheus text exposition format.
func ParseMetrics(text string) (Metrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	var out Metrics
	for _, f := range families {
		vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{}, f)
		if err != nil {
			return nil, err
		}
		for _, s := range vec {
			out = append(out, sampleOf(s))
		}
	}
	return out, nil
}

// sampleOf converts a decoded sample, moving its name out of its labels.
func sampleOf(s *model.Sample) Sample {
	labels := make(map[string]string, len(s.Metric))
	for k, v := range s.Metric {
		labels[string(k)] = string(v)
	}
	delete(labels, model.MetricNameLabel)
	return Sample{Name: string(s.Metric[model.MetricNameLabel]), Labels: labels, Value: float64(s.Value)}
}

// TryScrape fetches and parses adminURL's /metrics.
func TryScrape(c *http.Client, adminURL string) (Metrics, error) {
	r, err := Send(c, http.MethodGet, adminURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, fmt.Errorf("/metrics: status %d: %s", r.Status, r.Body)
	}
	return ParseMetrics(string(r.Body))
}

// Scrape is TryScrape that fails the test on error.
func Scrape(t testing.TB, c *http.Client, adminURL string) Metrics {
	t.Helper()
	m, err := TryScrape(c, adminURL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return m
}

// MustParseMetrics is ParseMetrics that fails the test on error.
func MustParseMetrics(t testing.TB, text string) Metrics {
	t.Helper()
	m, err := ParseMetrics(text)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return m
}

// Sum adds the samples of name whose labels include want; found is false
// when none matched.
func (m Metrics) Sum(name string, want map[string]string) (total float64, found bool) {
	for _, s := range m.Named(name) {
		if hasLabels(s, want) {
			total += s.Value
			found = true
		}
	}
	return total, found
}

// Named returns the samples called name.
func (m Metrics) Named(name string) Metrics {
	var out Metrics
	for _, s := range m {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// hasLabels reports whether s carries every label of want (a missing label
// counts as the empty value).
func hasLabels(s Sample, want map[string]string) bool {
	for k, v := range want {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}

// Labels builds a label map from name/value pairs.
func Labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
