package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// TestUpstreamExtraResponseNeverReachesAnotherClient: an upstream sends a
// whole extra response after each answer (more than its Content-Length, a
// body after HEAD, a 204 or 304 with a body), in a later TCP segment that
// arrives while the gateway's upstream connection is idle. Each of many
// clients, one after another and each on its own connection, must get
// its own answer, never the extra response or another client's answer.
func TestUpstreamExtraResponseNeverReachesAnotherClient(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, method string
		head         func(id string) string // the answer, without the blank line
		body         func(id string) string
		status       int
	}{
		{"more than Content-Length", "GET",
			func(id string) string {
				return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Real: %s", len("answer to "+id), id)
			},
			func(id string) string { return "answer to " + id }, 200},
		{"body after HEAD", "HEAD",
			func(id string) string { return "HTTP/1.1 200 OK\r\nContent-Length: 64\r\nX-Real: " + id },
			func(string) string { return "" }, 200},
		{"body after 204", "GET",
			func(id string) string { return "HTTP/1.1 204 No Content\r\nX-Real: " + id },
			func(string) string { return "" }, 204},
		{"body after 304", "GET",
			func(id string) string { return "HTTP/1.1 304 Not Modified\r\nX-Real: " + id },
			func(string) string { return "" }, 304},
	}
	const clients = 50
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sendExtra := make(chan struct{})
			extraSent := make(chan struct{})
			up := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					id := req.URL.Query().Get("id")
					if _, err := fmt.Fprintf(c, "%s\r\n\r\n%s", tc.head(id), tc.body(id)); err != nil {
						return
					}
					// Only once the client has its answer: the gateway has
					// read the whole answer, so these bytes come later.
					select {
					case <-sendExtra:
					case <-time.After(testkit.Wait.Timeout):
						return
					}
					stale := "stale answer to " + id
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Stale: %s\r\n\r\n%s", len(stale), id, stale)
					extraSent <- struct{}{}
				}
			})
			g := startGW(t, base+fmt.Sprintf(`backends:
  api: {endpoints: [%q]}
routes:
  - {name: api, backend: api}
`, up))
			wrong := 0
			for i := range clients {
				id := fmt.Sprint(i)
				// Each client on its own connection, as different users are.
				c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: testkit.Wait.Timeout}
				r, err := try(c, tc.method, g.URL+"/?id="+id, nil)
				switch {
				case err != nil:
					wrong++
					t.Logf("client %s: %v", id, err)
				case r.Status != tc.status || r.Header.Get("X-Real") != id || r.Body != tc.body(id) || r.Header.Get("X-Stale") != "":
					wrong++
					if wrong == 1 {
						t.Logf("client %s got %d X-Real=%q X-Stale=%q %q", id, r.Status, r.Header.Get("X-Real"),
							r.Header.Get("X-Stale"), r.Body)
					}
				}
				// The extra response is written only after the answer and
				// before the next client: it is in the gateway's socket
				// while the connection is idle.
				select {
				case sendExtra <- struct{}{}:
					testkit.Recv(t, extraSent, "the extra response to be written")
				case <-time.After(time.Second):
					// The upstream was not waiting (this connection failed).
				}
				time.Sleep(time.Millisecond) // loopback delivery
			}
			t.Logf("%s: %d of %d clients got an answer not their own", tc.name, wrong, clients)
			if wrong != 0 {
				t.Errorf("%d of %d clients got an answer not their own, want 0", wrong, clients)
			}
		})
	}
}
