package h1server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
)

// echoBody answers with the request body, or on /ignore with "ignored"
// and without reading it.
func echoBody(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ignore" {
		io.WriteString(w, "ignored")
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Write(b)
}

// TestRequestBodies proves that the handler reads bodies framed by
// Content-Length and by chunks (with a trailer), on one connection.
func TestRequestBodies(t *testing.T) {
	ts := serve(t, echoBody)
	c := dial(t, ts)
	resp, body := c.roundTrip("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	wantStatus(t, resp, 200)
	wantBody(t, body, "hello")
	resp, body = c.roundTrip("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "hello world")
	resp, body = c.roundTrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "")
}

// TestUnreadSmallBodyDrained proves that a body the handler left unread
// (with a Content-Length or in chunks) is read past by the server, so the
// next request on the connection is parsed correctly.
func TestUnreadSmallBodyDrained(t *testing.T) {
	ts := serve(t, echoBody)
	c := dial(t, ts)
	big := strings.Repeat("z", 100<<10)
	resp, body := c.roundTrip(fmt.Sprintf("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(big), big))
	wantStatus(t, resp, 200)
	wantBody(t, body, "ignored")
	resp, body = c.roundTrip("POST /ignore HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	wantStatus(t, resp, 200)
	if resp.Close {
		t.Fatal("connection closed after a small unread body")
	}
	wantBody(t, body, "ignored")
	resp, body = c.roundTrip("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nnext")
	wantStatus(t, resp, 200)
	wantBody(t, body, "next")
}

// TestUnreadLargeBodyCloses proves that when the handler leaves more than
// 256 KiB of the body unread, the server answers and then ends the
// connection rather than reading the rest: the client here sends only
// part of the declared body and waits, so a server reading on would hang.
// The end must be a clean one (FIN), so the response cannot be lost to a
// reset.
func TestUnreadLargeBodyCloses(t *testing.T) {
	ts := serve(t, echoBody)
	c := dial(t, ts)
	sent := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c.Conn, "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"+strings.Repeat("z", 300<<10))
		sent <- err
	}()
	resp, body := c.read("POST")
	wantStatus(t, resp, 200)
	wantBody(t, body, "ignored")
	if err := recv(t, sent, "body write"); err != nil {
		t.Fatal(err)
	}
	c.expectEOF()
}

// TestHandlerClosesUnreadBody proves that a handler closing a request
// body it did not read (as http.Transport does with a request body it
// gives up on) does not make the server read the rest of the body, that
// reading after Close fails as with net/http, and that the connection is
// then ended.
func TestHandlerClosesUnreadBody(t *testing.T) {
	readErr := make(chan error, 1)
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		r.Body.Close()
		_, err := r.Body.Read(make([]byte, 1))
		readErr <- err
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})
	c := dial(t, ts)
	c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + strings.Repeat("z", 1000))
	resp, body := c.read("POST")
	wantStatus(t, resp, 413)
	wantBody(t, body, "too large\n")
	if err := recv(t, readErr, "Read after Close"); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Fatalf("Read after Close: %v, want http.ErrBodyReadAfterClose", err)
	}
	c.expectClosed()
}

// TestExpectContinue proves that "100 Continue" is sent only once the
// handler reads the body (after a 103 the handler sends first), then the
// final response, and that the connection is kept.
func TestExpectContinue(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
		}
		echoBody(w, r)
	})
	c := dial(t, ts)
	c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	resp, _ := c.read("POST")
	wantStatus(t, resp, 103)
	wantHeader(t, resp.Header, "Link", "</style.css>; rel=preload")
	resp, _ = c.read("POST")
	wantStatus(t, resp, 100)
	c.send("hello")
	resp, body := c.read("POST")
	wantStatus(t, resp, 200)
	wantBody(t, body, "hello")
	if resp.Close {
		t.Fatal("connection closed")
	}
	resp, body = c.roundTrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "")
}

// TestExpectContinueNotRead proves that a handler answering without
// reading the body sends no "100 Continue": the client gets the final
// response with "Connection: close" and the server ends the connection
// without waiting for a body the client must not send.
func TestExpectContinueNotRead(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no thanks", http.StatusRequestEntityTooLarge)
	})
	c := dial(t, ts)
	c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	resp, body := c.read("POST")
	wantStatus(t, resp, 413)
	if !resp.Close {
		t.Fatal("response without Connection: close")
	}
	wantBody(t, body, "no thanks\n")
	c.expectClosed()
}

// TestExpectContinueNetHTTPClient proves the 100-continue exchange with
// net/http's client, which waits for the 100 before sending the body.
func TestExpectContinueNetHTTPClient(t *testing.T) {
	ts := serve(t, echoBody)
	c := client(t)
	c.Transport.(*http.Transport).ExpectContinueTimeout = timeout
	var got []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		got = append(got, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "POST", ts.url(), bytes.NewReader([]byte("payload")))
	req.Header.Set("Expect", "100-continue")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	wantStatus(t, resp, 200)
	wantBody(t, string(b), "payload")
	if len(got) != 1 || got[0] != 100 {
		t.Fatalf("1xx responses %v, want [100]", got)
	}
}
