// Package backend sends proxied requests to a named group of endpoints.
//
// A Backend is an http.RoundTripper for httputil.ReverseProxy. It owns
// tuned connection pools (a synchronous HTTP/1.1 pool per plain-text
// endpoint for requests without a body, one http.Transport for the rest:
// see package h1client), balances requests over its endpoints (round robin
// or least request), ejects endpoints that cannot be reached (passive
// health) and retries idempotent requests that provably got no byte of
// an answer.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/h1client"
	"github.com/umbragw/umbra/internal/tracing"
)

// Defaults applied to zero values in config.Backend.
const (
	// DefaultConnectTimeout bounds dialing (and the TLS handshake) of one
	// endpoint; short, because a dial failure is retried elsewhere.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultResponseHeaderTimeout bounds the wait for response headers
	// once the request is written (config key "timeout").
	DefaultResponseHeaderTimeout = 60 * time.Second
	// DefaultIdleTimeout closes pooled keep-alive connections unused this
	// long; it is also the longest a dropped backend keeps connections
	// that were busy when Close was called.
	DefaultIdleTimeout = 90 * time.Second
	// DefaultMaxIdlePerEndpoint is the keep-alive pool size per endpoint.
	DefaultMaxIdlePerEndpoint = 512
	// DefaultMaxFails is the number of consecutive connection failures
	// that ejects an endpoint.
	DefaultMaxFails = 3
	// DefaultEjectFor is how long an ejected endpoint stays out.
	DefaultEjectFor = 10 * time.Second
	// DefaultRetryAttempts is the number of extra attempts, each on another
	// endpoint, for idempotent body-less requests whose dial failed.
	DefaultRetryAttempts = 1
)

const (
	// dialKeepAlive is the TCP keep-alive probe period; it detects peers
	// that vanished without a FIN while a connection sits in the pool.
	dialKeepAlive = 30 * time.Second
	// expectContinueTimeout: wait this long for "100 Continue" before
	// sending a body anyway, as browsers and curl do.
	expectContinueTimeout = 1 * time.Second
)

// Balance policies (config key "balance").
const (
	BalanceRoundRobin   = "round_robin"
	BalanceLeastRequest = "least_request"
)

// Host policies (config key "host"); any other value is a literal host.
const (
	HostKeep     = "keep"
	HostEndpoint = "endpoint"
)

// Backend is a named group of endpoints with its own connection pool.
// It is safe for concurrent use.
type Backend struct {
	name         string
	eps          []*endpoint
	transport    *http.Transport
	leastRequest bool
	hostPolicy   string // HostKeep, HostEndpoint, or "" for a literal
	literalHost  string
	s            settings
	tracer       *tracing.Tracer // nil when tracing is off

	rr        atomic.Uint64 // round-robin position
	ejected   atomic.Int64  // endpoints currently ejected; 0 keeps Pick off the clock
	panicking atomic.Bool   // every endpoint ejected, logged once per transition
	log       atomic.Pointer[slog.Logger]
}

// Option sets up a Backend beyond its configuration.
type Option func(*Backend)

// WithTracer makes a client span for every attempt (nil: tracing off).
func WithTracer(t *tracing.Tracer) Option { return func(b *Backend) { b.tracer = t } }

// New builds a Backend from its configuration. Zero values take the
// package defaults. Endpoint URLs are parsed from cfg.Endpoints.
func New(cfg *config.Backend, opts ...Option) (*Backend, error) {
	if cfg == nil {
		return nil, errors.New("backend: nil config")
	}
	b, err := build(cfg)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", cfg.Name, err)
	}
	for _, o := range opts {
		o(b)
	}
	return b, nil
}

