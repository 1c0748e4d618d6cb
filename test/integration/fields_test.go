package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestResponseFieldsForwarded: a plain upstream response reaches the client
// with its fields as they came, in their order, its own Date and the
// client's X-Request-Id; a response with hop-by-hop fields (and no
// Connection naming them), its own X-Request-Id or names in lower case is
// still cleaned up on the way. Several responses share one client
// connection, so each is framed right.
func TestResponseFieldsForwarded(t *testing.T) {
	t.Parallel()
	const date = "Mon, 01 Jan 2024 00:00:00 GMT"
	answers := map[string]string{
		"/plain": "Content-Type: text/plain\r\nX-B: 2\r\nX-A: 1\r\nX-Up: a\r\nDate: " + date + "\r\nX-Up: b\r\nX-C: 3\r\nContent-Length: 2\r\n",
		"/hop":   "Content-Type: text/plain\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: foo\r\nX-End: ok\r\nContent-Length: 2\r\n",
		"/id":    "X-Request-Id: made-up-upstream\r\nContent-Length: 2\r\n",
		"/lower": "x-lower: 1\r\ncontent-length: 2\r\n",
	}
	up := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			path := strings.Fields(head)[1]
			io.WriteString(c, "HTTP/1.1 200 OK\r\n"+answers[path]+"\r\nok")
		}
	})
	g := startGW(t, base+fmt.Sprintf(`
backends:
  raw: {endpoints: [%q]}
routes:
  - {name: fields, backend: raw}
`, up))
	c := dial(t, g.Addr())
	br := bufio.NewReader(c)
	for round := 0; round < 2; round++ {
		for _, path := range []string{"/plain", "/hop", "/id", "/lower"} {
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: client-id\r\n\r\n")
			head, err := readHead(br)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(head), br)), nil)
			if err != nil {
				t.Fatalf("%s: %v\n%s", path, err, head)
			}
			body := make([]byte, 2)
			if _, err := io.ReadFull(br, body); err != nil || string(body) != "ok" {
				t.Fatalf("%s: body %q, %v", path, body, err)
			}
			h := resp.Header
			if v := h["X-Request-Id"]; !slices.Equal(v, []string{"client-id"}) {
				t.Errorf("%s: X-Request-Id %q, want the client's", path, v)
			}
			if len(h["Date"]) != 1 || len(h["Content-Length"]) != 1 {
				t.Errorf("%s: Date %q, Content-Length %q: want one of each", path, h["Date"], h["Content-Length"])
			}
			switch path {
			case "/plain":
				if h.Get("Date") != date || !slices.Equal(h["X-Up"], []string{"a", "b"}) {
					t.Errorf("/plain: Date %q, X-Up %q", h.Get("Date"), h["X-Up"])
				}
				// The block path keeps the upstream's order; a header map
				// would have shuffled these seven lines.
				var order []string
				for _, line := range strings.Split(head, "\r\n") {
					if k, _, ok := strings.Cut(line, ":"); ok && k != "X-Request-Id" {
						order = append(order, k)
					}
				}
				if want := []string{"Content-Type", "X-B", "X-A", "X-Up", "Date", "X-Up", "X-C", "Content-Length"}; !slices.Equal(order, want) {
					t.Errorf("/plain: fields in the order %q, want the upstream's %q", order, want)
				}
			case "/hop":
				for _, name := range []string{"Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
					if v, ok := h[name]; ok {
						t.Errorf("/hop: client received hop-by-hop header %s: %q", name, v)
					}
				}
				if h.Get("X-End") != "ok" {
					t.Errorf("/hop: X-End lost: %v", h)
				}
			case "/lower":
				if !strings.Contains(head, "\r\nX-Lower: 1\r\n") {
					t.Errorf("/lower: want the name in canonical form:\n%s", head)
				}
			}
		}
	}
}

// TestCanaryCookieBesideUpstreamCookies: the canary's assignment cookie
// and the upstream's own cookies all reach the client, whether the
// upstream's fields go through as a block (v2) or through a header map
// (v1, whose Connection field keeps them out of the block).
func TestCanaryCookieBesideUpstreamCookies(t *testing.T) {
	t.Parallel()
	upstream := func(extra string) string {
		return rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
			for {
				if _, err := readHead(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\nSet-Cookie: theme=dark\r\n"+extra+"Content-Length: 2\r\n\r\nok")
			}
		})
	}
	g := startGW(t, base+fmt.Sprintf(`
backends:
  v1: {endpoints: [%q]}
  v2: {endpoints: [%q]}
routes:
  - name: shop
    backend: v1
    canary: {backend: v2, weight: 50}
`, upstream("Connection: keep-alive\r\n"), upstream("")))
	c := dial(t, g.Addr())
	br := bufio.NewReader(c)
	for i := 0; i < 20; i++ {
		io.WriteString(c, "GET /cart HTTP/1.1\r\nHost: app.test\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		var names []string
		for _, ck := range resp.Cookies() {
			names = append(names, ck.Name)
		}
		slices.Sort(names)
		if want := []string{"app", "theme", "umbra_canary_shop"}; !slices.Equal(names, want) {
			t.Fatalf("request %d: cookies %q, want %q", i, names, want)
		}
	}
}
