package shadowtest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/gateway"
)

// waitFor bounds every poll; generous for two shared cores under -race,
// never reached when things work.
const waitFor = 15 * time.Second

// header is the top of every test config: ephemeral loopback ports, access
// logs on (they run on the request and shadow paths, so the race detector
// sees them) and a short shutdown grace.
//
// A body starting with noAccessLog turns the access log off, for tests
// that send thousands of requests and look at no log line.
func header(dir, body string) string {
	access := !strings.HasPrefix(body, noAccessLog)
	return "listen: 127.0.0.1:0\n" +
		"admin: {listen: 127.0.0.1:0}\n" +
		"data_dir: " + strconv.Quote(filepath.Join(dir, "data")) + "\n" +
		"log: {level: info, access: " + strconv.FormatBool(access) + "}\n" +
		"server: {shutdown_grace: 5s}\n"
}

const noAccessLog = "# no access log\n"

// gw is a started gateway.
type gw struct {
	*gateway.Gateway
	URL      string
	AdminURL string
	Path     string // the config file, for Reload
	Dir      string
	Log      *syncBuffer
	client   *http.Client // for /metrics
	shutOnce sync.Once
	shutErr  error
}

// parseConfig writes text (after the standard header) to umbra.yaml in dir
// and parses it with config.Parse, as the loader would.
func parseConfig(t *testing.T, dir, body string) (*config.Config, string, error) {
	t.Helper()
	path := filepath.Join(dir, "umbra.yaml")
	text := header(dir, body) + body
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, []byte(text))
	return cfg, text, err
}

// startGW parses body (after the standard header) and starts a gateway on
// it; cleanup shuts it down (once) and prints its log when the test failed.
func startGW(t *testing.T, body string) *gw {
	t.Helper()
	dir := t.TempDir()
	cfg, text, err := parseConfig(t, dir, body)
	if err != nil {
		t.Fatalf("config.Parse:\n%v\n--- config ---\n%s", err, text)
	}
	logs := &syncBuffer{}
	g, err := gateway.New(cfg, gateway.Options{Version: "shadowtest", LogOutput: logs})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := g.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	w := &gw{Gateway: g, URL: "http://" + g.Addr(), AdminURL: "http://" + g.AdminAddr(),
		Path: filepath.Join(dir, "umbra.yaml"), Dir: dir, Log: logs, client: newClient(t, 4)}
	t.Cleanup(func() {
		_ = w.shutdown()
		if t.Failed() {
			t.Logf("gateway log (tail):\n%s", tail(logs.String(), 60))
		}
	})
	return w
}

func (g *gw) shutdown() error {
	g.shutOnce.Do(func() {
		g.shutErr = g.Shutdown()
		g.client.CloseIdleConnections()
	})
	return g.shutErr
}