func build(cfg *config.Backend) (*Backend, error) {
	s, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	urls, err := endpointURLs(cfg)
	if err != nil {
		return nil, err
	}
	b := &Backend{name: cfg.Name, s: s}
	if err := b.setPolicies(cfg); err != nil {
		return nil, err
	}
	hasTLS := false
	for _, u := range urls {
		e := newEndpoint(u)
		e.fast = newFastPool(s, u)
		b.eps = append(b.eps, e)
		hasTLS = hasTLS || u.Scheme == "https"
	}
	b.transport, err = newTransport(s, len(urls), hasTLS, cfg.TLS)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Backend) setPolicies(cfg *config.Backend) error {
	switch cfg.Balance {
	case "", BalanceRoundRobin:
	case BalanceLeastRequest:
		b.leastRequest = true
	default:
		return fmt.Errorf("unknown balance %q (want round_robin or least_request)", cfg.Balance)
	}
	switch cfg.Host {
	case "", HostKeep:
		b.hostPolicy = HostKeep
	case HostEndpoint:
		b.hostPolicy = HostEndpoint
	default:
		b.literalHost = cfg.Host
	}
	return nil
}

// endpointURLs parses the endpoints (config validation explained what is
// wrong with them, at its position) down to scheme://host:port. A backend
// without endpoints is refused here, at load time, rather than failing
// every request.
func endpointURLs(cfg *config.Backend) ([]*url.URL, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("no endpoints")
	}
	urls := make([]*url.URL, 0, len(cfg.Endpoints))
	for _, raw := range cfg.Endpoints {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", raw, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("endpoint %q: want http://host:port or https://host:port", raw)
		}
		urls = append(urls, &url.URL{Scheme: u.Scheme, Host: u.Host})
	}
	return urls, nil
}

// Name returns the backend's configured name.
func (b *Backend) Name() string { return b.name }

// Close releases the pooled idle connections; the gateway calls it when a
// reload drops the backend. Requests still in flight finish normally; the
// connections they free are closed by the idle timeout.
func (b *Backend) Close() {
	b.transport.CloseIdleConnections()
	for _, e := range b.eps {
		if e.fast != nil {
			e.fast.Close()
		}
	}
}

// RoundTrip implements http.RoundTripper for the proxy. It picks an
// endpoint with the balancer, skipping ejected endpoints, points req.URL
// (scheme, host) at it, sets req.Host per the host policy and sends it on
// the backend's own transport.
//
// RoundTrip modifies req in place, which the RoundTripper contract
// normally forbids: the proxy owns req (it is ReverseProxy's outgoing
// request, whose URL Clone already deep-copied), and copying it per
// request would cost an allocation on the hot path.
//
// A request is retried on another endpoint only when it is idempotent,
// has no body, got no byte of an answer (the dial failed, or the endpoint
// closed or reset the connection before answering) and the client is
// still waiting. Retries never go back to an endpoint already tried; when none
// is left the last error is returned.
func (b *Backend) RoundTrip(req *http.Request) (*http.Response, error) {
	return b.Exchange(req.Context(), req, nil)
}

// Exchange is RoundTrip with the request's context and options (the 1xx
// callback, a field block) given apart from req, for a caller that builds
// req from pooled parts: on the synchronous HTTP/1.1 pool that spares the
// request copy WithContext makes and an httptrace context value per
// request. req's own context is ignored. Without a 1xx callback the
// httptrace.ClientTrace of ctx, if any, hears 1xx responses; a response
// that comes through http.Transport never leaves its fields in a block.
func (b *Backend) Exchange(ctx context.Context, req *http.Request, opts *h1client.ExchangeOptions) (*http.Response, error) {
	e := b.pick(nil)
	if e == nil {
		return nil, ErrNoEndpoint
	}
	resp, err := b.send(ctx, e, req, opts, 0)
	if err == nil || !b.retryable(ctx, req, err) {
		return resp, err
	}
	return b.retry(ctx, req, opts, e, err)
}

// retry runs the extra attempts; it is off the hot path, so the slice of
// tried endpoints may allocate.
func (b *Backend) retry(ctx context.Context, req *http.Request, opts *h1client.ExchangeOptions, first *endpoint, err error) (*http.Response, error) {
	tried := []*endpoint{first}
	for range b.s.retries {
		e := b.pick(tried)
		if e == nil {
			return nil, err
		}
		var resp *http.Response
		resp, err = b.send(ctx, e, req, opts, len(tried))
		if err == nil || !beforeResponse(err) || ctx.Err() != nil {
			return resp, err
		}
		tried = append(tried, e)
	}
	return nil, err
}

