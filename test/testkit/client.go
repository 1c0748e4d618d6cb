package testkit

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// NewClient returns a client with its own connection pool of up to
// idlePerHost idle connections per host (no proxy, no transparent
// compression) and the given timeout. Cleanup closes its idle connections.
func NewClient(t testing.TB, idlePerHost int, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: idlePerHost, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Send performs one request and reads the whole answer. hdr are
// name/value pairs added to the request; "Host" sets the request host.
// It does not touch a testing.T, so other goroutines may call it.
func Send(c *http.Client, method, url string, body io.Reader, hdr ...string) (Response, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return Response{}, err
	}
	setHeaders(req, hdr)
	resp, err := c.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("reading body: %w", err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// setHeaders adds the name/value pairs hdr to req; "Host" sets req.Host.
func setHeaders(req *http.Request, hdr []string) {
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
}

// Do is Send that fails the test on error.
func Do(t testing.TB, c *http.Client, method, url string, body io.Reader, hdr ...string) Response {
	t.Helper()
	r, err := Send(c, method, url, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}
