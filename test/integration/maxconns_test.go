package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// TestMaxConnections: with server.max_connections: 2, two open keep-alive
// connections hold both slots; a third client's request waits in the
// accept queue, unanswered, until one of them closes, and is then served.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	up := testkit.NewUpstream(t, "api", nil)
	g := startGW(t, `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {level: warn, access: false}
server: {max_connections: 2}
`+fmt.Sprintf(`backends:
  api: {endpoints: [%q]}
routes:
  - {name: api, backend: api}
`, up.URL))
	addr := strings.TrimPrefix(g.URL, "http://")
	const req = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
	served := func(c net.Conn) error {
		br := bufio.NewReader(c)
		if _, err := c.Write([]byte(req)); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	a, b := dial(t, addr), dial(t, addr)
	for _, c := range []net.Conn{a, b} {
		if err := served(c); err != nil {
			t.Fatalf("one of the first two connections: %v", err)
		}
	}
	// The third connection completes its TCP handshake in the kernel's
	// backlog but is not accepted: its request gets no answer.
	third := dial(t, addr)
	br := bufio.NewReader(third)
	if _, err := third.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.Peek(1); err == nil {
		t.Fatal("a third connection was served with max_connections: 2 and two open")
	}
	// A slot frees: the waiting connection is accepted and answered.
	a.Close()
	_ = third.SetReadDeadline(time.Now().Add(testkit.Wait.Timeout))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("after a slot freed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after a slot freed: status %d", resp.StatusCode)
	}
}