// rewrite replaces the config file (after the standard header), for Reload.
func (g *gw) rewrite(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(g.Path, []byte(header(g.Dir, body)+body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// apply parses body and applies it to the running gateway.
func (g *gw) apply(t *testing.T, body string) {
	t.Helper()
	g.rewrite(t, body)
	if err := g.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// syncBuffer is a bytes.Buffer safe for concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the log lines containing every one of subs.
func (s *syncBuffer) lines(subs ...string) []string {
	var out []string
	for _, l := range strings.Split(s.String(), "\n") {
		ok := true
		for _, sub := range subs {
			if !strings.Contains(l, sub) {
				ok = false
				break
			}
		}
		if ok && l != "" {
			out = append(out, l)
		}
	}
	return out
}

// newClient returns a client with its own pool, closed at cleanup.
func newClient(t *testing.T, conns int) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true, Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitFor}
}

// result is a fully read response.
type result struct {
	Status int
	Header http.Header
	Body   []byte
}

// send performs one request and reads the answer. hdr are name/value
// pairs; "Host" sets the request host.
func send(c *http.Client, method, url string, body io.Reader, hdr ...string) (result, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return result{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, fmt.Errorf("reading body: %w", err)
	}
	return result{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// do is send that fails the test on error.
func do(t *testing.T, c *http.Client, method, url string, body io.Reader, hdr ...string) result {
	t.Helper()
	r, err := send(c, method, url, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// ---- upstreams ----

// seen is one request as an upstream received it.
type seen struct {
	Method string
	Host   string
	Path   string
	Query  string
	URI    string // the request target as sent
	Header http.Header
	Size   int
	SHA    string
	Remote string
}

// upstream is an in-process HTTP server that records what it receives.
type upstream struct {
	*httptest.Server
	name string
	hits atomic.Int64
	mu   sync.Mutex
	reqs []seen
}

// newUpstream starts an upstream. A nil handler answers 200 with the body
// "live:<name>". Every request is recorded (with the sha256 of its body)
// before the handler runs; the body is read first unless h is set.
func newUpstream(t *testing.T, name string, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h != nil {
			u.record(r, nil)
			h(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		u.record(r, body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "answer from "+name+"\n")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) record(r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	s := seen{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, URI: r.RequestURI, Header: r.Header.Clone(),
		Size: len(body), SHA: hex.EncodeToString(sum[:]), Remote: r.RemoteAddr}
	u.mu.Lock()
	u.reqs = append(u.reqs, s)
	u.mu.Unlock()
	u.hits.Add(1)
}

// seen returns a copy of the recorded requests.
func (u *upstream) seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs)
}

// byHeader returns the recorded requests whose header name equals value.
func (u *upstream) byHeader(name, value string) []seen {
	var out []seen
	for _, s := range u.seen() {
		if s.Header.Get(name) == value {
			out = append(out, s)
		}
	}
	return out
}

func (u *upstream) reset() {
	u.mu.Lock()
	u.reqs = nil
	u.mu.Unlock()
	u.hits.Store(0)
}

// rawServer accepts TCP connections and serves each with fn (in its own
// goroutine). Cleanup closes the listener and every connection and waits
// for the handlers.
type rawServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	count atomic.Int64
}

func newRawServer(t *testing.T, fn func(c net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.count.Add(1)
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				fn(c)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *rawServer) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the server; it is idempotent.
func (s *rawServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// ---- metrics ----

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics parses the text exposition format (enough of it for
// umbra's metrics: no timestamps, simple label values).
func parseMetrics(text string) []sample {
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.name = line[:i]
			rest = line[i+1:]
			for {
				rest = strings.TrimLeft(rest, ", ")
				if strings.HasPrefix(rest, "}") {
					rest = rest[1:]
					break
				}
				eq := strings.Index(rest, `="`)
				if eq < 0 {
					break
				}
				key := rest[:eq]
				rest = rest[eq+2:]
				var val strings.Builder
				for len(rest) > 0 && rest[0] != '"' {
					if rest[0] == '\\' && len(rest) > 1 {
						if rest[1] == 'n' {
							val.WriteByte('\n')
						} else {
							val.WriteByte(rest[1])
						}
						rest = rest[2:]
						continue
					}
					val.WriteByte(rest[0])
					rest = rest[1:]
				}
				rest = strings.TrimPrefix(rest, `"`)
				s.labels[key] = val.String()
			}
		} else if i >= 0 {
			s.name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// metrics is one scrape.
type metrics []sample

// get sums the samples of name whose labels include want; ok is false
// when none matched.
func (m metrics) get(name string, want map[string]string) (sum float64, ok bool) {
	for _, s := range m {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
				break
			}
		}
		if match {
			sum += s.value
			ok = true
		}
	}
	return sum, ok
}

// shadow returns umbra_shadow_requests_total{route,target,outcome}.
func (m metrics) shadow(route, target, outcome string) float64 {
	v, _ := m.get("umbra_shadow_requests_total", L("route", route, "target", target, "outcome", outcome))
	return v
}

// outcomes returns every non-zero outcome of a target, for messages.
func (m metrics) outcomes(route, target string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.name == "umbra_shadow_requests_total" && s.labels["route"] == route && s.labels["target"] == target && s.value != 0 {
			out[s.labels["outcome"]] = s.value
		}
	}
	return out
}

// gauge returns a shadow gauge of one target.
func (m metrics) gauge(name, route, target string) float64 {
	v, _ := m.get(name, L("route", route, "target", target))
	return v
}

// L builds a label map from pairs.
func L(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// scrape fetches and parses the admin /metrics.
func (g *gw) scrape(t *testing.T) metrics {
	t.Helper()
	m, err := g.tryScrape()
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return m
}

func (g *gw) tryScrape() (metrics, error) {
	r, err := send(g.client, "GET", g.AdminURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, fmt.Errorf("/metrics: status %d", r.Status)
	}
	return metrics(parseMetrics(string(r.Body))), nil
}

// waitMetrics polls /metrics until cond holds and returns that scrape.
func (g *gw) waitMetrics(t *testing.T, what string, cond func(m metrics) (bool, string)) metrics {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	var last string
	for {
		m, err := g.tryScrape()
		if err != nil {
			last = err.Error()
		} else {
			ok, msg := cond(m)
			if ok {
				return m
			}
			last = msg
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitShadow polls until umbra_shadow_requests_total{route,target,outcome}
// satisfies ok (for example "== 3" via eq(3)).
func (g *gw) waitShadow(t *testing.T, route, target, outcome string, ok func(float64) bool, desc string) metrics {
	t.Helper()
	return g.waitMetrics(t, fmt.Sprintf("%s/%s %s %s", route, target, outcome, desc), func(m metrics) (bool, string) {
		return ok(m.shadow(route, target, outcome)), fmt.Sprint(m.outcomes(route, target))
	})
}

func eq(n float64) func(float64) bool      { return func(v float64) bool { return v == n } }
func atLeast(n float64) func(float64) bool { return func(v float64) bool { return v >= n } }

// settled waits until every copy of a target got its final outcome: no
// copy queued or in flight, every queued copy sent, every sent copy
// answered (ok, status_5xx or error_*).
func (g *gw) settled(t *testing.T, route, target string) metrics {
	t.Helper()
	return g.waitMetrics(t, route+"/"+target+" settled", func(m metrics) (bool, string) {
		o := m.outcomes(route, target)
		q := m.gauge("umbra_shadow_queue_length", route, target)
		f := m.gauge("umbra_shadow_in_flight", route, target)
		return q == 0 && f == 0 && o["queued"] == o["sent"] && o["sent"] == answered(o),
			fmt.Sprintf("queue %v in flight %v outcomes %v", q, f, o)
	})
}

// quiet waits until a target has no copy queued or in flight and its
// counters stopped moving (for targets whose breaker also drops queued
// copies, so queued == sent does not hold).
func (g *gw) quiet(t *testing.T, route, target string) metrics {
	t.Helper()
	var prev string
	return g.waitMetrics(t, route+"/"+target+" quiet", func(m metrics) (bool, string) {
		o := m.outcomes(route, target)
		q := m.gauge("umbra_shadow_queue_length", route, target)
		f := m.gauge("umbra_shadow_in_flight", route, target)
		cur := fmt.Sprintf("queue %v in flight %v outcomes %v", q, f, o)
		ok := q == 0 && f == 0 && o["sent"] == answered(o) && cur == prev
		prev = cur
		if !ok {
			time.Sleep(40 * time.Millisecond)
		}
		return ok, cur
	})
}

// answered is the number of sent copies with a final answer.
func answered(o map[string]float64) float64 {
	return o["ok"] + o["status_5xx"] + o["error_connect"] + o["error_timeout"] + o["error_reset"] + o["error_other"]
}

// ---- goroutines ----

// goroutines returns runtime.NumGoroutine once it has been stable for a
// moment (goroutines of finished tests may still be exiting).
func goroutines() int {
	n := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		time.Sleep(5 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

// waitGoroutines polls until the goroutine count is back to at most base,
// and dumps the goroutines when it is not.
func waitGoroutines(t *testing.T, base int, when string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%s: %d goroutines, want at most the baseline %d\n%s", when, n, base, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- latency ----

// percentile returns the p-th percentile (0 < p <= 1) of sorted durations,
// by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

type latency struct{ median, p99, max time.Duration }

func summarize(d []time.Duration) latency {
	s := slices.Clone(d)
	slices.Sort(s)
	return latency{median: percentile(s, 0.5), p99: percentile(s, 0.99), max: s[len(s)-1]}
}

func (l latency) String() string {
	return fmt.Sprintf("median %v p99 %v max %v", l.median.Round(time.Microsecond), l.p99.Round(time.Microsecond), l.max.Round(time.Microsecond))
}

// key is the i-th caller key of the sampling tests.
func key(i int) string { return "user-" + strconv.Itoa(i) }
