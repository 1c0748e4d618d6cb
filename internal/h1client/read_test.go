package h1client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// responseSeeds are response heads (and bodies) of every kind parseSimple
// meets: ones it must read and ones it must leave to http.ReadResponse.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
	"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nx",
	"HTTP/1.1 503 \r\nContent-Length: 007\r\nX-A: 1\r\nX-A: 2\r\nset-cookie: a=b\r\n\r\n1234567",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
	"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\nX-Injected: 1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 20x OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n folded: x\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
}

// TestParseSimpleResponses: the common responses take the fast path, the
// others are left to http.ReadResponse.
func TestParseSimpleResponses(t *testing.T) {
	get := &http.Request{Method: "GET"}
	for i, s := range responseSeeds {
		n := strings.Index(s, "\r\n\r\n") + 4
		read := parseSimple([]byte(s[:n]), get) != nil
		if want := i < 6 || i == len(responseSeeds)-1; read != want {
			t.Errorf("read %v, want %v: %q", read, want, s)
		}
	}
	if parseSimple([]byte(responseSeeds[0][:strings.Index(responseSeeds[0], "{")]), &http.Request{Method: "HEAD"}) != nil {
		t.Error("a response to HEAD was read: its Content-Length describes no body here")
	}
}

// TestReadResponseMatches: readResponse gives what http.ReadResponse
// gives, body included, for every seed.
func TestReadResponseMatches(t *testing.T) {
	for _, s := range responseSeeds {
		compareResponses(t, []byte(s))
	}
}

// TestFixedBodyCut: a body the server cuts short ends in
// io.ErrUnexpectedEOF, never in a clean io.EOF.
func TestFixedBodyCut(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
	resp, err := readResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if string(b) != "abc" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read %q, %v; want \"abc\", io.ErrUnexpectedEOF", b, err)
	}
}

// FuzzReadResponse: on any input readResponse and http.ReadResponse agree
// on the response, its body and the error.
func FuzzReadResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareResponses(t, data)
	})
}

func compareResponses(t *testing.T, data []byte) {
	t.Helper()
	for _, method := range []string{"GET", "HEAD"} {
		req := &http.Request{Method: method}
		got, gotBody, gotErr := readAll(readResponse(bufio.NewReader(bytes.NewReader(data)), req))
		want, wantBody, wantErr := readAll(http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req))
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%s %q: error %v, http.ReadResponse %v", method, data, gotErr, wantErr)
		}
		if gotErr != nil {
			continue
		}
		if !reflect.DeepEqual(view(got), view(want)) || gotBody != wantBody {
			t.Fatalf("%s %q:\n got %+v %q\nwant %+v %q", method, data, view(got), gotBody, view(want), wantBody)
		}
	}
}

type responseView struct {
	Status, Proto    string
	Code             int
	Major, Minor     int
	Header, Trailer  http.Header
	ContentLength    int64
	TransferEncoding []string
	Close, NoBody    bool
}

func view(r *http.Response) responseView {
	return responseView{r.Status, r.Proto, r.StatusCode, r.ProtoMajor, r.ProtoMinor, r.Header, r.Trailer,
		r.ContentLength, r.TransferEncoding, r.Close, r.Body == http.NoBody}
}

// readAll reads the body; a body error counts as the response's error
// when it is not the same kind on both sides (a cut body must be cut).
func readAll(resp *http.Response, err error) (*http.Response, string, error) {
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, string(b), err
	}
	return resp, string(b), nil
}
