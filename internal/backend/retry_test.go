package backend

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
)

func TestRetryOnRefusedForIdempotentMethods(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		t.Run(method, func(t *testing.T) {
			dead, live := closedPort(t), echoServer(t, "live")
			// Round robin starts at the first endpoint: the dead one.
			b := newBackend(t, config.Backend{}, dead, live.URL)
			name, err := do(t, b, method, nil)
			if err != nil || name != "live" {
				t.Fatalf("%s: %q, %v; want a retry to live", method, name, err)
			}
			if st := statusOf(t, b, dead); st.Requests != 1 || st.ConsecutiveFailures != 1 {
				t.Errorf("dead endpoint %+v, want 1 attempt counted as a failure", st)
			}
		})
	}
}

func TestNoRetryForRequestsWithBodyOrUnsafeMethod(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		body   io.Reader
	}{
		{"POST with body", http.MethodPost, strings.NewReader(`{"a":1}`)},
		{"POST without body", http.MethodPost, nil},
		{"PATCH", http.MethodPatch, nil},
		{"PUT with body", http.MethodPut, strings.NewReader("x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dead, live := closedPort(t), echoServer(t, "live")
			b := newBackend(t, config.Backend{}, dead, live.URL)
			_, err := do(t, b, tc.method, tc.body)
			if KindOf(err) != KindConnect {
				t.Fatalf("err = %v, want the connect error, not a retry", err)
			}
			if got := statusOf(t, b, live.URL).Requests; got != 0 {
				t.Errorf("live endpoint got %d requests, want none", got)
			}
		})
	}
}

func TestRetryDisabled(t *testing.T) {
	dead, live := closedPort(t), echoServer(t, "live")
	b := newBackend(t, config.Backend{Retry: config.Retry{Disable: true}}, dead, live.URL)
	if _, err := do(t, b, http.MethodGet, nil); KindOf(err) != KindConnect {
		t.Fatalf("err = %v, want connect", err)
	}
}

func TestRetryAttemptsBoundAndDistinctEndpoints(t *testing.T) {
	d1, d2, d3, live := closedPort(t), closedPort(t), closedPort(t), echoServer(t, "live")
	b := newBackend(t, config.Backend{Retry: config.Retry{Attempts: 2}}, d1, d2, d3, live.URL)
	// First pick d1, retries d2 and d3: three dial failures, then stop.
	if _, err := do(t, b, http.MethodGet, nil); KindOf(err) != KindConnect {
		t.Fatalf("err = %v, want connect after 2 retries", err)
	}
	for _, d := range []string{d1, d2, d3} {
		if got := statusOf(t, b, d).Requests; got != 1 {
			t.Errorf("%s got %d attempts, want 1", d, got)
		}
	}
	// A single-endpoint backend has nowhere else to go.
	one := newBackend(t, config.Backend{Retry: config.Retry{Attempts: 3}}, d1)
	do(t, one, http.MethodGet, nil)
	if got := statusOf(t, one, d1).Requests; got != 1 {
		t.Errorf("single endpoint got %d attempts, want 1 (no retry to itself)", got)
	}
}

// Endpoints that die in the middle of a request, before any byte of an
// answer (they used to turn a GET into a 502) or after some.
var (
	resetAfterRequest = func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		reset(c)
	}
	resetMidResponse = func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n")
		// A RST can discard data the client has not read yet: let the
		// bytes arrive first, or nothing would have been answered.
		time.Sleep(50 * time.Millisecond)
		reset(c)
	}
	closeMidBody = func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Endpoint: broken\r\n\r\nbro")
		c.Close()
	}
)

// TestRetryWhenEndpointDiesBeforeAnswering: an idempotent bodyless
// request whose endpoint read it and closed or reset the connection
// without a byte of an answer is sent once to another endpoint, as nginx's
// proxy_next_upstream error does, on the synchronous pool (plain http) and
// on the http.Transport (https).
func TestRetryWhenEndpointDiesBeforeAnswering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle func(net.Conn)
	}{
		{"closed after request", closeAfterRequest},
		{"reset after request", resetAfterRequest},
	} {
		for _, scheme := range []string{"http", "https"} {
			for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodDelete} {
				t.Run(tc.name+"/"+scheme+"/"+method, func(t *testing.T) {
					broken, live := dyingEndpoint(t, scheme, tc.handle), liveEndpoint(t, scheme)
					b := newBackend(t, config.Backend{TLS: &config.UpstreamTLS{InsecureSkipVerify: true}}, broken, live)
					name, err := do(t, b, method, nil)
					if err != nil || (method != http.MethodHead && name != "live") {
						t.Fatalf("%q, %v; want a retry to live", name, err)
					}
					if got := statusOf(t, b, live).Requests; got != 1 {
						t.Errorf("live got %d requests, want 1", got)
					}
					if st := statusOf(t, b, broken); st.Requests != 1 || st.ConsecutiveFailures != 0 {
						t.Errorf("broken endpoint %+v, want 1 attempt, not a connection failure", st)
					}
				})
			}
		}
	}
}

