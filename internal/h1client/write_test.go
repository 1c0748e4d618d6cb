package h1client

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptrace"
	"reflect"
	"strings"
	"testing"
)

// TestWriteRequestMatchesRequestWrite: the fast head writer puts the same
// request on the wire as Request.Write, read back by a server's parser.
func TestWriteRequestMatchesRequestWrite(t *testing.T) {
	cases := []struct {
		name  string
		build func() *http.Request
	}{
		{"plain GET", func() *http.Request { return request(t, "GET", "http://up.example/a/b?x=1&y=%20z") }},
		{"HEAD with headers", func() *http.Request {
			r := request(t, "HEAD", "http://up.example/")
			r.Header.Add("Accept", "a/b")
			r.Header.Add("Accept", "c/d")
			r.Header.Set("X-Forwarded-For", "10.0.0.1, 10.0.0.2")
			return r
		}},
		{"Host kept from the client", func() *http.Request {
			r := request(t, "GET", "http://10.1.2.3:8080/p")
			r.Host = "api.example.com"
			return r
		}},
		{"empty User-Agent sends none", func() *http.Request {
			r := request(t, "GET", "http://up.example/")
			r.Header.Set("User-Agent", "")
			return r
		}},
		{"client User-Agent", func() *http.Request {
			r := request(t, "GET", "http://up.example/")
			r.Header.Set("User-Agent", "curl/8")
			return r
		}},
		{"no User-Agent gets Go's", func() *http.Request { return request(t, "GET", "http://up.example/") }},
		{"bodyless POST gets Content-Length 0", func() *http.Request { return request(t, "POST", "http://up.example/x") }},
		{"bodyless DELETE", func() *http.Request { return request(t, "DELETE", "http://up.example/x") }},
		{"Close", func() *http.Request {
			r := request(t, "GET", "http://up.example/")
			r.Close = true
			return r
		}},
		{"line breaks in values become spaces", func() *http.Request {
			r := request(t, "GET", "http://up.example/")
			r.Header["X-Evil"] = []string{"a\r\nX-Injected: 1", " padded\t"}
			return r
		}},
		{"invalid names and framing fields dropped", func() *http.Request {
			r := request(t, "GET", "http://up.example/")
			r.Header["Bad Name"] = []string{"x"}
			r.Header["Transfer-Encoding"] = []string{"chunked"}
			r.Header["Content-Length"] = []string{"5"}
			r.Header["Trailer"] = []string{"X"}
			return r
		}},
		{"IPv6 zone removed", func() *http.Request {
			r := request(t, "GET", "http://[fe80::1%25en0]:8080/")
			return r
		}},
		{"opaque and encoded paths", func() *http.Request { return request(t, "GET", "http://up.example/a%2Fb/c;d?q=%3F") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fast, std bytes.Buffer
			bw := bufio.NewWriter(&fast)
			if err := writeRequest(bw, tc.build()); err != nil {
				t.Fatal(err)
			}
			bw.Flush()
			if err := tc.build().Write(&std); err != nil {
				t.Fatal(err)
			}
			got, want := parse(t, fast.Bytes()), parse(t, std.Bytes())
			if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host ||
				got.ContentLength != want.ContentLength || got.Close != want.Close {
				t.Errorf("got %s %s host %q len %d close %v\nwant %s %s host %q len %d close %v",
					got.Method, got.RequestURI, got.Host, got.ContentLength, got.Close,
					want.Method, want.RequestURI, want.Host, want.ContentLength, want.Close)
			}
			if !reflect.DeepEqual(got.Header, want.Header) {
				t.Errorf("header\n got %v\nwant %v", got.Header, want.Header)
			}
		})
	}
}

// TestWriteRequestRefuses what Request.Write refuses too.
func TestWriteRequestRefuses(t *testing.T) {
	bad := request(t, "GET", "http://up.example/")
	bad.Host = "evil.example\r\nX: y"
	if err := writeRequest(bufio.NewWriter(&bytes.Buffer{}), bad); err == nil {
		t.Error("a Host with a line break was written")
	}
	ctl := request(t, "GET", "http://up.example/")
	ctl.URL.RawQuery = "a=\x01"
	if err := writeRequest(bufio.NewWriter(&bytes.Buffer{}), ctl); err == nil {
		t.Error("a request target with a control character was written")
	}
}

// TestWriteRequestFallsBack: a request with a declared length, or whose
// trace wants to hear of written fields, is written by Request.Write.
func TestWriteRequestFallsBack(t *testing.T) {
	var fields []string
	trace := &httptrace.ClientTrace{WroteHeaderField: func(k string, _ []string) { fields = append(fields, k) }}
	r := request(t, "GET", "http://up.example/")
	r = r.WithContext(httptrace.WithClientTrace(context.Background(), trace))
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	if err := writeRequest(bw, r); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	if len(fields) == 0 || !strings.HasPrefix(out.String(), "GET / HTTP/1.1\r\n") {
		t.Errorf("trace saw %v; wrote %q", fields, out.String())
	}
}

func request(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func parse(t *testing.T, b []byte) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("%v in %q", err, b)
	}
	return r
}
