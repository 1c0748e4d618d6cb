package backend

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
)

// newBackend builds a Backend over endpoints.
func newBackend(t testing.TB, cfg config.Backend, endpoints ...string) *Backend {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	cfg.Endpoints = endpoints
	b, err := New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// echoServer answers with its name in the body and X-Endpoint, and the
// Host it received in X-Host.
func echoServer(t testing.TB, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(echoHandler(name))
	t.Cleanup(srv.Close)
	return srv
}

func echoHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Endpoint", name)
		w.Header().Set("X-Host", r.Host)
		io.WriteString(w, name)
	})
}

// closedPort returns the URL of a loopback port nobody listens on: dials
// to it are refused at once.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// reopen starts an echo server on the port of a closedPort URL.
func reopen(t testing.TB, rawURL, name string) {
	t.Helper()
	u, _ := url.Parse(rawURL)
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", u.Host, err)
	}
	srv := httptest.NewUnstartedServer(echoHandler(name))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
}

// rawServer accepts connections and hands each to handle; it returns the
// server's URL.
func rawServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { handle(c) })
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + l.Addr().String()
}

// closeAfterRequest reads the whole request, then closes without answering.
func closeAfterRequest(c net.Conn) {
	http.ReadRequest(bufio.NewReader(c))
	c.Close()
}

// neverAnswer reads the request and then holds the connection silently.
func neverAnswer(c net.Conn) {
	http.ReadRequest(bufio.NewReader(c))
	io.Copy(io.Discard, c) // returns when the test closes c
}

// do sends one request through b the way ReverseProxy would and reads
// the body; the endpoint name comes back from X-Endpoint.
func do(t testing.TB, b *Backend, method string, body io.Reader) (string, error) {
	t.Helper()
	return doCtx(t, context.Background(), b, method, body)
}

func doCtx(t testing.TB, ctx context.Context, b *Backend, method string, body io.Reader) (string, error) {
	t.Helper()
	req := outgoing(t, ctx, method, body)
	resp, err := b.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return "", err
	}
	return resp.Header.Get("X-Endpoint"), nil
}

// outgoing builds a request shaped like ReverseProxy's outgoing request:
// Host is the client's, Body is nil when there is none.
func outgoing(t testing.TB, ctx context.Context, method string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, "http://client.example/path?q=1", body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// captureLogs routes slog.Default to a buffer for the test's duration.
func captureLogs(t *testing.T) *lockedBuffer {
	buf := &lockedBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return buf
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

// statusOf returns the status of the endpoint with the given URL.
func statusOf(t testing.TB, b *Backend, rawURL string) EndpointStatus {
	t.Helper()
	for _, st := range b.Status() {
		if st.URL == rawURL {
			return st
		}
	}
	t.Fatalf("no endpoint %s in %+v", rawURL, b.Status())
	return EndpointStatus{}
}

func ms(n int) config.Duration { return config.Duration(time.Duration(n) * time.Millisecond) }
