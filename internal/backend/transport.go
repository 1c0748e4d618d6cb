package backend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/h1client"
)

// settings are a backend's effective limits: the config with defaults applied.
type settings struct {
	connectTimeout time.Duration
	headerTimeout  time.Duration
	idleTimeout    time.Duration
	maxIdle        int
	maxConns       int
	maxFails       int64
	ejectFor       time.Duration
	retries        int
}

// resolve applies the package defaults to the zero values of cfg.
func resolve(cfg *config.Backend) (settings, error) {
	s := settings{
		connectTimeout: orDefault(time.Duration(cfg.ConnectTimeout), DefaultConnectTimeout),
		headerTimeout:  orDefault(time.Duration(cfg.Timeout), DefaultResponseHeaderTimeout),
		idleTimeout:    orDefault(time.Duration(cfg.IdleTimeout), DefaultIdleTimeout),
		maxIdle:        orDefault(cfg.MaxIdlePerEndpoint, DefaultMaxIdlePerEndpoint),
		maxConns:       cfg.MaxConnsPerEndpoint,
		maxFails:       int64(orDefault(cfg.Health.MaxFails, DefaultMaxFails)),
		ejectFor:       orDefault(time.Duration(cfg.Health.EjectFor), DefaultEjectFor),
		retries:        orDefault(cfg.Retry.Attempts, DefaultRetryAttempts),
	}
	if cfg.Retry.Disable {
		s.retries = 0
	}
	if s.connectTimeout < 0 || s.headerTimeout < 0 || s.idleTimeout < 0 || s.ejectFor < 0 {
		return s, fmt.Errorf("timeouts must not be negative")
	}
	if s.maxIdle < 0 || s.maxConns < 0 || s.maxFails < 0 || s.retries < 0 {
		return s, fmt.Errorf("max_idle_per_endpoint, max_conns_per_endpoint, health.max_fails and retry.attempts must not be negative")
	}
	return s, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// newTransport builds the backend's own connection pool, tuned for a proxy.
//
// Go's http.DefaultTransport keeps only 2 idle connections per host
// (DefaultMaxIdleConnsPerHost). Under concurrent load a proxy then closes
// nearly every connection after one request and dials a new one for the
// next, which is the usual cause of slow Go proxies and of TIME_WAIT
// exhaustion; hence a large per-endpoint idle pool.
func newTransport(s settings, endpoints int, hasTLS bool, tlsCfg *config.UpstreamTLS) (*http.Transport, error) {
	clientTLS, err := tlsConfig(tlsCfg)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: s.connectTimeout, KeepAlive: dialKeepAlive}
	return &http.Transport{
		// A gateway must never route upstream traffic through
		// HTTP_PROXY/HTTPS_PROXY found in its own environment.
		Proxy:       nil,
		DialContext: markDialErrors(dialer.DialContext),
		// With compression enabled the transport adds Accept-Encoding:
		// gzip on its own and transparently decompresses, so the client
		// would get a body and headers it never asked for.
		DisableCompression:    true,
		MaxIdleConnsPerHost:   s.maxIdle,
		MaxIdleConns:          s.maxIdle * endpoints, // every endpoint may fill its pool
		MaxConnsPerHost:       s.maxConns,
		IdleConnTimeout:       s.idleTimeout,
		ResponseHeaderTimeout: s.headerTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
		TLSHandshakeTimeout:   s.connectTimeout,
		TLSClientConfig:       clientTLS,
		// A custom DialContext or TLSClientConfig turns off Go's automatic
		// HTTP/2; ask for it back, but only when some endpoint speaks TLS
		// (plain-text endpoints stay HTTP/1.1: there is no h2c upgrade).
		ForceAttemptHTTP2: hasTLS,
	}, nil
}

// newFastPool returns the synchronous HTTP/1.1 pool of a plain-text
// endpoint, or nil when the endpoint speaks TLS or connections per
// endpoint are capped (max_conns_per_endpoint needs http.Transport's
// waiting for a free connection).
func newFastPool(s settings, u *url.URL) *h1client.Pool {
	if u.Scheme != "http" || s.maxConns > 0 {
		return nil
	}
	dialer := &net.Dialer{Timeout: s.connectTimeout, KeepAlive: dialKeepAlive}
	return h1client.New(u.Host, h1client.Options{
		Dial:          h1client.DialFunc(markDialErrors(dialer.DialContext)),
		HeaderTimeout: s.headerTimeout,
		IdleTimeout:   s.idleTimeout,
		MaxIdle:       s.maxIdle,
	})
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// markDialErrors wraps dial errors in dialError so RoundTrip can tell "the
// endpoint could not be reached, nothing was sent" from every later failure
// without relying on how net/http happens to wrap errors.
func markDialErrors(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &dialError{err: err}
		}
		return c, nil
	}
}

// tlsConfig turns the upstream TLS settings into a client config. A nil
// config still gets a non-nil tls.Config so the minimum version is set.
func tlsConfig(c *config.UpstreamTLS) (*tls.Config, error) {
	out := &tls.Config{MinVersion: tls.VersionTLS12}
	if c == nil {
		return out, nil
	}
	out.ServerName = c.ServerName
	out.InsecureSkipVerify = c.InsecureSkipVerify // explicitly requested by the operator
	if c.CAFile == "" {
		return out, nil
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls.ca_file %s: no PEM certificates found", c.CAFile)
	}
	out.RootCAs = pool
	return out, nil
}
