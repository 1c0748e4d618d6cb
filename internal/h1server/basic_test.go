package h1server_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"testing"
)

// framingHandler answers by path: /length with a Content-Length, /chunked
// with a body of unknown length, /empty with nothing at all, /close asking
// to close the connection, and anything else with the path as the body.
func framingHandler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/length":
		w.Header().Set("Content-Length", "5")
		w.Header().Set("X-Handler", "yes")
		io.WriteString(w, "hello")
	case "/chunked":
		io.WriteString(w, "abc")
		io.WriteString(w, "def")
	case "/empty":
	case "/close":
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	default:
		w.Header().Set("Content-Length", fmt.Sprint(len(r.URL.Path)))
		io.WriteString(w, r.URL.Path)
	}
}

// TestKeepAliveFraming proves that several HTTP/1.1 requests on one
// connection get complete responses, each with a Date, and that the body
// is framed by the handler's Content-Length, by chunks when the length is
// unknown, and by "Content-Length: 0" when the handler wrote nothing.
func TestKeepAliveFraming(t *testing.T) {
	ts := serve(t, framingHandler)
	c := dial(t, ts)
	for round := 0; round < 2; round++ {
		resp, body := c.roundTrip("GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
		wantStatus(t, resp, 200)
		if resp.Proto != "HTTP/1.1" {
			t.Fatalf("proto %q", resp.Proto)
		}
		wantHeader(t, resp.Header, "Content-Length", "5")
		wantHeader(t, resp.Header, "X-Handler", "yes")
		if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
			t.Fatalf("Date %q: %v", resp.Header.Get("Date"), err)
		}
		if resp.Close || len(resp.TransferEncoding) != 0 {
			t.Fatalf("Close %v, Transfer-Encoding %q", resp.Close, resp.TransferEncoding)
		}
		wantBody(t, body, "hello")

		resp, body = c.roundTrip("GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
		wantStatus(t, resp, 200)
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || resp.ContentLength != -1 {
			t.Fatalf("Transfer-Encoding %q, Content-Length %d; want chunked", resp.TransferEncoding, resp.ContentLength)
		}
		wantHeader(t, resp.Header, "Content-Length")
		if resp.Header.Get("Date") == "" {
			t.Fatal("no Date")
		}
		wantBody(t, body, "abcdef")

		resp, body = c.roundTrip("GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
		wantStatus(t, resp, 200)
		wantHeader(t, resp.Header, "Content-Length", "0")
		if len(resp.TransferEncoding) != 0 {
			t.Fatalf("Transfer-Encoding %q", resp.TransferEncoding)
		}
		wantBody(t, body, "")
	}
}

// TestClientReusesConnection proves, with net/http's client, that
// keep-alive works end to end: every request after the first goes over
// the same connection.
func TestClientReusesConnection(t *testing.T) {
	ts := serve(t, framingHandler)
	c := client(t)
	for i, path := range []string{"/length", "/chunked", "/empty", "/other"} {
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", ts.url()+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"/length": "hello", "/chunked": "abcdef", "/empty": "", "/other": "/other"}[path]
		wantBody(t, string(b), want)
		if reused != (i > 0) {
			t.Fatalf("request %d (%s): connection reused %v", i, path, reused)
		}
	}
}

// TestHTTP10 proves that an HTTP/1.0 request gets an HTTP/1.0 answer and
// the connection closes after it, as HTTP/1.0 defaults to.
func TestHTTP10(t *testing.T) {
	ts := serve(t, framingHandler)
	c := dial(t, ts)
	resp, body := c.roundTrip("GET /length HTTP/1.0\r\n\r\n")
	wantStatus(t, resp, 200)
	if resp.Proto != "HTTP/1.0" {
		t.Fatalf("proto %q, want HTTP/1.0", resp.Proto)
	}
	wantHeader(t, resp.Header, "Connection")
	wantHeader(t, resp.Header, "Content-Length", "5")
	wantBody(t, body, "hello")
	c.expectClosed()
}

// TestHTTP10KeepAlive proves that an HTTP/1.0 request asking for
// keep-alive keeps the connection when the response has a length (and
// says "Connection: keep-alive"), and that a following request without
// the ask ends it.
func TestHTTP10KeepAlive(t *testing.T) {
	ts := serve(t, framingHandler)
	c := dial(t, ts)
	for _, path := range []string{"/length", "/empty"} {
		resp, body := c.roundTrip("GET " + path + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		wantStatus(t, resp, 200)
		if resp.Proto != "HTTP/1.0" {
			t.Fatalf("proto %q", resp.Proto)
		}
		wantHeader(t, resp.Header, "Connection", "keep-alive")
		if resp.Close {
			t.Fatal("response closes the connection")
		}
		want := map[string]string{"/length": "hello", "/empty": ""}[path]
		wantBody(t, body, want)
	}
	resp, body := c.roundTrip("GET /last HTTP/1.0\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "/last")
	wantHeader(t, resp.Header, "Connection")
	c.expectClosed()
}

// TestHTTP10HandlerKeepAlive proves that a "Connection: keep-alive" set by
// the handler is not sent to an HTTP/1.0 client whose connection closes
// after the response (it did not ask for keep-alive), so the client is
// not told it may send another request.
func TestHTTP10HandlerKeepAlive(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "keep-alive")
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})
	c := dial(t, ts)
	resp, body := c.roundTrip("GET / HTTP/1.0\r\n\r\n")
	wantStatus(t, resp, 200)
	wantHeader(t, resp.Header, "Connection")
	wantBody(t, body, "ok")
	c.expectClosed()
}

// TestHTTP10CloseDelimited proves that a body of unknown length to an
// HTTP/1.0 client, which cannot take chunks, is ended by closing the
// connection, even if the client asked for keep-alive.
func TestHTTP10CloseDelimited(t *testing.T) {
	ts := serve(t, framingHandler)
	c := dial(t, ts)
	resp, body := c.roundTrip("GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	wantStatus(t, resp, 200)
	if len(resp.TransferEncoding) != 0 || resp.ContentLength != -1 {
		t.Fatalf("Transfer-Encoding %q, Content-Length %d; want neither", resp.TransferEncoding, resp.ContentLength)
	}
	wantHeader(t, resp.Header, "Connection")
	if !resp.Close {
		t.Fatal("resp.Close false: the body must be close-delimited")
	}
	wantBody(t, body, "abcdef") // read to EOF: the server closed
}

// TestConnectionClose proves that "Connection: close" from the client or
// from the handler is answered with "Connection: close" and the server
// closes the connection after the response.
func TestConnectionClose(t *testing.T) {
	for _, tc := range []struct{ name, req, body string }{
		{"client", "GET /length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "hello"},
		{"handler", "GET /close HTTP/1.1\r\nHost: x\r\n\r\n", "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := serve(t, framingHandler)
			c := dial(t, ts)
			resp, body := c.roundTrip(tc.req)
			wantStatus(t, resp, 200)
			if !resp.Close { // ReadResponse removes "Connection: close" and sets Close
				t.Fatalf("response without Connection: close; header %q", resp.Header)
			}
			wantBody(t, body, tc.body)
			c.expectClosed()
		})
	}
}

// TestNothingServedAfterClose proves that a request pipelined behind one
// with "Connection: close" is not served.
func TestNothingServedAfterClose(t *testing.T) {
	var paths []string
	var mu sync.Mutex
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		framingHandler(w, r)
	})
	c := dial(t, ts)
	c.send("GET /length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := c.read("GET")
	wantStatus(t, resp, 200)
	wantBody(t, body, "hello")
	c.expectClosed()
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "/length" {
		t.Fatalf("handler saw %q, want only /length", paths)
	}
}

// TestPipelining proves that requests written back to back in one write,
// including one with a body, are answered in order.
func TestPipelining(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	})
	c := dial(t, ts)
	c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz" +
		"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"GET /a ", "POST /b xyz", "GET /c "} {
		resp, body := c.read("GET")
		wantStatus(t, resp, 200)
		wantBody(t, body, want)
	}
}

