package h1server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/h1server"
)

// A client that stops sending its body halfway is cut after
// BodyReadTimeout of silence: the handler's read fails and the
// connection closes. One that sends slowly but steadily, for longer than
// the timeout in all, is served: the limit is on the wait between reads.
func TestBodyReadTimeout(t *testing.T) {
	const limit = 300 * time.Millisecond
	got := make(chan string, 4)
	ts := start(t, &h1server.Server{
		BodyReadTimeout: limit,
		Log:             discardLogger(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				got <- "error"
				w.WriteHeader(http.StatusRequestTimeout)
				return
			}
			got <- string(b)
			_, _ = io.WriteString(w, "ok")
		}),
	})

	t.Run("stalled", func(t *testing.T) {
		c := dial(t, ts)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
		if r := recv(t, got, "the handler's read"); r != "error" {
			t.Fatalf("handler read %q from a stalled body, want a timeout error", r)
		}
		// The handler's answer goes out, and the connection, whose
		// body is unfinished, is not reused.
		resp, _ := c.read("POST")
		wantStatus(t, resp, http.StatusRequestTimeout)
		c.expectClosed()
	})

	t.Run("slow but steady", func(t *testing.T) {
		c := dial(t, ts)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
		for _, b := range strings.Split("0123456789", "") {
			time.Sleep(limit / 3) // 10 pauses: more than three limits in all
			c.send(b)
		}
		if r := recv(t, got, "the handler's read"); r != "0123456789" {
			t.Fatalf("handler read %q, want the whole body", r)
		}
		resp, body := c.read("POST")
		wantStatus(t, resp, http.StatusOK)
		wantBody(t, body, "ok")
		// The connection is kept and serves the next request.
		resp, _ = c.roundTrip("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		wantStatus(t, resp, http.StatusOK)
	})
}
