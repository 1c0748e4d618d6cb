package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
)

// connCounter is an upstream that counts the TCP connections it accepts
// and closes: a backend's connection pool seen from the other side.
type connCounter struct {
	*httptest.Server
	opened, closed atomic.Int64
}

func newConnCounter(t *testing.T, name string) *connCounter {
	t.Helper()
	c := &connCounter{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, name)
	}))
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			c.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			c.closed.Add(1)
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

// parse parses config text as the file dir/umbra.yaml.
func parse(t *testing.T, dir, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(dir, "umbra.yaml"), []byte(text))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return cfg
}

// TestReloadKeepsUnchangedBackends: a reload keeps the backend whose
// config did not change, with its pool of upstream connections (no new
// connection after the reload), builds a new one for a changed backend
// (a new connection), and closes the replaced backend's idle connections
// (again after the shutdown grace, for those in use at the swap), while
// the kept backend's stay open.
func TestReloadKeepsUnchangedBackends(t *testing.T) {
	a, b := newConnCounter(t, "a"), newConnCounter(t, "b")
	dir := t.TempDir()
	config := func(bTimeout string, extraRoute string) string {
		return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: %q
log: {level: error, access: false}
server: {shutdown_grace: 1s}
backends:
  a: {endpoints: [%q]}
  b: {endpoints: [%q], timeout: %s}
routes:
  - {name: a, match: {path_prefix: /a}, backend: a}
  - {name: b, match: {path_prefix: /b}, backend: b}
%s`, filepath.Join(dir, "data"), a.URL, b.URL, bTimeout, extraRoute)
	}
	g, err := New(parse(t, dir, config("5s", "")), Options{Version: "test", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown() })
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path, want string) {
		t.Helper()
		resp, err := client.Get("http://" + g.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Fatalf("GET %s: %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}
	get("/a", "a")
	get("/b", "b")
	if a.opened.Load() != 1 || b.opened.Load() != 1 {
		t.Fatalf("before the reload: %d connections to a, %d to b; want 1 each", a.opened.Load(), b.opened.Load())
	}

	// b's timeout changes; a is the same, and a new route uses it too.
	if err := g.Apply(parse(t, dir, config("4s", "  - {name: c, match: {path_prefix: /c}, backend: a}\n"))); err != nil {
		t.Fatal(err)
	}
	get("/a", "a")
	get("/c", "a")
	get("/b", "b")
	if n := a.opened.Load(); n != 1 {
		t.Errorf("%d connections to the unchanged backend a, want its one pooled connection reused", n)
	}
	if n := b.opened.Load(); n != 2 {
		t.Errorf("%d connections to the changed backend b, want a second one from its new pool", n)
	}

	// The replaced b closes its idle connection; a keeps its.
	deadline := time.Now().Add(10 * time.Second)
	for b.closed.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the replaced backend's idle connection is still open")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := a.closed.Load(); n != 0 {
		t.Errorf("the kept backend's connection was closed (%d)", n)
	}
	get("/a", "a")
	if n := a.opened.Load(); n != 1 {
		t.Errorf("%d connections to a after b closed, want 1", n)
	}
}