// TestHead proves that a HEAD response carries no body even when the
// handler writes one (Write reports success, as with net/http), that the
// handler's Content-Length is kept, and that the connection stays usable.
func TestHead(t *testing.T) {
	type result struct {
		n   int
		err error
	}
	writes := make(chan result, 2)
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/length" {
			w.Header().Set("Content-Length", "11")
		}
		n, err := io.WriteString(w, "hello world")
		writes <- result{n, err}
	})
	c := dial(t, ts)
	c.send("HEAD /length HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ := c.read("HEAD")
	wantStatus(t, resp, 200)
	wantHeader(t, resp.Header, "Content-Length", "11")
	if r := recv(t, writes, "Write result"); r.n != 11 || r.err != nil {
		t.Fatalf("Write = %d, %v; want 11, nil", r.n, r.err)
	}
	c.send("HEAD /nolength HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ = c.read("HEAD")
	wantStatus(t, resp, 200)
	if len(resp.TransferEncoding) != 0 {
		t.Fatalf("Transfer-Encoding %q on a HEAD response", resp.TransferEncoding)
	}
	recv(t, writes, "Write result")
	// Body bytes after either head would be taken for the next status line.
	resp, body := c.roundTrip("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "hello world")
	recv(t, writes, "Write result")
}

// TestNoBodyStatus proves that 204 and 304 responses carry no body (Write
// returns http.ErrBodyNotAllowed), that a 204 has no Content-Length, and
// that the connection stays usable after them.
func TestNoBodyStatus(t *testing.T) {
	errs := make(chan error, 1)
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.Header().Set("Content-Length", "3")
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("Content-Length", "3") // of the representation
			w.Header().Set("Etag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, "fine")
			return
		}
		_, err := io.WriteString(w, "abc")
		errs <- err
	})
	c := dial(t, ts)
	resp, body := c.roundTrip("GET /204 HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 204)
	wantHeader(t, resp.Header, "Content-Length")
	wantBody(t, body, "")
	if err := recv(t, errs, "Write error"); !errors.Is(err, http.ErrBodyNotAllowed) {
		t.Fatalf("Write after 204: %v, want http.ErrBodyNotAllowed", err)
	}
	resp, body = c.roundTrip("GET /304 HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 304)
	wantHeader(t, resp.Header, "Etag", `"v1"`)
	wantBody(t, body, "")
	if err := recv(t, errs, "Write error"); !errors.Is(err, http.ErrBodyNotAllowed) {
		t.Fatalf("Write after 304: %v, want http.ErrBodyNotAllowed", err)
	}
	resp, body = c.roundTrip("GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "fine")
}

// TestRequestFields proves that the handler sees the client's address in
// RemoteAddr, the Host field in r.Host, and for an absolute-form target
// the target's host and path.
func TestRequestFields(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s|%s", r.RemoteAddr, r.Host, r.URL.Path, r.RequestURI)
	})
	c := dial(t, ts)
	local := c.LocalAddr().String()
	_, body := c.roundTrip("GET /p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n")
	wantBody(t, body, local+"|example.com:8080|/p|/p?q=1")
	_, body = c.roundTrip("GET http://abs.example/x/y?z HTTP/1.1\r\nHost: ignored.example\r\n\r\n")
	wantBody(t, body, local+"|abs.example|/x/y|http://abs.example/x/y?z")
	_, body = c.roundTrip("GET / HTTP/1.0\r\n\r\n") // HTTP/1.0 may leave Host out
	wantBody(t, body, local+"||/|/")
}
