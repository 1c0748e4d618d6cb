package integration

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// base is the top of every test config: ephemeral loopback ports, access
// logs on (they run on the request path, so the race detector sees them)
// and a shutdown grace short enough that a test bug cannot hang cleanup.
const base = `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {level: info, access: true}
server: {shutdown_grace: 5s}
`

// waitFor is the deadline of every poll; generous for a loaded CI machine
// with the race detector, never reached when things work.
const waitFor = 10 * time.Second

// poll waits up to waitFor for a condition, checking every 10 ms.
var poll = testkit.Poll{Timeout: waitFor, Interval: 10 * time.Millisecond}

// gw is a started gateway with its addresses and log.
type gw struct {
	*testkit.Gateway
	dataDir string // the data_dir line startGW added, kept on rewrites
}

// startGW writes yaml to a file in a temp dir and starts a gateway on it
// through the real config parser. Cleanup shuts it down.
func startGW(t *testing.T, yaml string) *gw {
	t.Helper()
	dir := t.TempDir()
	dataDir := ""
	if !strings.Contains(yaml, "data_dir:") {
		// The default ./umbra-data would be shared (and locked) by every
		// gateway of the run.
		dataDir = "data_dir: " + strconv.Quote(filepath.Join(dir, "data")) + "\n"
	}
	g := testkit.Start(t, "itest", filepath.Join(dir, "umbra.yaml"), dataDir+yaml)
	return &gw{Gateway: g, dataDir: dataDir}
}

// rewrite replaces the config file atomically (the caller then reloads or
// lets the watcher notice).
func (g *gw) rewrite(t *testing.T, yaml string) {
	t.Helper()
	writeAtomic(t, g.Path, g.dataDir+yaml)
}

// echo is what the default upstream handler answers: what it received.
type echo struct {
	Backend  string      `json:"backend"`
	Method   string      `json:"method"`
	Host     string      `json:"host"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query"`
	Header   http.Header `json:"header"`
	Body     string      `json:"body"`
	TLS      bool        `json:"tls"`
}

// upstream is an httptest server standing for one backend endpoint.
type upstream struct {
	*httptest.Server
	name string
	hits atomic.Int64
}

// newUpstream starts an upstream. With a nil handler it echoes the request
// as JSON (type echo) with an X-Backend header naming it.
func newUpstream(t *testing.T, name string, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{name: name}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Backend", name)
			_ = json.NewEncoder(w).Encode(echo{Backend: name, Method: r.Method, Host: r.Host, Path: r.URL.Path,
				RawQuery: r.URL.RawQuery, Header: r.Header, Body: string(body), TLS: r.TLS != nil})
		}
	}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

// newClient returns a client with its own connection pool that does not
// follow redirects, closed at cleanup.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	c := testkit.NewClient(t, 32, waitFor)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// result is a fully read response with its body as text.
type result struct {
	Status int
	Header http.Header
	Body   string
}

// do sends a request and reads the whole answer; errors fail the test.
func do(t *testing.T, c *http.Client, method, url string, body io.Reader, hdr ...string) result {
	t.Helper()
	r, err := try(c, method, url, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// try is do without failing the test (usable from other goroutines).
func try(c *http.Client, method, url string, body io.Reader, hdr ...string) (result, error) {
	r, err := testkit.Send(c, method, url, body, hdr...)
	return result{Status: r.Status, Header: r.Header, Body: string(r.Body)}, err
}

// echoOf decodes an echo answer.
func echoOf(t *testing.T, r result) echo {
	t.Helper()
	var e echo
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.Status, r.Body)
	}
	if err := json.Unmarshal([]byte(r.Body), &e); err != nil {
		t.Fatalf("not an echo answer: %v: %q", err, r.Body)
	}
	return e
}

// jsonError is the gateway's error body.
type jsonError struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// wantJSONError checks a gateway error answer: status, JSON content type,
// a non-empty "error" and a "request_id" equal to the echoed header.
func wantJSONError(t *testing.T, r result, status int, code string) jsonError {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e jsonError
	if err := json.Unmarshal([]byte(r.Body), &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, r.Body)
	}
	if e.Error == "" || (code != "" && e.Error != code) {
		t.Errorf(`"error" = %q, want %q`, e.Error, code)
	}
	if e.RequestID == "" {
		t.Errorf(`"request_id" is empty in %s`, r.Body)
	}
	return e
}

