package h1server_test

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"testing"
)

// TestFlush proves that what a handler flushes reaches the client while
// the handler still runs, through http.Flusher and through
// http.ResponseController: the handler waits for the client to have read
// the first part before it writes the second.
func TestFlush(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flush func(http.ResponseWriter) error
	}{
		{"Flusher", func(w http.ResponseWriter) error { w.(http.Flusher).Flush(); return nil }},
		{"ResponseController", func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotFirst := make(chan struct{})
			flushErr := make(chan error, 1)
			ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "first")
				flushErr <- tc.flush(w)
				if !handlerWait(gotFirst) {
					return
				}
				io.WriteString(w, "second")
			})
			resp, err := client(t).Get(ts.url())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			wantStatus(t, resp, 200)
			buf := make([]byte, 5)
			if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
				t.Fatalf("first part %q, %v", buf, err)
			}
			close(gotFirst)
			if err := recv(t, flushErr, "flush"); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != "second" {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

// TestFlushBeforeWrite proves that flushing before any write sends the
// header (200 and chunked framing) at once.
func TestFlushBeforeWrite(t *testing.T) {
	gotHeader := make(chan struct{})
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Early", "1")
		w.(http.Flusher).Flush()
		if handlerWait(gotHeader) {
			io.WriteString(w, "late")
		}
	})
	resp, err := client(t).Get(ts.url()) // returns once the header is in
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	close(gotHeader)
	wantStatus(t, resp, 200)
	wantHeader(t, resp.Header, "X-Early", "1")
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "late" {
		t.Fatalf("body %q, %v", b, err)
	}
}

// TestTrailers proves that trailers reach net/http's client, whether
// declared in a "Trailer" field and set after the body, or set with
// http.TrailerPrefix; also when the handler writes no body at all, as a
// proxy does for an upstream response with an empty body and trailers.
func TestTrailers(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body := r.URL.Query().Get("body")
		switch r.URL.Path {
		case "/declared":
			w.Header().Set("Trailer", "X-T, X-Other")
			if body != "" { // no Write at all otherwise, as io.Copy of nothing
				io.WriteString(w, body)
			}
			w.Header().Set("X-T", "tv")
			w.Header().Set("X-Undeclared", "not sent")
		case "/prefix":
			if body != "" {
				io.WriteString(w, body)
			}
			w.Header().Set(http.TrailerPrefix+"X-U", "uv")
		}
	})
	c := client(t)
	for _, tc := range []struct {
		path, body string
		trailer    map[string]string
	}{
		{"/declared", "data", map[string]string{"X-T": "tv", "X-Other": ""}},
		{"/declared", "", map[string]string{"X-T": "tv", "X-Other": ""}},
		{"/prefix", "data", map[string]string{"X-U": "uv"}},
		{"/prefix", "", map[string]string{"X-U": "uv"}},
	} {
		t.Run(tc.path+"/"+tc.body, func(t *testing.T) {
			resp, body := get(t, c, ts.url()+tc.path+"?body="+tc.body)
			wantStatus(t, resp, 200)
			wantBody(t, body, tc.body)
			if len(resp.Trailer) != len(tc.trailer) {
				t.Fatalf("trailer %q, want %q", resp.Trailer, tc.trailer)
			}
			for k, v := range tc.trailer {
				if got := resp.Trailer.Get(k); got != v {
					t.Fatalf("trailer %s = %q, want %q (all: %q)", k, got, v, resp.Trailer)
				}
			}
			// Set after the header went out, a declared trailer is only a
			// trailer. (With no body written, the header goes out after
			// the handler returned and has it too, as from net/http.)
			if tc.body != "" && resp.Header.Get("X-T") != "" || resp.Header.Get("X-U") != "" {
				t.Fatalf("trailer value in the header: %q", resp.Header)
			}
		})
	}
}

// TestEarlyHints proves that a 103 with its Link field reaches the client
// when written, before the handler goes on to the final response (the
// handler waits until the client saw the 103), and that the fields of the
// final response are the handler's.
func TestEarlyHints(t *testing.T) {
	got103 := make(chan struct{})
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		if !handlerWait(got103) {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Final", "1")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok")
	})
	var codes []int
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		codes = append(codes, code)
		link = h.Get("Link")
		close(got103)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", ts.url(), nil)
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	wantStatus(t, resp, 200)
	wantBody(t, string(b), "ok")
	wantHeader(t, resp.Header, "X-Final", "1")
	wantHeader(t, resp.Header, "Link", "</a.css>; rel=preload")
	if len(codes) != 1 || codes[0] != 103 || link != "</a.css>; rel=preload" {
		t.Fatalf("1xx responses %v, Link %q", codes, link)
	}
}

// TestEarlyHintsNotToHTTP10 proves that an HTTP/1.0 client, which does not
// know 1xx responses, gets only the final one.
func TestEarlyHintsNotToHTTP10(t *testing.T) {
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})
	c := dial(t, ts)
	resp, body := c.roundTrip("GET / HTTP/1.0\r\n\r\n")
	wantStatus(t, resp, 200)
	if resp.Proto != "HTTP/1.0" {
		t.Fatalf("proto %q", resp.Proto)
	}
	wantBody(t, body, "ok")
	c.expectClosed()
}
