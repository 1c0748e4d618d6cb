package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestUpgradeAllowList: a route lets clients upgrade only to the protocols
// it lists (routes[].upgrades, websocket by default). Any other upgrade
// request, h2c above all, gets 403 and never reaches the backend, which
// here would switch to whatever it is asked and tunnel bytes blindly.
func TestUpgradeAllowList(t *testing.T) {
	t.Parallel()
	var upgrades atomic.Int32 // upgrade requests the upstream saw
	up := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if proto := req.Header.Get("Upgrade"); proto != "" {
				upgrades.Add(1)
				fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", proto)
				io.Copy(c, br) // a blind tunnel: echo
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain")
		}
	})
	g := startGW(t, base+fmt.Sprintf(`backends:
  up: {endpoints: [%q]}
routes:
  - {name: none, match: {path_prefix: /none}, backend: up, upgrades: []}
  - {name: custom, match: {path_prefix: /custom}, backend: up, upgrades: [foo]}
  - {name: default, backend: up}
`, up))
	cases := []struct {
		path, fields string
		status       int
	}{
		{"/default", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", 403},
		{"/default", "Connection: upgrade\r\nUpgrade: foo\r\n", 403},
		{"/default", "Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n", 403},
		{"/default", "Connection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n", 403},
		{"/none", "Connection: Upgrade\r\nUpgrade: websocket\r\n", 403},
		{"/custom", "Connection: Upgrade\r\nUpgrade: websocket\r\n", 403},
		{"/default", "Connection: Upgrade\r\nUpgrade: WebSocket\r\n", 101},
		{"/custom", "Connection: keep-alive, Upgrade\r\nUpgrade: Foo/2\r\n", 101},
		// Not an upgrade request: Upgrade is hop-by-hop and dropped.
		{"/default", "Upgrade: h2c\r\n", 200},
	}
	wantUpgrades := int32(0)
	for _, tc := range cases {
		c := dial(t, g.Addr())
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: app.test\r\n%s\r\n", tc.path, tc.fields)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s %q: %v", tc.path, tc.fields, err)
		}
		if resp.StatusCode != tc.status {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s %q: status %d %s, want %d", tc.path, tc.fields, resp.StatusCode, body, tc.status)
		}
		switch tc.status {
		case 403:
			e := wantJSONError(t, result{Status: resp.StatusCode, Header: resp.Header, Body: readAllString(t, resp.Body)}, 403, "upgrade_not_allowed")
			if !strings.Contains(e.Message, "does not allow upgrading") {
				t.Errorf("message %q", e.Message)
			}
		case 101:
			wantUpgrades++
			io.WriteString(c, "ping")
			buf := make([]byte, 4)
			if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("%s: tunnel echo %q, %v", tc.path, buf, err)
			}
		}
		c.Close()
	}
	if got := upgrades.Load(); got != wantUpgrades {
		t.Errorf("the upstream saw %d upgrade requests, want %d (the allowed ones)", got, wantUpgrades)
	}
}

func readAllString(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
