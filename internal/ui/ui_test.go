package ui

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbragw/umbra/internal/compare"
	"github.com/umbragw/umbra/internal/diffs"
)

func TestHistoryRingKeepsTheLastTicksAndForgetsSilentSeries(t *testing.T) {
	h := NewHistory(4, 2)
	t0 := time.Unix(1000, 0)
	a, b, c := Key{Metric: "rps", Route: "a"}, Key{Metric: "rps", Route: "b"}, Key{Metric: "rps", Route: "c"}
	for i := 0; i < 6; i++ {
		vals := map[Key]float64{a: float64(i)}
		if i == 0 {
			vals[b] = 7
		}
		h.Record(t0.Add(time.Duration(i)*time.Second), vals)
	}
	pts := h.Series(a)
	if len(pts) != 4 || pts[0].V != 2 || pts[3].V != 5 || !pts[3].T.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("series a = %v, want the last 4 ticks 2..5", pts)
	}
	if h.Series(b) != nil {
		t.Errorf("series b, silent for a whole ring, is still held")
	}
	if got := h.Latest(a); got != 5 {
		t.Errorf("Latest = %v", got)
	}
	// The cap: a third series is refused while two are held.
	h.Record(t0.Add(10*time.Second), map[Key]float64{a: 1, b: 1, c: 1})
	if h.Len() != 2 || h.dropped != 1 {
		t.Errorf("held %d series, dropped %d; want 2 and 1", h.Len(), h.dropped)
	}
	// A gap is NaN.
	h.Record(t0.Add(11*time.Second), map[Key]float64{a: 3})
	if v := h.Latest(b); !math.IsNaN(v) {
		t.Errorf("b without a value in the last tick = %v, want NaN", v)
	}
}

func TestHistogramQuantileInterpolatesLikePrometheus(t *testing.T) {
	// 100 observations: 50 in (0, 1], 40 in (1, 2], 10 in (2, 4].
	h := &histogram{bounds: []float64{1, 2, 4, math.Inf(1)}, counts: []float64{50, 90, 100, 100}, total: 100}
	for _, c := range []struct{ q, want float64 }{{0.5, 1}, {0.25, 0.5}, {0.7, 1.5}, {0.95, 3}, {0.99, 3.8}} {
		if got := h.quantile(c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	prev := &histogram{bounds: h.bounds, counts: []float64{50, 50, 50, 50}, total: 50}
	if d := h.minus(prev); d.total != 50 || d.quantile(0.5) != 1.625 {
		t.Errorf("delta histogram: total %v, median %v; want 50 and 1.625", d.total, d.quantile(0.5))
	}
}

// TestSamplerRatesFromTheRegistry: requests/s, error rate and latency per
// route and role come from the counters and histograms the proxy fills,
// over the interval between two samples.
func TestSamplerRatesFromTheRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "umbra_requests_total"}, []string{"route", "backend", "role", "method", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "umbra_request_duration_seconds", Buckets: []float64{.001, .01, .1}}, []string{"route", "backend", "role"})
	shadow := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "umbra_shadow_requests_total"}, []string{"route", "target", "outcome"})
	reg.MustRegister(reqs, dur, shadow)
	h := NewHistory(10, 100)
	s := NewSampler(Sources{Metrics: reg}, h, time.Second)
	t0 := time.Unix(2000, 0)
	s.Sample(t0)
	for i := 0; i < 90; i++ {
		reqs.WithLabelValues("r", "v1", "live", "GET", "200").Inc()
		dur.WithLabelValues("r", "v1", "live").Observe(0.005)
	}
	for i := 0; i < 10; i++ {
		reqs.WithLabelValues("r", "v1", "live", "GET", "503").Inc()
		dur.WithLabelValues("r", "v1", "live").Observe(0.05)
	}
	shadow.WithLabelValues("r", "v2", "ok").Add(36)
	shadow.WithLabelValues("r", "v2", "status_5xx").Add(3)
	shadow.WithLabelValues("r", "v2", "error_timeout").Add(1)
	shadow.WithLabelValues("r", "v2", "dropped_queue_full").Add(4)
	shadow.WithLabelValues("r", "v2", "skipped_unsafe_method").Add(6)
	s.Sample(t0.Add(2 * time.Second))
	check := func(k Key, want float64) {
		t.Helper()
		if got := h.Latest(k); math.Abs(got-want) > 1e-9 {
			t.Errorf("%+v = %v, want %v", k, got, want)
		}
	}
	check(Key{Metric: "rps", Route: "r", A: "live"}, 50)
	check(Key{Metric: "error_rate", Route: "r", A: "live"}, 0.1)
	check(Key{Metric: "p50_ms", Route: "r", A: "live"}, 1+9*50.0/90)
	check(Key{Metric: "shadow", Route: "r", A: "v2", B: "sent"}, 20)
	check(Key{Metric: "shadow", Route: "r", A: "v2", B: "dropped"}, 2)
	check(Key{Metric: "shadow", Route: "r", A: "v2", B: "skipped"}, 3)
	st := s.Latest().Shadows[[2]string{"r", "v2"}]
	if st == nil || st.Group("sent") != 40 || len(st.Skipped()) != 2 || st.Skipped()[0].Name != "skipped_unsafe_method" {
		t.Errorf("shadow totals %+v", st)
	}
}

