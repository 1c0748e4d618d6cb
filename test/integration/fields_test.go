package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
)

// TestCanaryCookieBesideUpstreamCookies: the canary's assignment cookie
// and the upstream's own cookies all reach the client, from either
// version (v1's answer also has a Connection field).
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
