package comparetest

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/diffs"

	"github.com/umbragw/umbra/test/testkit"
)

// newUpstream starts an upstream whose handler h gets the request with
// its body already read (and recorded); h reads the id (last path segment)
// with id(r).
func newUpstream(t *testing.T, name string, h testkit.BodyHandler) *testkit.Upstream {
	return testkit.NewUpstream(t, name, h)
}

// id is the last path segment of the request.
func id(r *http.Request) string { return r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:] }

// writeJSON answers 200 with a JSON document (already encoded).
func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

// trio is the three upstreams of a comparison: v1 (live), v1b (the
// secondary, a second v1) and v2 (the candidate).
type trio struct{ v1, v1b, v2 *testkit.Upstream }

// newTrio starts v1 and v1b with the same handler live and v2 with cand.
func newTrio(t *testing.T, live, cand testkit.BodyHandler) trio {
	return trio{newUpstream(t, "v1", live), newUpstream(t, "v1b", live), newUpstream(t, "v2", cand)}
}

// expand replaces {v1}, {v1b} and {v2} in a config with the upstreams' URLs
// and prepends the backends section.
func (tr trio) expand(routes string) string {
	return testkit.Backends("v1", tr.v1.URL, "v1b", tr.v1b.URL, "v2", tr.v2.URL) + routes
}

// ---- gateway ----

// gw is a started gateway.
type gw struct{ *testkit.Gateway }

// start parses body (after the standard top, access logs on: they run on
// the request and shadow paths) with the real config parser and starts a
// gateway on dataDir ("" for a new temporary one). Cleanup shuts it down,
// failing the test if that fails.
func start(t *testing.T, dataDir, body string) *gw {
	t.Helper()
	return strict(t, testkit.Launch(t, "comparetest", testkit.Top{DataDir: dataDir, Access: true}, body))
}

// strict fails the test at cleanup if g does not shut down cleanly: it
// drains, stops the shadow senders and writes the comparison results to
// the store.
func strict(t *testing.T, g *testkit.Gateway) *gw {
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &gw{g}
}

