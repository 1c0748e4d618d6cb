package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// base is the top of every test config, access logs on: they run on the
// request path, so the race detector sees them. startGW adds a data_dir.
var base = testkit.Top{Access: true}.YAML()

// startGW starts a gateway on yaml (a whole config, usually base+...)
// through the real config parser. Cleanup shuts it down.
func startGW(t *testing.T, yaml string) *testkit.Gateway {
	t.Helper()
	return testkit.LaunchText(t, "itest", yaml)
}

// newClient returns a client with its own connection pool that does not
// follow redirects, closed at cleanup.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	c := testkit.NewClient(t, 32, testkit.Wait.Timeout)
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
func echoOf(t *testing.T, r result) testkit.Echo {
	t.Helper()
	var e testkit.Echo
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

// ---- metrics ----

// metric sums the samples of name in a /metrics text whose labels include
// want. ok is false when no sample matched.
func metric(t *testing.T, text, name string, want map[string]string) (sum float64, ok bool) {
	t.Helper()
	return testkit.MustParseMetrics(t, text).Sum(name, want)
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
func routes(t *testing.T, g *testkit.Gateway) map[string]routeInfo {
	t.Helper()
	var list []routeInfo
	g.GetJSON(t, "/api/v1/routes", &list)
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
	c, err := net.DialTimeout("tcp", addr, testkit.Wait.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(testkit.Wait.Timeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// ctxTimeout is a context cancelled at the poll deadline or at cleanup.
func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait.Timeout)
	t.Cleanup(cancel)
	return ctx
}
