package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// refused reports whether a new TCP connection to addr is refused.
func refused(addr string) (bool, string) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true, err.Error()
	}
	c.Close()
	return false, "connection accepted"
}

// TestShutdownDrains: Shutdown lets a request in flight finish with 200,
// reports not ready while draining, and refuses new connections.
func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}, 1), make(chan struct{})
	up := testkit.NewStreamUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		time.Sleep(300 * time.Millisecond) // a slow answer, still inside the grace
		fmt.Fprint(w, "finished")
	})
	g := startGW(t, base+testkit.Backends("slow", up.URL)+`
routes:
  - {name: slow, backend: slow}
`)
	if r := do(t, newClient(t), "GET", g.AdminURL+"/readyz", nil); r.Status != 200 {
		t.Fatalf("readyz before shutdown: %d", r.Status)
	}
	type res struct {
		r   result
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := try(newClient(t), "GET", g.URL+"/slow", nil)
		done <- res{r, err}
	}()
	testkit.Recv(t, started, "the request to reach the upstream")

	shut := make(chan error, 1)
	go func() { shut <- g.Stop() }()

	adm := newClient(t)
	testkit.Wait.Until(t, "readyz to report 503 while draining", func() (bool, string) {
		r, err := try(adm, "GET", g.AdminURL+"/readyz", nil)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusServiceUnavailable, fmt.Sprint(r.Status, " ", r.Body)
	})
	testkit.Wait.Until(t, "new connections to be refused while draining", func() (bool, string) { return refused(g.Addr()) })
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}

	close(release)
	r := testkit.Recv(t, done, "the in-flight request")
	if r.err != nil || r.r.Status != 200 || r.r.Body != "finished" {
		t.Fatalf("in-flight request: %+v %v", r.r, r.err)
	}
	if err := testkit.Recv(t, shut, "Shutdown to return"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if ok, msg := refused(g.Addr()); !ok {
		t.Errorf("main listener after Shutdown: %s", msg)
	}
	if ok, msg := refused(g.AdminAddr()); !ok {
		t.Errorf("admin listener after Shutdown: %s", msg)
	}
}

// TestShutdownGraceBound: a request that never finishes holds Shutdown
// for server.shutdown_grace and no longer; its connection is then closed
// and the upstream request cancelled.
func TestShutdownGraceBound(t *testing.T) {
	t.Parallel()
	started, cancelled := make(chan struct{}, 1), make(chan struct{}, 1)
	up := testkit.NewStreamUpstream(t, "hang", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(testkit.Wait.Timeout):
		}
	})
	g := startGW(t, fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
server: {shutdown_grace: 200ms}
backends:
  hang: {endpoints: [%q]}
routes:
  - {name: hang, backend: hang}
`, up.URL))
	errc := make(chan error, 1)
	go func() {
		resp, err := newClient(t).Get(g.URL + "/hang")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				err = fmt.Errorf("got a complete answer %d", resp.StatusCode)
			}
		}
		errc <- err
	}()
	testkit.Recv(t, started, "the request to reach the upstream")
	start := time.Now()
	err := g.Stop()
	took := time.Since(start)
	if err == nil {
		t.Errorf("Shutdown returned nil with a request still running")
	}
	if took < 150*time.Millisecond || took > 3*time.Second {
		t.Errorf("Shutdown took %v with shutdown_grace 200ms", took)
	}
	if err := testkit.Recv(t, errc, "the hanging client to be disconnected"); err == nil {
		t.Errorf("client: no error")
	}
	testkit.Recv(t, cancelled, "the upstream request to be cancelled")
}

// TestShutdownClosesUpgradedConnections: an upgraded (WebSocket)
// connection is a request that never ends; like any other it must not
// outlive Shutdown by more than server.shutdown_grace. net/http's
// Server.Shutdown neither waits for nor closes hijacked connections, so
// the gateway has to.
func TestShutdownClosesUpgradedConnections(t *testing.T) {
	t.Parallel()
	up := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		head, err := readHead(br)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			wsAccept(headLines(head)["sec-websocket-key"][0]))
		for {
			op, payload, _, err := wsRead(br)
			if err != nil {
				return
			}
			wsWrite(c, op, payload, nil)
		}
	})
	g := startGW(t, fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
server: {shutdown_grace: 200ms}
backends:
  ws: {endpoints: [%q]}
routes:
  - {name: ws, backend: ws}
`, up))
	c := dial(t, g.Addr())
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	_ = g.Stop()
	// Shutdown has returned: the connection must be closed (at once or
	// after the grace); 2s is ten times the grace.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		wsWrite(c, 0x1, []byte("still there?"), []byte{1, 2, 3, 4})
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		op, payload, _, err := wsRead(br)
		t.Fatalf("WebSocket connection still open 2s after Shutdown returned (shutdown_grace 200ms); "+
			"it even still proxies: echo op %d %q err %v", op, payload, err)
	}
}
