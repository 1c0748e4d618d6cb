package h1server_test

import (
	"io"
	"net/http"
	"testing"
)

type fieldForwarder interface {
	ForwardFields(block string, length int64, hasDate bool)
}

// TestForwardFields: a block of fields given with ForwardFields follows
// the header's own fields, frames the body by its length, keeps its Date
// (one Date, not two) or gets one, and the connection carries the next
// request; once the head is written it has no effect.
func TestForwardFields(t *testing.T) {
	const date = "Mon, 01 Jan 2024 00:00:00 GMT"
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		fw, ok := w.(fieldForwarder)
		if !ok {
			t.Error("the response writer has no ForwardFields")
			return
		}
		w.Header().Set("X-Own", "1")
		switch r.URL.Path {
		case "/dated":
			fw.ForwardFields("Content-Type: text/plain\r\nContent-Length: 5\r\nDate: "+date+"\r\nX-Up: a\r\nX-Up: b\r\n", 5, true)
			io.WriteString(w, "hello")
		case "/undated":
			fw.ForwardFields("Content-Length: 2\r\n", 2, false)
			io.WriteString(w, "ok")
		case "/late":
			w.Header().Set("Content-Length", "4")
			io.WriteString(w, "la")
			fw.ForwardFields("X-Late: 1\r\nContent-Length: 9\r\n", 9, false)
			io.WriteString(w, "te")
		}
	})
	c := dial(t, ts)
	for round := 0; round < 2; round++ {
		resp, body := c.roundTrip("GET /dated HTTP/1.1\r\nHost: x\r\n\r\n")
		wantStatus(t, resp, 200)
		wantHeader(t, resp.Header, "Date", date)
		wantHeader(t, resp.Header, "Content-Length", "5")
		wantHeader(t, resp.Header, "X-Up", "a", "b")
		wantHeader(t, resp.Header, "X-Own", "1")
		wantBody(t, body, "hello")

		resp, body = c.roundTrip("GET /undated HTTP/1.1\r\nHost: x\r\n\r\n")
		wantHeader(t, resp.Header, "Content-Length", "2")
		if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil || len(resp.Header["Date"]) != 1 {
			t.Fatalf("Date %q: %v", resp.Header["Date"], err)
		}
		wantBody(t, body, "ok")

		resp, body = c.roundTrip("GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
		wantHeader(t, resp.Header, "Content-Length", "4")
		if v := resp.Header["X-Late"]; v != nil {
			t.Fatalf("fields given after the head was written were sent: %q", v)
		}
		wantBody(t, body, "late")
	}
	c.send("HEAD /dated HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := c.read(http.MethodHead)
	wantHeader(t, resp.Header, "Content-Length", "5")
	wantBody(t, body, "")
	// The HEAD left no body behind: the next answer is read whole.
	resp, body = c.roundTrip("GET /undated HTTP/1.1\r\nHost: x\r\n\r\n")
	wantHeader(t, resp.Header, "Content-Length", "2")
	wantBody(t, body, "ok")
}