// recv waits for a value on ch, failing the test after the deadline.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeAtomic replaces path by renaming a temp file over it, as editors
// and config-management tools do.
func writeAtomic(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// ---- metrics ----

// scrape fetches the admin /metrics text.
func scrape(t *testing.T, g *gw) string {
	t.Helper()
	r := do(t, newClient(t), "GET", g.AdminURL+"/metrics", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("/metrics: status %d: %s", r.Status, r.Body)
	}
	return r.Body
}

// metric sums the samples of name in a /metrics text whose labels include
// want. ok is false when no sample matched.
func metric(t *testing.T, text, name string, want map[string]string) (sum float64, ok bool) {
	t.Helper()
	return testkit.MustParseMetrics(t, text).Sum(name, want)
}

// waitMetric polls /metrics until name{labels} equals want. Metrics are
// recorded after the response is written, so a client may see its answer
// a moment before the counter moves.
func waitMetric(t *testing.T, g *gw, name string, labels map[string]string, want float64) {
	t.Helper()
	c := newClient(t)
	poll.Until(t, fmt.Sprintf("%s%v == %v", name, labels, want), func() (bool, string) {
		m, err := testkit.TryScrape(c, g.AdminURL)
		if err != nil {
			return false, err.Error()
		}
		got, _ := m.Sum(name, labels)
		return got == want, fmt.Sprintf("%v", got)
	})
}

// ---- admin API ----

// endpointStatus mirrors backend.EndpointStatus as the admin API shows it.
type endpointStatus struct {
	URL                 string `json:"url"`
	Healthy             bool   `json:"healthy"`
	ConsecutiveFailures int64  `json:"consecutive_failures"`
	InFlight            int64  `json:"in_flight"`
	Requests            uint64 `json:"requests"`
}

type routeInfo struct {
	Name      string           `json:"name"`
	Endpoint  string           `json:"endpoint"`
	Backend   string           `json:"backend"`
	Endpoints []endpointStatus `json:"backend_endpoints"`
}

// routes reads /api/v1/routes.
func routes(t *testing.T, g *gw) map[string]routeInfo {
	t.Helper()
	r := do(t, newClient(t), "GET", g.AdminURL+"/api/v1/routes", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("/api/v1/routes: %d %s", r.Status, r.Body)
	}
	var list []routeInfo
	if err := json.Unmarshal([]byte(r.Body), &list); err != nil {
		t.Fatalf("/api/v1/routes: %v: %s", err, r.Body)
	}
	out := map[string]routeInfo{}
	for _, ri := range list {
		out[ri.Name] = ri
	}
	return out
}

// endpointOf finds an endpoint's status by URL.
func endpointOf(t *testing.T, ri routeInfo, url string) endpointStatus {
	t.Helper()
	for _, e := range ri.Endpoints {
		if e.URL == url {
			return e
		}
	}
	t.Fatalf("route %s has no endpoint %s: %+v", ri.Name, url, ri.Endpoints)
	return endpointStatus{}
}

// ---- TLS ----

// selfSigned writes a fresh self-signed certificate for 127.0.0.1 and
// localhost into dir and returns the cert and key paths.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "umbra-itest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
	return certFile, keyFile
}

// ---- raw connections ----

// rawUpstream serves each connection with fn on a raw net.Conn, for tests
// that must see or write bytes net/http would hide or normalise.
func rawUpstream(t *testing.T, fn func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	return testkit.NewRawServer(t, func(c net.Conn) {
		defer c.Close()
		fn(c, bufio.NewReader(c))
	}).URL()
}

// readHead reads a request or response head (up to the blank line) and
// returns it verbatim.
func readHead(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			return sb.String(), err
		}
		if line == "\r\n" || line == "\n" {
			return sb.String(), nil
		}
	}
}

// headLines returns the header field names in a raw head, lower-cased, one
// entry per field line.
func headLines(head string) map[string][]string {
	out := map[string][]string{}
	for i, line := range strings.Split(strings.TrimRight(head, "\r\n"), "\r\n") {
		if i == 0 {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		out[k] = append(out[k], strings.TrimSpace(v))
	}
	return out
}

// dial opens a raw connection with a deadline for the whole exchange.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(waitFor))
	t.Cleanup(func() { c.Close() })
	return c
}

// ctxTimeout is a context cancelled at the poll deadline or at cleanup.
func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}
