package backend

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/umbragw/umbra/internal/h1client"
)

// ErrNoEndpoint means there was no endpoint to send a request to. New
// refuses a backend without endpoints and panic mode keeps ejected ones in
// use, so a Backend's RoundTrip returns it only defensively; the proxy
// uses it for a request whose backend does not exist, so that case gets
// the same error kind.
var ErrNoEndpoint = errors.New("backend: no endpoint available")

// ErrorKind classifies an upstream error (KindOf). Its String is a metric
// label value and part of the metrics contract, so it never changes
// spelling.
type ErrorKind uint8

// Error kinds.
const (
	KindOther      ErrorKind = iota // none of the others
	KindConnect                     // dial refused or unreachable, DNS
	KindTimeout                     // dial or response-header timeout, context deadline
	KindReset                       // connection reset, EOF or broken pipe after connecting
	KindNoEndpoint                  // ErrNoEndpoint
	KindCanceled                    // the client went away: context.Canceled
	NumErrorKinds                   // how many kinds there are, for arrays indexed by kind
)

var kindNames = [NumErrorKinds]string{"other", "connect", "timeout", "reset", "no_endpoint", "canceled"}

func (k ErrorKind) String() string { return kindNames[k] }

// dialError marks an error returned by the backend's own dialer. Its
// presence is the proof that no byte of the request reached the endpoint,
// which is what makes a retry safe and what passive health counts.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// Timeout lets net/http and callers treat a dial timeout as a net.Error timeout.
func (e *dialError) Timeout() bool {
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}

// Temporary is part of net.Error; dial failures are worth retrying elsewhere.
func (e *dialError) Temporary() bool { return true }

// beforeResponse reports whether err proves that no byte of an answer
// arrived: the dial failed, or the connection died before the answer
// began (h1client.NoResponseError, also used for the http.Transport).
func beforeResponse(err error) bool {
	var nr *h1client.NoResponseError
	return isDialError(err) || errors.As(err, &nr)
}

// isDialError reports whether err came from dialing, so nothing was sent.
func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}

// KindOf classifies an upstream error for metrics and status codes.
//
// The order matters: a canceled dial is the client's doing, not the
// endpoint's, and a dial timeout is reported as a timeout, not a refusal.
func KindOf(err error) ErrorKind {
	switch {
	case errors.Is(err, ErrNoEndpoint):
		return KindNoEndpoint
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case isTimeout(err):
		return KindTimeout
	case isConnectError(err):
		return KindConnect
	case isResetError(err):
		return KindReset
	}
	return KindOther
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// net/http's "timeout awaiting response headers" and dial timeouts
	// are net.Errors whose Timeout reports true.
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isConnectError covers errors from dialers other than ours too (for
// callers classifying errors from elsewhere): any dial OpError or DNS error.
func isConnectError(err error) bool {
	if isDialError(err) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

func isResetError(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}
