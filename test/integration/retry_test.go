package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

// TestGETRetriedWhenEndpointDiesBeforeAnswering: an endpoint that reads
// each request and closes the connection without answering no longer
// turns GETs into 502s: each is answered by the other endpoint. A POST is
// not sent twice: its 502 stands.
func TestGETRetriedWhenEndpointDiesBeforeAnswering(t *testing.T) {
	t.Parallel()
	var took atomic.Int64
	dying := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			took.Add(1)
		}
		c.Close()
	})
	live := testkit.NewUpstream(t, "live", nil)
	g := startGW(t, base+fmt.Sprintf(`
backends:
  pair: {endpoints: [%q, %q], health: {max_fails: 1000}}
routes:
  - {name: pair, backend: pair}
`, dying, live.URL))
	cl := newClient(t)
	for i := range 6 {
		if r := do(t, cl, "GET", g.URL+"/get", nil); r.Status != http.StatusOK || echoOf(t, r).Backend != "live" {
			t.Fatalf("GET %d: %d %s", i, r.Status, r.Body)
		}
	}
	if took.Load() == 0 {
		t.Fatal("the dying endpoint never got a request: round robin did not reach it")
	}
	before, posted := took.Load(), int64(0)
	for range 4 {
		r := do(t, cl, "POST", g.URL+"/post", nil)
		if r.Status == http.StatusBadGateway {
			posted++
		}
	}
	if dyingTook := took.Load() - before; posted != dyingTook || posted == 0 {
		t.Errorf("%d of 4 POSTs got 502, the dying endpoint took %d: want those, not retried", posted, dyingTook)
	}
}
