package h1server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/h1server"
)

// watchSettings are the WatchAfter values the watch tests run with: the
// default (10ms) and negative (watch from the start).
var watchSettings = []struct {
	name  string
	after time.Duration
}{{"default", 0}, {"negative", -1}}

// TestClientGoneCancelsContext proves that a handler waiting on its
// request's context is cancelled when the client closes the connection.
func TestClientGoneCancelsContext(t *testing.T) {
	for _, ws := range watchSettings {
		t.Run(ws.name, func(t *testing.T) {
			entered := make(chan struct{})
			done := make(chan error, 1)
			ts := start(t, &h1server.Server{WatchAfter: ws.after, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				select {
				case <-r.Context().Done():
					done <- r.Context().Err()
				case <-time.After(timeout):
					done <- errors.New("not cancelled")
				}
			})})
			c := dial(t, ts)
			c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			recv(t, entered, "the handler")
			c.Close()
			if err := recv(t, done, "the handler's end"); !errors.Is(err, context.Canceled) {
				t.Fatalf("context: %v, want context.Canceled", err)
			}
		})
	}
}

// TestContextLifetime proves that quick handlers on a keep-alive
// connection run with a live context (the watch must not cancel them)
// and that each context is cancelled once its handler returned.
func TestContextLifetime(t *testing.T) {
	for _, ws := range watchSettings {
		t.Run(ws.name, func(t *testing.T) {
			ctxs := make(chan context.Context, 1)
			ts := start(t, &h1server.Server{WatchAfter: ws.after, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.Context().Err(); err != nil {
					http.Error(w, err.Error(), 500)
				}
				ctxs <- r.Context()
			})})
			c := dial(t, ts)
			for i := 0; i < 5; i++ {
				resp, _ := c.roundTrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				wantStatus(t, resp, 200)
				ctx := recv(t, ctxs, "the context")
				recv(t, ctx.Done(), "the context's end")
				if !errors.Is(ctx.Err(), context.Canceled) {
					t.Fatalf("context after the handler: %v", ctx.Err())
				}
			}
		})
	}
}

// TestSlowRequestsKeepAlive proves that requests running past WatchAfter
// (so the watch starts and stops) leave the connection usable: the next
// request, sent after the response, is parsed and served.
func TestSlowRequestsKeepAlive(t *testing.T) {
	for _, ws := range watchSettings {
		t.Run(ws.name, func(t *testing.T) {
			ts := start(t, &h1server.Server{WatchAfter: ws.after, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !waitCond(func() bool { return h1server.WatchOn(w) }) {
					http.Error(w, "no watch", 500)
					return
				}
				if err := r.Context().Err(); err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				io.WriteString(w, r.URL.Path)
			})})
			c := dial(t, ts)
			for _, path := range []string{"/1", "/2", "/3"} {
				resp, body := c.roundTrip("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
				wantStatus(t, resp, 200)
				wantBody(t, body, path)
			}
		})
	}
}

// TestPipelinedPastWatchAfter proves that a request still running past
// WatchAfter while the next one is already buffered keeps both intact
// (the watch is not started with input waiting).
func TestPipelinedPastWatchAfter(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(30 * time.Millisecond) // past the default WatchAfter
		}
		if err := r.Context().Err(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, r.URL.Path)
	})
	c := dial(t, ts)
	c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"/slow", "/next"} {
		resp, body := c.read("GET")
		wantStatus(t, resp, 200)
		wantBody(t, body, want)
	}
}

// TestNextRequestReadByWatch proves that a request the client sends while
// the previous one runs and is watched, whose first byte the watch reads,
// is parsed intact and served after the first, without cancelling it.
func TestNextRequestReadByWatch(t *testing.T) {
	for _, ws := range watchSettings {
		t.Run(ws.name, func(t *testing.T) {
			watching := make(chan struct{})
			ts := start(t, &h1server.Server{WatchAfter: ws.after, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/first" {
					if !waitCond(func() bool { return h1server.WatchOn(w) }) {
						http.Error(w, "no watch", 500)
						return
					}
					close(watching)
					if !waitCond(func() bool { return h1server.WatchHasByte(w) }) {
						http.Error(w, "watch read nothing", 500)
						return
					}
				}
				if err := r.Context().Err(); err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-A"))
			})})
			c := dial(t, ts)
			c.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
			recv(t, watching, "the watch")
			// Another method: its first byte differs from what the
			// buffer held before.
			c.send("PUT /second HTTP/1.1\r\nHost: x\r\nX-A: b\r\nContent-Length: 0\r\n\r\n")
			for _, want := range []string{"GET /first ", "PUT /second b"} {
				resp, body := c.read("GET")
				wantStatus(t, resp, 200)
				wantBody(t, body, want)
			}
			resp, body := c.roundTrip("GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
			wantStatus(t, resp, 200)
			wantBody(t, body, "GET /third ")
		})
	}
}

// TestNextRequestDuringSlowHandler is the black-box form of the test
// above: the second request is written while the first handler is blocked
// past WatchAfter (so the watch has most likely started and reads it).
func TestNextRequestDuringSlowHandler(t *testing.T) {
	written := make(chan struct{})
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			time.Sleep(50 * time.Millisecond)
			if !handlerWait(written) {
				return
			}
			time.Sleep(10 * time.Millisecond) // let the watch take the byte
		}
		io.WriteString(w, r.URL.Path)
	})
	c := dial(t, ts)
	c.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(60 * time.Millisecond)
	c.send("POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	close(written)
	for _, want := range []string{"/first", "/second"} {
		resp, body := c.read("GET")
		wantStatus(t, resp, 200)
		wantBody(t, body, want)
	}
}

// TestBodyRequestKeptAlive proves that a request with a body is not
// cancelled while the handler runs long after reading it, on a connection
// the client keeps (the watch starts at the body's end).
func TestBodyRequestKeptAlive(t *testing.T) {
	ts := start(t, &h1server.Server{WatchAfter: -1, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		time.Sleep(20 * time.Millisecond)
		if err := r.Context().Err(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	})})
	c := dial(t, ts)
	for _, b := range []string{"one", "two"} {
		resp, body := c.roundTrip("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n" + b)
		wantStatus(t, resp, 200)
		wantBody(t, body, b)
	}
}

// TestClientGoneAfterBody proves that a request whose body the handler
// read to the end is cancelled when the client then hangs up, as with
// net/http: a slow upstream answering a POST is not waited for.
func TestClientGoneAfterBody(t *testing.T) {
	for _, ws := range watchSettings {
		t.Run(ws.name, func(t *testing.T) {
			read := make(chan string, 1)
			done := make(chan error, 1)
			ts := start(t, &h1server.Server{WatchAfter: ws.after, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				read <- string(b)
				select {
				case <-r.Context().Done():
					done <- r.Context().Err()
				case <-time.After(timeout):
					done <- errors.New("not cancelled")
				}
			})})
			for _, framing := range []string{"Content-Length: 5\r\n\r\nhello", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"} {
				c := dial(t, ts)
				c.send("POST / HTTP/1.1\r\nHost: x\r\n" + framing)
				if got := recv(t, read, "the handler's read"); got != "hello" {
					t.Fatalf("body %q", got)
				}
				c.Close()
				if err := recv(t, done, "the handler's end"); !errors.Is(err, context.Canceled) {
					t.Fatalf("%s: context: %v, want context.Canceled", framing, err)
				}
			}
		})
	}
}