func TestChartDrawsGapsAndScales(t *testing.T) {
	t0 := time.Unix(0, 0)
	pts := []Point{{t0, 1}, {t0.Add(time.Second), math.NaN()}, {t0.Add(2 * time.Second), 3}, {t0.Add(3 * time.Second), 4}}
	svg := string(Chart{W: 200, H: 60, Unit: "/s", Lines: []Line{{Label: "x<y", Class: "live", Points: pts}}}.SVG())
	if strings.Count(svg, "M") != 2 {
		t.Errorf("a gap must start a new subpath: %s", svg)
	}
	if !strings.Contains(svg, ">5/s<") || !strings.Contains(svg, "x&lt;y") {
		t.Errorf("want the top of the axis at 5/s and the label escaped: %s", svg)
	}
	empty := string(Chart{W: 200, H: 60, Unit: "%"}.SVG())
	if !strings.Contains(empty, "no data yet") {
		t.Errorf("empty chart: %s", empty)
	}
}

// TestSampleViewMarksDifferences: the differing values are marked on
// each side; on the secondary as noise where it differs from live too.
func TestSampleViewMarksDifferences(t *testing.T) {
	s := &diffs.Sample{
		Method: "GET", URI: "/orders/1",
		Live:      &diffs.SampleResponse{Status: 200, Header: http.Header{"Etag": {"a"}}, Body: `{"total": 10, "at": "t1", "items": [{"id": 1}], "q": "<b>"}`},
		Candidate: &diffs.SampleResponse{Status: 200, Header: http.Header{"Etag": {"b"}}, Body: `{"total": "10", "at": "t2", "items": [{"id": 2}], "q": "<b>"}`},
		Secondary: &diffs.SampleResponse{Status: 200, Header: http.Header{"Etag": {"a"}}, Body: `{"total": 10, "at": "t3", "items": [{"id": 1}], "q": "<b>"}`},
		Differences: []compare.Difference{
			{Field: "$.at", Path: "$.at", Kind: "value"},
			{Field: "$.total", Path: "$.total", Kind: "type"},
			{Field: "$.items[*].id", Path: "$.items[0].id", Kind: "value"},
			{Field: "header:Etag", Kind: "header"},
		},
	}
	v := newSampleView(s, "$.total")
	if v.Differences[0].Field != "$.total" {
		t.Errorf("the shown field's differences come first: %v", v.Differences)
	}
	body := func(i int) string { return string(v.Sides[i].Body) }
	if !strings.Contains(body(0), `<mark class="base"><span class="num">10</span></mark>`) {
		t.Errorf("live total not marked: %s", body(0))
	}
	if !strings.Contains(body(1), `<mark class="diff"><span class="str">&#34;10&#34;</span></mark>`) {
		t.Errorf("candidate total not marked: %s", body(1))
	}
	sec := body(2)
	if !strings.Contains(sec, `<mark class="same"><span class="num">10</span></mark>`) ||
		!strings.Contains(sec, `<mark class="noise"><span class="str">&#34;t3&#34;</span></mark>`) ||
		!strings.Contains(sec, `<mark class="same"><span class="num">1</span></mark>`) {
		t.Errorf("secondary marks (same where it agrees with live, noise where not): %s", sec)
	}
	if strings.Contains(body(0), "<b>") {
		t.Errorf("body not escaped: %s", body(0))
	}
	if v.Sides[1].Headers[0].Mark != "diff" || v.Sides[2].Headers[0].Mark != "same" {
		t.Errorf("header marks: candidate %q, secondary %q", v.Sides[1].Headers[0].Mark, v.Sides[2].Headers[0].Mark)
	}
}

func TestParseContext(t *testing.T) {
	ctx, err := ParseContext("alice\ncountry = de\n# comment\nage=42\nbeta=true\n")
	if err != nil {
		t.Fatal(err)
	}
	if ctx["targetingKey"] != "alice" || ctx["country"] != "de" || ctx["age"] != 42.0 || ctx["beta"] != true {
		t.Errorf("context %v", ctx)
	}
	if _, err := ParseContext("=x"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("want a line error, got %v", err)
	}
}

func FuzzSampleBody(f *testing.F) {
	f.Add(`{"a": [1, {"b": "c"}], "d": null}`, "$.a[1].b")
	f.Add(`not json <script>`, "body")
	f.Add(`{"k'ey": true}`, "$['k\\'ey']")
	f.Fuzz(func(t *testing.T, body, path string) {
		r := render(&diffs.SampleResponse{Body: body}, map[string]bool{path: true}, true, "diff", nil)
		if strings.Contains(string(r.html), "<script") {
			t.Fatalf("unescaped body: %s", r.html)
		}
	})
}
