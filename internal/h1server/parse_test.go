package h1server

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// simpleSeeds are request heads of every kind parseSimple meets: ones it
// must read and ones it must leave to http.ReadRequest.
var simpleSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a/b?c=d&e=%20f HTTP/1.1\r\nHost: api.example:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n",
	"HEAD /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"DELETE /item/1 HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nx-custom-thing: a\r\nX-CUSTOM-THING: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Spaces:   padded \t \r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET http://other.example/p HTTP/1.1\r\nHost: x\r\n\r\n",
	"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
	"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
	"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\n:x\r\n\r\n",
}

// edgeSeeds are targets at the edge of requestURL's plain case and Host
// fields at the edge of parseSimple's first-line shortcut: read or left,
// whatever is read must equal http.ReadRequest's reading.
var edgeSeeds = []string{
	"GET /a? HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a?? HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a?b?c HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET //x/y HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a!b/(c)*'d HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /p?q#frag HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /p#frag HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /\xc3\xbc?\xc3\xbc=1 HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a;b=c,d$e&f+g:h@i~j HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /p?a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: \t x \r\nA: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	"GET / HTTP/1.1\r\nHostname: a\r\n\r\n",
}

// TestParseSimpleAccepts: the common heads take the fast path.
func TestParseSimpleAccepts(t *testing.T) {
	for _, head := range simpleSeeds[:7] {
		var r http.Request
		if !parseSimple([]byte(head), &r) {
			t.Errorf("not read: %q", head)
		}
	}
}

// TestParseSimpleLeaves: bodies, transfer codings, other target forms,
// special fields and anything malformed are left to http.ReadRequest.
func TestParseSimpleLeaves(t *testing.T) {
	for _, head := range simpleSeeds[7:] {
		var r http.Request
		if parseSimple([]byte(head), &r) {
			t.Errorf("read, should be left to http.ReadRequest: %q", head)
		}
	}
}

// FuzzParseSimple: whatever parseSimple reads, http.ReadRequest reads the
// same way: same request, same fields, same length.
func FuzzParseSimple(f *testing.F) {
	for _, s := range append(simpleSeeds, edgeSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		i := bytes.Index(data, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		head := data[:i+4]
		var got http.Request
		if !parseSimple(head, &got) {
			return
		}
		br := bufio.NewReader(bytes.NewReader(head))
		want, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("parseSimple read %q, http.ReadRequest refused it: %v", head, err)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("http.ReadRequest left part of %q", head)
		}
		compareRequests(t, head, &got, want)
	})
}

// TestParseSimpleMatchesReadRequest runs the seeds through the same
// comparison as the fuzzer, so plain `go test` checks it too.
func TestParseSimpleMatchesReadRequest(t *testing.T) {
	for _, head := range append(simpleSeeds, edgeSeeds...) {
		var got http.Request
		if !parseSimple([]byte(head), &got) {
			continue
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatalf("%q: http.ReadRequest: %v", head, err)
		}
		compareRequests(t, []byte(head), &got, want)
	}
}

func compareRequests(t *testing.T, head []byte, got, want *http.Request) {
	t.Helper()
	type view struct {
		Method, Proto, Host, RequestURI string
		Major, Minor                    int
		URL                             string
		URLValue                        url.URL
		Path, RawPath, RawQuery         string
		Header                          http.Header
		ContentLength                   int64
		TransferEncoding                []string
		Close                           bool
		NoBody                          bool
		Trailer                         http.Header
	}
	v := func(r *http.Request) view {
		return view{r.Method, r.Proto, r.Host, r.RequestURI, r.ProtoMajor, r.ProtoMinor, r.URL.String(), *r.URL,
			r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Header, r.ContentLength, r.TransferEncoding,
			r.Close, r.Body == http.NoBody, r.Trailer}
	}
	if g, w := v(got), v(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%q\n parseSimple: %+v\nReadRequest: %+v", head, g, w)
	}
}

// BenchmarkParse compares the two readers on a typical head.
func BenchmarkParse(b *testing.B) {
	head := []byte("GET /v1/shortlinks/abc?fields=geo HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nX-Request-Id: 0123456789abcdef\r\n\r\n")
	b.Run("parseSimple", func(b *testing.B) {
		b.ReportAllocs()
		var r http.Request
		for i := 0; i < b.N; i++ {
			if !parseSimple(head, &r) {
				b.Fatal("not read")
			}
		}
	})
	b.Run("ReadRequest", func(b *testing.B) {
		b.ReportAllocs()
		rd := bytes.NewReader(head)
		br := bufio.NewReader(rd)
		for i := 0; i < b.N; i++ {
			rd.Reset(head)
			br.Reset(rd)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
