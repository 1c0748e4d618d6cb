package backend

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

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
			if ErrorKind(err) != KindConnect {
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
	if _, err := do(t, b, http.MethodGet, nil); ErrorKind(err) != KindConnect {
		t.Fatalf("err = %v, want connect", err)
	}
}

func TestRetryAttemptsBoundAndDistinctEndpoints(t *testing.T) {
	d1, d2, d3, live := closedPort(t), closedPort(t), closedPort(t), echoServer(t, "live")
	b := newBackend(t, config.Backend{Retry: config.Retry{Attempts: 2}}, d1, d2, d3, live.URL)
	// First pick d1, retries d2 and d3: three dial failures, then stop.
	if _, err := do(t, b, http.MethodGet, nil); ErrorKind(err) != KindConnect {
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

// TestNoRetryAfterRequestSent: the endpoint read the request and closed
// the connection; the request may have had effects, so no retry.
func TestNoRetryAfterRequestSent(t *testing.T) {
	live := echoServer(t, "live")
	for _, tc := range []struct {
		name   string
		handle func(net.Conn)
	}{
		{"closed after request", closeAfterRequest},
		{"reset mid-response", func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n")
			c.(*net.TCPConn).SetLinger(0) // RST, not FIN
			c.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := rawServer(t, tc.handle)
			b := newBackend(t, config.Backend{}, broken, live.URL)
			_, err := do(t, b, http.MethodGet, nil)
			if err == nil {
				t.Fatal("want an error")
			}
			if k := ErrorKind(err); k != KindReset {
				t.Errorf("kind = %s for %v, want reset", k, err)
			}
			if got := statusOf(t, b, live.URL).Requests; got != 0 {
				t.Errorf("live got %d requests: retried after bytes were sent", got)
			}
			// Reaching the endpoint is not a connection failure.
			if got := statusOf(t, b, broken).ConsecutiveFailures; got != 0 {
				t.Errorf("broken endpoint has %d connection failures, want 0", got)
			}
		})
	}
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
