package comparetest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/diffs"

	"github.com/umbragw/umbra/test/testkit"
)

// waitFor bounds every poll: generous for two shared cores under -race,
// never reached when things work. Polls return as soon as the condition
// holds; no assertion rests on a fixed sleep.
const waitFor = 20 * time.Second

// ---- upstreams ----

// seen is one request as an upstream received it.
type seen struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// upstream is a real HTTP server that records what it receives.
type upstream struct {
	*httptest.Server
	name string
	hits atomic.Int64
	mu   sync.Mutex
	reqs []seen
}

// newUpstream starts an upstream whose handler h gets the request with
// its body already read (and recorded); h reads the id (last path segment)
// with id(r).
func newUpstream(t *testing.T, name string, h func(w http.ResponseWriter, r *http.Request, body []byte)) *upstream {
	t.Helper()
	u := &upstream{name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		u.mu.Unlock()
		u.hits.Add(1)
		h(w, r, body)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs)
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
type trio struct{ v1, v1b, v2 *upstream }

// newTrio starts v1 and v1b with the same handler live and v2 with cand.
func newTrio(t *testing.T, live, cand func(w http.ResponseWriter, r *http.Request, body []byte)) trio {
	return trio{newUpstream(t, "v1", live), newUpstream(t, "v1b", live), newUpstream(t, "v2", cand)}
}

// expand replaces {v1}, {v1b} and {v2} in a config with the upstreams' URLs
// and prepends the backends section.
func (tr trio) expand(routes string) string {
	return "backends:\n" +
		"  v1: {endpoints: [\"" + tr.v1.URL + "\"]}\n" +
		"  v1b: {endpoints: [\"" + tr.v1b.URL + "\"]}\n" +
		"  v2: {endpoints: [\"" + tr.v2.URL + "\"]}\n" + routes
}

// ---- gateway ----

// poll waits up to waitFor for a condition, checking every 10 ms.
var poll = testkit.Poll{Timeout: waitFor, Interval: 10 * time.Millisecond}

// gw is a started gateway.
type gw struct {
	*testkit.Gateway
	DataDir string
	body    string // config after the standard header, for restart
	client  *http.Client
	once    sync.Once
}

// header is the top of every config: ephemeral loopback ports, access
// logs on (they run on the request and shadow paths) and a short grace.
func header(dataDir string) string {
	return "listen: 127.0.0.1:0\n" +
		"admin: {listen: 127.0.0.1:0}\n" +
		"data_dir: " + strconv.Quote(dataDir) + "\n" +
		"log: {level: info, access: true}\n" +
		"server: {shutdown_grace: 5s}\n"
}

// start parses body (after the standard header) with the real config
// parser and starts a gateway on dataDir ("" for a new temporary one).
// Cleanup shuts it down, failing the test if that fails, and prints its
// log if the test failed.
func start(t *testing.T, dataDir, body string) *gw {
	t.Helper()
	if dataDir == "" {
		dataDir = filepath.Join(t.TempDir(), "data")
	}
	path := filepath.Join(t.TempDir(), "umbra.yaml")
	w := &gw{Gateway: testkit.Start(t, "comparetest", path, header(dataDir)+body), DataDir: dataDir,
		body: body, client: testkit.NewClient(t, 64, waitFor)}
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop shuts the gateway down (once): it drains, stops the shadow senders
// and writes the comparison results to the store.
func (g *gw) stop(t *testing.T) {
	t.Helper()
	g.once.Do(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		g.client.CloseIdleConnections()
	})
}

// restart stops g and starts a new gateway on the same data_dir and config.
func (g *gw) restart(t *testing.T) *gw {
	t.Helper()
	g.stop(t)
	return start(t, g.DataDir, g.body)
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
	r, err := testkit.Send(g.client, method, g.URL+path, rd, hdr...)
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

// admin performs an admin API call and decodes a JSON answer into out.
func (g *gw) admin(t *testing.T, method, path string, in any, wantStatus int, out any) []byte {
	t.Helper()
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, g.AdminURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("admin %s %s: %d %s, want %d", method, path, resp.StatusCode, b, wantStatus)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("admin %s %s: Content-Type %q, want JSON", method, path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("admin %s %s: %v\n%s", method, path, err, b)
		}
	}
	return b
}

// report is GET /api/v1/diffs[/route].
func (g *gw) report(t *testing.T, route string) diffs.Report {
	t.Helper()
	p := "/api/v1/diffs"
	if route != "" {
		p += "/" + url.PathEscape(route)
	}
	var rep diffs.Report
	g.admin(t, "GET", p, nil, http.StatusOK, &rep)
	return rep
}

// endpoint finds one endpoint in the report of its route.
func (g *gw) endpoint(t *testing.T, route, endpoint string) (diffs.EndpointReport, bool) {
	t.Helper()
	for _, r := range g.report(t, route).Routes {
		if r.Route != route {
			t.Fatalf("GET /api/v1/diffs/%s returned route %q", route, r.Route)
		}
		for _, e := range r.Endpoints {
			if e.Endpoint == endpoint {
				return e, true
			}
		}
	}
	return diffs.EndpointReport{}, false
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
	deadline := time.Now().Add(waitFor)
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
				route, endpoint, processed(last), waitFor, n, last, g.rawReport(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (g *gw) rawReport(t *testing.T) string {
	t.Helper()
	return string(g.admin(t, "GET", "/api/v1/diffs", nil, http.StatusOK, nil))
}

// fields is GET /api/v1/diffs/{route}/fields?endpoint=.
func (g *gw) fields(t *testing.T, route, endpoint string) []diffs.FieldReport {
	t.Helper()
	var out struct {
		Route    string              `json:"route"`
		Endpoint string              `json:"endpoint"`
		Fields   []diffs.FieldReport `json:"fields"`
	}
	g.admin(t, "GET", "/api/v1/diffs/"+url.PathEscape(route)+"/fields?endpoint="+url.QueryEscape(endpoint), nil, http.StatusOK, &out)
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
	raw = g.admin(t, "GET", samplesPath(route, endpoint, field), nil, http.StatusOK, &out)
	return out.Samples, raw
}

func samplesPath(route, endpoint, field string) string {
	return "/api/v1/diffs/" + url.PathEscape(route) + "/samples?endpoint=" + url.QueryEscape(endpoint) + "&field=" + url.QueryEscape(field)
}

// mark is POST /api/v1/diffs/{route}/noise.
func (g *gw) mark(t *testing.T, route, endpoint, field string, noise bool) {
	t.Helper()
	var out map[string]any
	g.admin(t, "POST", "/api/v1/diffs/"+url.PathEscape(route)+"/noise",
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
	g.admin(t, "DELETE", p, nil, http.StatusOK, &out)
	if out.N == nil {
		t.Fatalf("DELETE %s: no reset_endpoints in the answer", p)
	}
	return *out.N
}

// field finds a field by name.
func field(list []diffs.FieldReport, name string) (diffs.FieldReport, bool) {
	for _, f := range list {
		if f.Field == name {
			return f, true
		}
	}
	return diffs.FieldReport{}, false
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
	for _, s := range g.scrape(t, "umbra_compare_total") {
		if s.Labels["route"] == route && (endpoint == "" || s.Labels["endpoint"] == endpoint) &&
			(result == "" || s.Labels["result"] == result) {
			sum += s.Value
		}
	}
	return sum
}

// scrape returns the samples of one metric family from the admin /metrics.
func (g *gw) scrape(t *testing.T, name string) testkit.Metrics {
	t.Helper()
	return testkit.Scrape(t, g.client, g.AdminURL).Named(name)
}