// retryable reports whether a failed first attempt may be retried: an
// idempotent bodyless request that got no byte of an answer (the dial
// failed, or the endpoint closed or reset the connection before
// answering), as nginx's proxy_next_upstream error does. Once response
// bytes arrived nothing is retried: part of an answer may be lost.
func (b *Backend) retryable(ctx context.Context, req *http.Request, err error) bool {
	return b.mayRetry(req) && beforeResponse(err) && ctx.Err() == nil
}

func (b *Backend) mayRetry(req *http.Request) bool {
	return b.s.retries > 0 && idempotent(req.Method) && bodyless(req)
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// bodyless reports whether the request can be sent again as is. On a
// client request ContentLength 0 with a non-nil Body means "length
// unknown", and the transport closes the Body when a dial fails, so only
// a nil or NoBody Body counts. ReverseProxy already sets Body to nil when
// the incoming request's ContentLength is 0.
func bodyless(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody
}

// withContext gives http.Transport the context and 1xx callback, which it
// takes from the request only.
func withContext(ctx context.Context, req *http.Request, opts *h1client.ExchangeOptions) *http.Request {
	if opts != nil && opts.Got1xx != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got1xxResponse: opts.Got1xx})
	}
	if ctx == req.Context() {
		return req
	}
	return req.WithContext(ctx)
}

// viaTransport sends req on the http.Transport. For a request that may be
// retried it watches for the first response byte, to tell a connection
// that died before answering (noResponseError) from one that died in the
// middle of an answer.
func (b *Backend) viaTransport(ctx context.Context, req *http.Request, opts *h1client.ExchangeOptions) (*http.Response, error) {
	if !b.mayRetry(req) {
		return b.transport.RoundTrip(withContext(ctx, req, opts))
	}
	var answered atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotFirstResponseByte: func() { answered.Store(true) }})
	resp, err := b.transport.RoundTrip(withContext(ctx, req, opts))
	if err != nil && !answered.Load() && !isDialError(err) && !isTimeout(err) && ctx.Err() == nil {
		err = &h1client.NoResponseError{Err: err}
	}
	return resp, err
}

// send makes one attempt on endpoint e and records its outcome; resend
// counts the attempts before it.
func (b *Backend) send(ctx context.Context, e *endpoint, req *http.Request, opts *h1client.ExchangeOptions, resend int) (*http.Response, error) {
	if b.tracer != nil {
		return b.sendTraced(ctx, e, req, opts, resend)
	}
	return b.sendOnce(ctx, e, req, opts)
}

// sendTraced is send inside a client span, whose traceparent the
// upstream gets; the span ends when the answer's body is closed.
func (b *Backend) sendTraced(ctx context.Context, e *endpoint, req *http.Request, opts *h1client.ExchangeOptions, resend int) (*http.Response, error) {
	span := b.tracer.StartAttempt(ctx, b.name, e.url, req, resend)
	resp, err := b.sendOnce(ctx, e, req, opts)
	if err != nil {
		tracing.EndAttempt(span, 0, KindOf(err).String())
		return nil, err
	}
	tracing.EndAttemptWithBody(span, resp)
	return resp, nil
}

// point aims req at endpoint e: its scheme and host, and the Host header
// the backend's policy asks for.
func (b *Backend) point(e *endpoint, req *http.Request) {
	req.URL.Scheme = e.url.Scheme
	req.URL.Host = e.url.Host
	switch b.hostPolicy {
	case HostKeep:
	case HostEndpoint:
		req.Host = e.url.Host
	default:
		req.Host = b.literalHost
	}
}

// sendOnce makes one attempt on endpoint e and records its outcome.
func (b *Backend) sendOnce(ctx context.Context, e *endpoint, req *http.Request, opts *h1client.ExchangeOptions) (*http.Response, error) {
	b.point(e, req)
	e.begin()
	var resp *http.Response
	var err error
	if e.fast != nil && h1client.Eligible(req) {
		resp, err = e.fast.Exchange(ctx, req, opts)
	} else {
		if opts != nil && opts.Fields != nil {
			opts.Fields.Block = "" // the response comes with a header map
		}
		resp, err = b.viaTransport(ctx, req, opts)
	}
	if err != nil {
		e.end()
		if isDialError(err) {
			b.connFailed(e)
		}
		return nil, err
	}
	b.connSucceeded(e)
	b.trackBody(e, resp)
	return resp, nil
}
