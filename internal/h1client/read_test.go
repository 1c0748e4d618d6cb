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

	"github.com/umbragw/umbra/internal/headers"
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
		read := parseSimple([]byte(s[:n]), get, nil) != nil
		if want := i < 6 || i == len(responseSeeds)-1; read != want {
			t.Errorf("read %v, want %v: %q", read, want, s)
		}
	}
	if parseSimple([]byte(responseSeeds[0][:strings.Index(responseSeeds[0], "{")]), &http.Request{Method: "HEAD"}, nil) != nil {
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
	resp, err := readResponse(br, &http.Request{Method: "GET"}, nil)
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
		want, wantBody, wantErr := readAll(http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req))
		// Read into a header map, and with a field block asked for: the
		// block, read back into a map, must say what the map says.
		var fields Fields
		for _, f := range []*Fields{nil, &fields} {
			got, gotBody, gotErr := readAll(readResponse(bufio.NewReader(bytes.NewReader(data)), req, f))
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%s %q (block %v): error %v, http.ReadResponse %v", method, data, f != nil, gotErr, wantErr)
			}
			if gotErr != nil {
				continue
			}
			if f != nil && f.Block != "" {
				if got.Header != nil {
					t.Fatalf("%s %q: a header map beside the block", method, data)
				}
				h, ok := headers.ParseFields(f.Block, 100, func(string, string) bool { return true })
				_, hasDate := h["Date"]
				if !ok || hasDate != f.HasDate {
					t.Fatalf("%s %q: block %q unreadable (%v) or HasDate %v wrong", method, data, f.Block, ok, f.HasDate)
				}
				got.Header = h
			}
			if !reflect.DeepEqual(view(got), view(want)) || gotBody != wantBody {
				t.Fatalf("%s %q (block %v):\n got %+v %q\nwant %+v %q", method, data, f != nil, view(got), gotBody, view(want), wantBody)
			}
		}
	}
}

// TestFieldBlock: a simple response with canonical names and nothing but
// its framing and ordinary fields comes as a block, unchanged; anything
// else (a Connection field, a name in other case, a field Accept refuses)
// comes in a header map as before.
func TestFieldBlock(t *testing.T) {
	refuseB := func(k, _ string) bool { return k != "X-B" }
	for _, c := range []struct {
		head   string
		accept func(k, v string) bool
		block  string
		date   bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDate: x\r\n\r\n", nil,
			"Content-Type: application/json\r\nContent-Length: 2\r\nDate: x\r\n", true},
		{"HTTP/1.1 200 OK\r\nX-A:  1 \r\nX-A: 2\r\nContent-Length: 2\r\n\r\n", refuseB, "X-A:  1 \r\nX-A: 2\r\nContent-Length: 2\r\n", false},
		{"HTTP/1.1 200 OK\r\nX-B: 1\r\nContent-Length: 2\r\n\r\n", refuseB, "", false},
		{"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", nil, "", false},
		{"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", nil, "", false},
		{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", nil, "Content-Length: 2\r\n", false},
	} {
		f := Fields{Block: "stale", HasDate: true, Accept: c.accept}
		resp, err := readResponse(bufio.NewReader(strings.NewReader(c.head+"{}")), &http.Request{Method: "GET"}, &f)
		if err != nil {
			t.Fatalf("%q: %v", c.head, err)
		}
		if f.Block != c.block || f.HasDate != c.date {
			t.Errorf("%q: block %q (date %v), want %q (%v)", c.head, f.Block, f.HasDate, c.block, c.date)
		}
		if (f.Block == "") != (resp.Header != nil) {
			t.Errorf("%q: header map %v with block %q: want exactly one of them", c.head, resp.Header, f.Block)
		}
		if resp.ContentLength != 2 || resp.Close != (resp.ProtoMinor == 0) {
			t.Errorf("%q: length %d close %v", c.head, resp.ContentLength, resp.Close)
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