func (g *gw) stop(t *testing.T) {
	t.Helper()
	if err := g.Stop(); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// restart stops g and starts a new gateway on the same data_dir and config.
func (g *gw) restart(t *testing.T) *gw {
	t.Helper()
	return strict(t, g.Restart(t))
}

// ---- client ----

// result is a fully read response and how long it took.
type result struct {
	testkit.Response
	Latency time.Duration
}

// send performs one request through the gateway; hdr are name/value pairs.
func (g *gw) send(method, path string, body []byte, hdr ...string) (result, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	start := time.Now()
	r, err := testkit.Send(g.Client, method, g.URL+path, rd, hdr...)
	return result{Response: r, Latency: time.Since(start)}, err
}

// do is send that fails the test on error.
func (g *gw) do(t *testing.T, method, path string, body []byte, hdr ...string) result {
	t.Helper()
	r, err := g.send(method, path, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// get sends n GETs to path+i (i from 0) and checks each live answer is
// exactly what want(i) says v1 answers.
func (g *gw) getN(t *testing.T, prefix string, n int, want func(i int) string, hdr ...string) {
	t.Helper()
	for i := 0; i < n; i++ {
		p := prefix + strconv.Itoa(i)
		r := g.do(t, "GET", p, nil, hdr...)
		if want != nil && string(r.Body) != want(i) {
			t.Fatalf("GET %s: live answer %d %q, want v1's %q", p, r.Status, r.Body, want(i))
		}
	}
}

// ---- admin API ----

// report is GET /api/v1/diffs[/route].
func (g *gw) report(t *testing.T, route string) diffs.Report {
	t.Helper()
	p := "/api/v1/diffs"
	if route != "" {
		p += "/" + url.PathEscape(route)
	}
	var rep diffs.Report
	g.Admin(t, "GET", p, nil, http.StatusOK, &rep)
	return rep
}

// endpoint finds one endpoint in the report of its route.
func (g *gw) endpoint(t *testing.T, route, endpoint string) (diffs.EndpointReport, bool) {
	t.Helper()
	rep := g.report(t, route)
	for _, r := range rep.Routes {
		if r.Route != route {
			t.Fatalf("GET /api/v1/diffs/%s returned route %q", route, r.Route)
		}
	}
	return testkit.Endpoint(rep, endpoint)
}

// processed counts the exchanges an endpoint has recorded: compared or
// skipped for any reason.
func processed(e diffs.EndpointReport) int64 {
	n := e.Compared
	for _, v := range e.Skipped {
		n += v
	}
	return n
}

// wait polls the endpoint until it has recorded exactly n exchanges (more
// is a failure: every request is compared at most once) and returns it.
func (g *gw) wait(t *testing.T, route, endpoint string, n int64) diffs.EndpointReport {
	t.Helper()
	deadline := time.Now().Add(testkit.Wait.Timeout)
	var last diffs.EndpointReport
	for {
		e, ok := g.endpoint(t, route, endpoint)
		if ok {
			last = e
			if got := processed(e); got == n {
				return e
			} else if got > n {
				t.Fatalf("route %s endpoint %s recorded %d exchanges, want %d: %+v", route, endpoint, got, n, e)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("route %s endpoint %q: %d exchanges recorded after %v, want %d (last: %+v; report: %s)",
				route, endpoint, processed(last), testkit.Wait.Timeout, n, last, g.rawReport(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (g *gw) rawReport(t *testing.T) string {
	t.Helper()
	return string(g.Admin(t, "GET", "/api/v1/diffs", nil, http.StatusOK, nil))
}

// fields is GET /api/v1/diffs/{route}/fields?endpoint=.
func (g *gw) fields(t *testing.T, route, endpoint string) []diffs.FieldReport {
	t.Helper()
	var out struct {
		Route    string              `json:"route"`
		Endpoint string              `json:"endpoint"`
		Fields   []diffs.FieldReport `json:"fields"`
	}
	g.Admin(t, "GET", "/api/v1/diffs/"+url.PathEscape(route)+"/fields?endpoint="+url.QueryEscape(endpoint), nil, http.StatusOK, &out)
	if out.Route != route || out.Endpoint != endpoint {
		t.Errorf("fields answer names route %q endpoint %q, want %q %q", out.Route, out.Endpoint, route, endpoint)
	}
	return out.Fields
}

// samples is GET /api/v1/diffs/{route}/samples?endpoint=&field=; raw is
// the JSON answer.
func (g *gw) samples(t *testing.T, route, endpoint, field string) (samples []diffs.Sample, raw []byte) {
	t.Helper()
	var out struct {
		Samples []diffs.Sample `json:"samples"`
	}
	raw = g.Admin(t, "GET", samplesPath(route, endpoint, field), nil, http.StatusOK, &out)
	return out.Samples, raw
}

func samplesPath(route, endpoint, field string) string {
	return "/api/v1/diffs/" + url.PathEscape(route) + "/samples?endpoint=" + url.QueryEscape(endpoint) + "&field=" + url.QueryEscape(field)
}

// mark is POST /api/v1/diffs/{route}/noise.
func (g *gw) mark(t *testing.T, route, endpoint, field string, noise bool) {
	t.Helper()
	var out map[string]any
	g.Admin(t, "POST", "/api/v1/diffs/"+url.PathEscape(route)+"/noise",
		map[string]any{"endpoint": endpoint, "field": field, "noise": noise}, http.StatusOK, &out)
	if out["noise"] != noise || out["field"] != field {
		t.Errorf("POST noise answered %v", out)
	}
}

// reset is DELETE /api/v1/diffs[/route]; it returns reset_endpoints.
func (g *gw) reset(t *testing.T, route string) int {
	t.Helper()
	p := "/api/v1/diffs"
	if route != "" {
		p += "/" + url.PathEscape(route)
	}
	var out struct {
		N *int `json:"reset_endpoints"`
	}
	g.Admin(t, "DELETE", p, nil, http.StatusOK, &out)
	if out.N == nil {
		t.Fatalf("DELETE %s: no reset_endpoints in the answer", p)
	}
	return *out.N
}

// field finds a field by name.
func field(list []diffs.FieldReport, name string) (diffs.FieldReport, bool) {
	return testkit.Field(name, list)
}

func names(list []diffs.FieldReport) []string {
	out := make([]string, len(list))
	for i, f := range list {
		out[i] = f.Field
	}
	return out
}

// ---- metrics ----

// compareTotal reads umbra_compare_total{route,endpoint,result} from the
// admin /metrics (0 when absent).
func (g *gw) compareTotal(t *testing.T, route, endpoint, result string) float64 {
	t.Helper()
	var sum float64
	for _, s := range g.Scrape(t).Named("umbra_compare_total") {
		if s.Labels["route"] == route && (endpoint == "" || s.Labels["endpoint"] == endpoint) &&
			(result == "" || s.Labels["result"] == result) {
			sum += s.Value
		}
	}
	return sum
}
