package backend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
)

func contextCanceled(req *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(req.Context())
	cancel()
	return ctx, cancel
}

// TestErrorKindRealSockets classifies errors produced by real connections.
func TestErrorKindRealSockets(t *testing.T) {
	noRetry := config.Backend{Retry: config.Retry{Disable: true}, Timeout: ms(100)}

	t.Run("refused", func(t *testing.T) {
		b := newBackend(t, noRetry, closedPort(t))
		_, err := do(t, b, http.MethodGet, nil)
		if k := KindOf(err); k != KindConnect {
			t.Errorf("kind = %q for %v, want connect", k, err)
		}
	})
	t.Run("no response headers", func(t *testing.T) {
		b := newBackend(t, noRetry, rawServer(t, neverAnswer))
		start := time.Now()
		_, err := do(t, b, http.MethodGet, nil)
		if k := KindOf(err); k != KindTimeout {
			t.Errorf("kind = %q for %v, want timeout", k, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("response-header timeout took %v", d)
		}
	})
	t.Run("closed after request", func(t *testing.T) {
		b := newBackend(t, noRetry, rawServer(t, closeAfterRequest))
		_, err := do(t, b, http.MethodGet, nil)
		if k := KindOf(err); k != KindReset {
			t.Errorf("kind = %q for %v, want reset", k, err)
		}
	})
	t.Run("reset in body", func(t *testing.T) {
		b := newBackend(t, noRetry, rawServer(t, func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}))
		_, err := do(t, b, http.MethodGet, nil)
		if k := KindOf(err); k != KindReset {
			t.Errorf("kind = %q for %v, want reset", k, err)
		}
	})
	t.Run("client canceled", func(t *testing.T) {
		b := newBackend(t, config.Backend{}, rawServer(t, neverAnswer))
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := doCtx(t, ctx, b, http.MethodGet, nil)
		if k := KindOf(err); k != KindCanceled {
			t.Errorf("kind = %q for %v, want canceled", k, err)
		}
	})
	t.Run("client deadline", func(t *testing.T) {
		b := newBackend(t, config.Backend{}, rawServer(t, neverAnswer))
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := doCtx(t, ctx, b, http.MethodGet, nil)
		if k := KindOf(err); k != KindTimeout {
			t.Errorf("kind = %q for %v, want timeout", k, err)
		}
	})
}

var errConnReset = syscall.ECONNRESET

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestErrorKindTable(t *testing.T) {
	dialTimeout := &dialError{err: &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}}
	for _, tc := range []struct {
		err  error
		want ErrorKind
	}{
		{nil, KindOther}, // never asked: callers classify errors only
		{ErrNoEndpoint, KindNoEndpoint},
		{fmt.Errorf("route x: %w", ErrNoEndpoint), KindNoEndpoint},
		{context.Canceled, KindCanceled},
		{&dialError{err: &net.OpError{Op: "dial", Err: context.Canceled}}, KindCanceled},
		{context.DeadlineExceeded, KindTimeout},
		{dialTimeout, KindTimeout},
		{os.ErrDeadlineExceeded, KindTimeout},
		{&dialError{err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, KindConnect},
		{&net.OpError{Op: "dial", Err: errors.New("network is unreachable")}, KindConnect},
		{&net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true}, KindConnect},
		{fmt.Errorf("read: %w", os.NewSyscallError("read", errConnReset)), KindReset},
		{errors.New("tls: bad certificate"), KindOther},
	} {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("KindOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	// The spellings are metric label values: part of the metrics contract.
	want := []string{"other", "connect", "timeout", "reset", "no_endpoint", "canceled"}
	for k := range NumErrorKinds {
		if k.String() != want[k] {
			t.Errorf("kind %d is %q, want %q", k, k, want[k])
		}
	}
	if !dialTimeout.Timeout() {
		t.Error("a dial timeout must report Timeout() for net/http")
	}
}
