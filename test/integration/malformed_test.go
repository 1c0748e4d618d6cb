package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// TestMalformedRequests: a request the gateway cannot read gets the right
// 4xx or 5xx on a closed connection, never reaches the upstream, and the
// gateway goes on serving.
func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	up := testkit.NewUpstream(t, "api", nil)
	g := startGW(t, `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {level: info, access: true}
server: {shutdown_grace: 5s, max_header_bytes: 4KiB}
`+fmt.Sprintf(`backends:
  api: {endpoints: [%q]}
routes:
  - {name: api, backend: api}
`, up.URL))
	addr := strings.TrimPrefix(g.URL, "http://")
	cases := []struct {
		name, request string
		status        int
	}{
		{"garbage request line", "HELLO\r\n\r\n", 400},
		{"no HTTP version", "GET /\r\nHost: x\r\n\r\n", 400},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"absolute form without Host", "GET http://example.com/ HTTP/1.1\r\n\r\n", 400},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"space in a field name", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400},
		{"control character in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400},
		{"bad Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", 400},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"unknown expectation", "GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", 417},
		{"HTTP/2 preface on plain HTTP/1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"header over max_header_bytes", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", 431},
	}
	for _, tc := range cases {
		c := dial(t, addr)
		if _, err := io.WriteString(c, tc.request); err != nil {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("%s: no response: %v", tc.name, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || !resp.Close {
			t.Errorf("%s: %d (close %v) %q, want %d and the connection closed", tc.name, resp.StatusCode, resp.Close, body, tc.status)
		}
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("%s: connection not closed after the answer: %v", tc.name, err)
		}
	}
	if n := up.Hits.Load(); n != 0 {
		t.Errorf("the upstream got %d malformed requests", n)
	}
	if r := do(t, newClient(t), "GET", g.URL+"/after", nil); r.Status != 200 {
		t.Errorf("a good request after the bad ones: %d", r.Status)
	}
}

// TestSlowHeaderClientCut: a client that sends part of a request head and
// stalls (Slowloris) is disconnected after server.read_header_timeout,
// while other clients are served.
func TestSlowHeaderClientCut(t *testing.T) {
	t.Parallel()
	up := testkit.NewUpstream(t, "api", nil)
	g := startGW(t, `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
server: {shutdown_grace: 5s, read_header_timeout: 300ms}
`+fmt.Sprintf(`backends:
  api: {endpoints: [%q]}
routes:
  - {name: api, backend: api}
`, up.URL))
	c := dial(t, strings.TrimPrefix(g.URL, "http://"))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r := do(t, newClient(t), "GET", g.URL+"/other", nil); r.Status != 200 {
		t.Errorf("another client: %d", r.Status)
	}
	n, err := c.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("the stalled connection: read %d bytes, %v; want it closed", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v; read_header_timeout is 300ms", d)
	}
	if up.Hits.Load() != 1 {
		t.Errorf("upstream hits %d, want 1", up.Hits.Load())
	}
}