// TestNoRetryAfterResponseBytes: once any byte of an answer arrived, or
// for a method that is not idempotent, the error is the client's: part of
// an answer, or an effect, may be lost.
func TestNoRetryAfterResponseBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		handle func(net.Conn)
	}{
		{"GET reset mid-response head", http.MethodGet, resetMidResponse},
		{"POST closed after request", http.MethodPost, closeAfterRequest},
		{"PATCH reset after request", http.MethodPatch, resetAfterRequest},
	} {
		for _, scheme := range []string{"http", "https"} {
			t.Run(tc.name+"/"+scheme, func(t *testing.T) {
				broken, live := dyingEndpoint(t, scheme, tc.handle), liveEndpoint(t, scheme)
				b := newBackend(t, config.Backend{TLS: &config.UpstreamTLS{InsecureSkipVerify: true}}, broken, live)
				_, err := do(t, b, tc.method, nil)
				if err == nil {
					t.Fatal("want an error")
				}
				if k := KindOf(err); k != KindReset {
					t.Errorf("kind = %s for %v, want reset", k, err)
				}
				if got := statusOf(t, b, live).Requests; got != 0 {
					t.Errorf("live got %d requests: retried", got)
				}
				if got := statusOf(t, b, broken).ConsecutiveFailures; got != 0 {
					t.Errorf("broken endpoint has %d connection failures, want 0", got)
				}
			})
		}
	}
	// A body cut short is the client's error too: its head was sent on.
	broken, live := dyingEndpoint(t, "http", closeMidBody), liveEndpoint(t, "http")
	b := newBackend(t, config.Backend{}, broken, live)
	if _, err := do(t, b, http.MethodGet, nil); err == nil || statusOf(t, b, live).Requests != 0 {
		t.Errorf("a body cut short: err %v, live %d requests", err, statusOf(t, b, live).Requests)
	}
}

// reset closes c with a RST, not a FIN.
func reset(c net.Conn) {
	c.(interface{ SetLinger(int) error }).SetLinger(0)
	c.Close()
}

// dyingEndpoint serves handle on plain TCP or behind TLS.
func dyingEndpoint(t *testing.T, scheme string, handle func(net.Conn)) string {
	t.Helper()
	if scheme == "http" {
		return rawServer(t, handle)
	}
	cert := httptest.NewTLSServer(http.NotFoundHandler())
	cfg := cert.TLS.Clone()
	cert.Close()
	return "https://" + strings.TrimPrefix(rawServer(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			c.Close()
			return
		}
		handle(&tlsTCP{tc, c.(*net.TCPConn)})
	}), "http://")
}

// tlsTCP is a TLS connection whose SetLinger reaches the TCP socket, so
// the handlers above can reset it.
type tlsTCP struct {
	*tls.Conn
	tcp *net.TCPConn
}

func (c *tlsTCP) SetLinger(sec int) error { return c.tcp.SetLinger(sec) }

func liveEndpoint(t *testing.T, scheme string) string {
	t.Helper()
	if scheme == "http" {
		return echoServer(t, "live").URL
	}
	srv := httptest.NewTLSServer(echoHandler("live"))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestNoRetryWhenClientGone(t *testing.T) {
	dead, live := closedPort(t), echoServer(t, "live")
	b := newBackend(t, config.Backend{}, dead, live.URL)
	req := outgoing(t, t.Context(), http.MethodGet, nil)
	err := errors.New("dial failed")
	ctx, cancel := contextCanceled(req)
	defer cancel()
	if b.retryable(ctx, req, &dialError{err: err}) {
		t.Error("retryable with a canceled client context")
	}
	if !b.retryable(req.Context(), req, &dialError{err: err}) {
		t.Error("not retryable with a live client context")
	}
}
