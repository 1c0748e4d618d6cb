package compare

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/andybalholm/brotli"
)

// jsonResp is a 200 JSON answer.
func jsonResp(body string) *Response {
	return &Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

// brief renders differences compactly for comparisons in tests:
// "kind field path live|other".
func brief(ds []Difference) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Kind+" "+d.Field+" "+d.Path+" "+d.Live+"|"+d.Other)
	}
	return out
}

func mustNew(t testing.TB, o Options) *Comparator {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkDiff(t *testing.T, c *Comparator, live, other *Response, want []string) {
	t.Helper()
	got := brief(c.Diff(live, other))
	if !slices.Equal(got, want) {
		t.Errorf("Diff:\n got  %q\n want %q", got, want)
	}
	// Every result is symmetric in its fields and well-formed.
	checkInvariants(t, c, live, other)
}

func checkInvariants(t testing.TB, c *Comparator, a, b *Response) {
	t.Helper()
	ab, ba := c.Diff(a, b), c.Diff(b, a)
	if fa, fb := fieldSet(ab), fieldSet(ba); !slices.Equal(fa, fb) {
		t.Fatalf("fields not symmetric:\n a→b %q\n b→a %q", brief(ab), brief(ba))
	}
	for _, x := range []*Response{a, b} {
		if x.Truncated {
			continue // never compared, not even with itself
		}
		if ds := c.Diff(x, x); len(ds) != 0 {
			t.Fatalf("Diff(x, x) = %q", brief(ds))
		}
	}
	for _, d := range append(ab, ba...) {
		if d.Field == "" || d.Path == "" || !validKind[d.Kind] {
			t.Fatalf("malformed difference %+v", d)
		}
		for _, s := range []string{d.Live, d.Other} {
			if utf8.RuneCountInString(s) > MaxRender || !utf8.ValidString(s) {
				t.Fatalf("rendering too long or invalid (%d): %q", utf8.RuneCountInString(s), s)
			}
		}
		if strings.HasPrefix(d.Field, "$") {
			for _, p := range []string{d.Field, d.Path} {
				if _, err := ParsePath(p); err != nil {
					t.Fatalf("field or path does not parse: %v", err)
				}
			}
		}
	}
}

var validKind = map[string]bool{KindStatus: true, KindHeader: true, KindValue: true, KindType: true,
	KindMissing: true, KindExtra: true, KindArrayLength: true, KindOrder: true, KindBodyText: true,
	KindBodyBinary: true, KindBodyEncoding: true, KindTruncated: true}

func fieldSet(ds []Difference) []string {
	var fs []string
	for _, d := range ds {
		fs = append(fs, d.Field)
	}
	slices.Sort(fs)
	return slices.Compact(fs)
}

func TestJSONKinds(t *testing.T) {
	c := mustNew(t, Options{})
	for _, tc := range []struct {
		name, live, other string
		want              []string
	}{
		{"equal", `{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, nil},
		{"whitespace and key order", `{"a": {"x": 1, "y": 2}}`, "{\"a\":{\"y\":2,\n\"x\":1}}", nil},
		{"value", `{"a":1}`, `{"a":2}`, []string{"value $.a $.a 1|2"}},
		{"string value", `{"s":"x"}`, `{"s":"y"}`, []string{`value $.s $.s "x"|"y"`}},
		{"bool value", `{"ok":true}`, `{"ok":false}`, []string{"value $.ok $.ok true|false"}},
		{"type", `{"a":"1"}`, `{"a":1}`, []string{`type $.a $.a "1"|1`}},
		{"null type", `{"a":null}`, `{"a":{}}`, []string{`type $.a $.a null|{}`}},
		{"missing", `{"a":1,"b":2}`, `{"a":1}`, []string{"missing $.b $.b 2|"}},
		{"extra", `{"a":1}`, `{"a":1,"c":{"d":1}}`, []string{`extra $.c $.c |{"d":1}`}},
		{"missing and extra", `{"a":1,"b":2}`, `{"a":1,"c":2}`, []string{"missing $.b $.b 2|", "extra $.c $.c |2"}},
		{"nested", `{"user":{"emails":["a","b","c"],"name":"x"}}`, `{"user":{"emails":["a","b","d"],"name":"x"}}`,
			[]string{`value $.user.emails[*] $.user.emails[2] "c"|"d"`}},
		{"array length", `{"l":[1,2,3]}`, `{"l":[1,5]}`,
			[]string{"value $.l[*] $.l[1] 2|5", "array_length $.l $.l length 3|length 2"}},
		{"array length only", `[1,2]`, `[1,2,3]`, []string{"array_length $ $ length 2|length 3"}},
		{"order", `{"l":[1,2,3]}`, `{"l":[3,1,2]}`, []string{"order $.l $.l [1,2,3]|[3,1,2]"}},
		{"order of objects", `[{"id":1},{"id":2}]`, `[{"id":2},{"id":1}]`, []string{`order $ $ [{"id":1},{"id":2}]|[{"id":2},{"id":1}]`}},
		{"not a permutation", `[1,2,2]`, `[2,1,1]`, []string{"value $[*] $[0] 1|2", "value $[*] $[1] 2|1", "value $[*] $[2] 2|1"}},
		{"objects in arrays", `{"items":[{"id":1,"p":1.5},{"id":2,"p":3}]}`, `{"items":[{"id":1,"p":1.5},{"id":2,"p":4}]}`,
			[]string{"value $.items[*].p $.items[1].p 3|4"}},
		{"root value", `1`, `2`, []string{"value $ $ 1|2"}},
		{"root type", `[]`, `{}`, []string{"type $ $ []|{}"}},
		{"number spelling", `{"a":1.0,"b":1e2,"c":-0}`, `{"a":1,"b":100,"c":0}`, nil},
		{"quoted key", `{"a.b":1,"it's":1}`, `{"a.b":2,"it's":2}`,
			[]string{`value $['a.b'] $['a.b'] 1|2`, `value $['it\'s'] $['it\'s'] 1|2`}},
		{"escapes equal", `{"s":"\u00e9\/"}`, `{"s":"é/"}`, nil},
		{"duplicate key last wins", `{"a":1,"a":2}`, `{"a":2}`, nil},
		{"unicode string", `{"s":"héllo"}`, `{"s":"hello"}`, []string{`value $.s $.s "héllo"|"hello"`}},
		{"byte order mark", "\ufeff{\"a\":1}", `{"a":2}`, []string{"value $.a $.a 1|2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkDiff(t, c, jsonResp(tc.live), jsonResp(tc.other), tc.want)
		})
	}
}

func TestStatusAndEmptyBodies(t *testing.T) {
	c := mustNew(t, Options{})
	empty := func(status int) *Response { return &Response{Status: status, Header: http.Header{}} }
	checkDiff(t, c, empty(204), empty(204), nil)
	checkDiff(t, c, empty(304), empty(304), nil)
	checkDiff(t, c, empty(204), empty(200), []string{"status status status 204|200"})
	checkDiff(t, c, jsonResp(`{}`), empty(200), []string{"missing header:Content-Type header:Content-Type application/json|", "missing body body {}|"})
	checkDiff(t, c, empty(200), jsonResp(`[]`), []string{"extra header:Content-Type header:Content-Type |application/json", "extra body body |[]"})
	checkDiff(t, c, &Response{Status: 500, Body: []byte("oops")}, &Response{Status: 200, Body: []byte("fine")},
		[]string{"status status status 500|200", "body_text body body line 1, col 1: oops|line 1, col 1: fine"})
	// A gzip of nothing is an empty body.
	gz := &Response{Status: 200, Header: http.Header{"Content-Encoding": {"gzip"}}, Body: gzipBytes(nil)}
	checkDiff(t, c, gz, empty(200), nil)
	// nil responses are empty.
	if ds := c.Diff(nil, nil); len(ds) != 0 {
		t.Errorf("Diff(nil, nil) = %q", brief(ds))
	}
}

func TestTruncated(t *testing.T) {
	c := mustNew(t, Options{})
	a := jsonResp(`{"a":1}`)
	b := jsonResp(`{"a":`)
	b.Truncated, b.Status = true, 500
	checkDiff(t, c, a, b, []string{"truncated body body complete, 7 bytes|truncated at 5 bytes"})
}

func TestTruncatedIdentical(t *testing.T) {
	// Two truncated captures cannot be compared even when equal: the
	// truncated difference is reported so that they count as not compared.
	c := mustNew(t, Options{})
	a := jsonResp(`{"a":`)
	a.Truncated = true
	if got := brief(c.Diff(a, a)); len(got) != 1 || !strings.HasPrefix(got[0], "truncated ") {
		t.Errorf("Diff(truncated, truncated) = %q", got)
	}
}

func TestHeaders(t *testing.T) {
	c := mustNew(t, Options{IgnoreHeaders: []string{"x-BUILD"}})
	h := func(kv ...string) *Response {
		r := &Response{Status: 200, Header: http.Header{}}
		for i := 0; i < len(kv); i += 2 {
			r.Header[kv[i]] = append(r.Header[kv[i]], kv[i+1]) // raw keys: any case
		}
		return r
	}
	for _, tc := range []struct {
		name        string
		live, other *Response
		want        []string
	}{
		{"case-insensitive names", h("cache-control", "no-store"), h("Cache-Control", "no-store"), nil},
		{"value", h("Cache-Control", "no-store"), h("cache-control", "max-age=60"),
			[]string{"header header:Cache-Control header:Cache-Control no-store|max-age=60"}},
		{"default ignored, any case", h("Date", "Mon", "server", "a", "X-REQUEST-ID", "1", "Content-Length", "10"),
			h("date", "Tue", "Server", "b", "x-request-id", "2"), nil},
		{"option ignored, any case", h("X-Build", "1"), h("x-build", "2"), nil},
		{"missing", h("Vary", "Accept"), h(), []string{"missing header:Vary header:Vary Accept|"}},
		{"extra", h(), h("X-New", "1"), []string{"extra header:X-New header:X-New |1"}},
		{"multi-values joined", h("Link", "a", "Link", "b"), h("Link", "a, b"), nil},
		{"multi-values order", h("Link", "a", "Link", "b"), h("Link", "b", "Link", "a"),
			[]string{"header header:Link header:Link a, b|b, a"}},
		{"etag by presence", h("ETag", `"abc"`), h("Etag", `"def"`), nil},
		{"etag dropped", h("ETag", `"abc"`), h(), []string{"missing header:Etag header:Etag (present)|"}},
		{"cookie values ignored", h("Set-Cookie", "sid=1; Path=/; HttpOnly; Expires=Wed, 21 Oct 2015 07:28:00 GMT", "Set-Cookie", "a=1"),
			h("set-cookie", "a=2", "Set-Cookie", "sid=2; Path=/; HttpOnly; Expires=Thu, 22 Oct 2015 07:28:00 GMT"), nil},
		{"cookie attribute", h("Set-Cookie", "sid=1; Path=/; Secure"), h("Set-Cookie", "sid=1; Path=/"),
			[]string{"header header:Set-Cookie header:Set-Cookie sid; Path=/; Secure|sid; Path=/"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkDiff(t, c, tc.live, tc.other, tc.want) })
	}

	off := mustNew(t, Options{SkipHeaders: true})
	star := mustNew(t, Options{IgnoreHeaders: []string{"*"}})
	for _, c := range []*Comparator{off, star} {
		if ds := c.Diff(h("A", "1"), h("B", "2")); len(ds) != 0 {
			t.Errorf("headers off: %q", brief(ds))
		}
	}
}

func TestIgnorePaths(t *testing.T) {
	live := `{"id":7,"created_at":"2024-01-01","meta":{"trace_id":"a","page":1},
		"items":[{"id":"x1","name":"a","trace_id":"t1"},{"id":"x2","name":"b"}],
		"deep":{"deeper":{"trace_id":"q","v":1}}}`
	other := `{"id":7,"created_at":"2024-06-01","meta":{"trace_id":"b","page":2},
		"items":[{"id":"y1","name":"a","trace_id":"t2"},{"id":"y2","name":"c"}],
		"deep":{"deeper":{"trace_id":"r","v":1}}}`
	for _, tc := range []struct {
		ignore []string
		want   []string
	}{
		{nil, []string{
			`value $.created_at $.created_at "2024-01-01"|"2024-06-01"`,
			`value $.meta.trace_id $.meta.trace_id "a"|"b"`,
			`value $.meta.page $.meta.page 1|2`,
			`value $.items[*].id $.items[0].id "x1"|"y1"`,
			`value $.items[*].trace_id $.items[0].trace_id "t1"|"t2"`,
			`value $.items[*].id $.items[1].id "x2"|"y2"`,
			`value $.items[*].name $.items[1].name "b"|"c"`,
			`value $.deep.deeper.trace_id $.deep.deeper.trace_id "q"|"r"`,
		}},
		{[]string{"$.created_at", "$.meta", "$..trace_id", "$.items[*].id"}, []string{
			`value $.items[*].name $.items[1].name "b"|"c"`,
		}},
		{[]string{"$.created_at", "$.meta.*", "$..trace_id", "$.items[*]"}, nil},
		{[]string{"$.created_at", "$['meta']", "$..['trace_id']", "$.items[1]", "$.items[0].id"}, nil},
		{[]string{"$"}, nil},
		{[]string{"$..*"}, nil},
	} {
		t.Run(strings.Join(tc.ignore, ","), func(t *testing.T) {
			c := mustNew(t, Options{Ignore: tc.ignore})
			checkDiff(t, c, jsonResp(live), jsonResp(other), tc.want)
		})
	}
}

func TestIgnoreMissingAndExtra(t *testing.T) {
	c := mustNew(t, Options{Ignore: []string{"$.debug", "$..etag"}})
	checkDiff(t, c, jsonResp(`{"a":1,"debug":{"x":1},"b":{"etag":"1"}}`), jsonResp(`{"a":1,"b":{}}`), nil)
	// An ignored key does not hide its siblings.
	checkDiff(t, c, jsonResp(`{"debug":1,"b":1}`), jsonResp(`{"b":2}`), []string{"value $.b $.b 1|2"})
}

func TestUnorderedArrays(t *testing.T) {
	live := `{"tags":["a","b","c"],"items":[{"id":1,"q":[1,2]},{"id":2,"q":[3]}]}`
	shuffled := `{"tags":["c","a","b"],"items":[{"id":2,"q":[3]},{"id":1,"q":[1,2]}]}`
	t.Run("without the option", func(t *testing.T) {
		c := mustNew(t, Options{})
		checkDiff(t, c, jsonResp(live), jsonResp(shuffled), []string{
			`order $.tags $.tags ["a","b","c"]|["c","a","b"]`,
			`order $.items $.items [{"id":1,"q":[1,2]},{"id":2,"q":[3]}]|[{"id":2,"q":[3]},{"id":1,"q":[1,2]}]`,
		})
	})
	c := mustNew(t, Options{UnorderedArrays: []string{"$.tags", "$.items"}})
	t.Run("with the option", func(t *testing.T) {
		checkDiff(t, c, jsonResp(live), jsonResp(shuffled), nil)
	})
	t.Run("nested arrays stay ordered", func(t *testing.T) {
		checkDiff(t, c, jsonResp(`{"items":[{"id":1,"q":[1,2]}]}`), jsonResp(`{"items":[{"id":1,"q":[2,1]}]}`),
			[]string{`value $.items[*] $.items[0] {"id":1,"q":[1,2]}|{"id":1,"q":[2,1]}`})
		all := mustNew(t, Options{UnorderedArrays: []string{"$..q", "$.items"}})
		checkDiff(t, all, jsonResp(`{"items":[{"id":1,"q":[1,2]},{"id":3}]}`), jsonResp(`{"items":[{"id":3},{"id":1,"q":[2,1]}]}`), nil)
	})
	t.Run("different multisets", func(t *testing.T) {
		checkDiff(t, c, jsonResp(`{"tags":["a","b","c"]}`), jsonResp(`{"tags":["c","x","a"]}`),
			[]string{`value $.tags[*] $.tags[1] "b"|"x"`})
		checkDiff(t, c, jsonResp(`{"tags":["a","b","b"]}`), jsonResp(`{"tags":["b","a","a"]}`),
			[]string{`value $.tags[*] $.tags[2] "b"|"a"`})
		checkDiff(t, c, jsonResp(`{"tags":["a","b"]}`), jsonResp(`{"tags":["b","c","a"]}`),
			[]string{`array_length $.tags $.tags length 2|length 3`})
		checkDiff(t, c, jsonResp(`{"tags":["a","b"]}`), jsonResp(`{"tags":["x","c","a"]}`),
			[]string{`array_length $.tags $.tags length 2|length 3`, `value $.tags[*] $.tags[1] "b"|"x"`})
	})
	t.Run("ignored parts do not count in identity", func(t *testing.T) {
		c := mustNew(t, Options{UnorderedArrays: []string{"$.items"}, Ignore: []string{"$.items[*].seen"}})
		checkDiff(t, c, jsonResp(`{"items":[{"id":1,"seen":"t1"},{"id":2,"seen":"t2"}]}`),
			jsonResp(`{"items":[{"id":2,"seen":"t3"},{"id":1,"seen":"t4"}]}`), nil)
		// An index-specific ignore does not apply inside a multiset.
		c = mustNew(t, Options{UnorderedArrays: []string{"$.items"}, Ignore: []string{"$.items[0].seen"}})
		checkDiff(t, c, jsonResp(`{"items":[{"id":1,"seen":1},{"id":2}]}`), jsonResp(`{"items":[{"id":2},{"id":1,"seen":2}]}`),
			[]string{`value $.items[*] $.items[0] {"id":1,"seen":1}|{"id":1,"seen":2}`})
	})
	t.Run("root and tolerance", func(t *testing.T) {
		c := mustNew(t, Options{UnorderedArrays: []string{"$"}, NumericTolerance: 1e-6})
		checkDiff(t, c, jsonResp(`[1, 2.0000001, 3]`), jsonResp(`[3, 2, 1.0000001]`), nil)
		checkDiff(t, c, jsonResp(`[1, 2, 3]`), jsonResp(`[3, 2.1, 1]`), []string{`value $[*] $[1] 2|2.1`})
	})
}

func TestNumericTolerance(t *testing.T) {
	for _, tc := range []struct {
		tol         float64
		live, other string
		equal       bool
	}{
		{1e-6, "1.0", "1.0000001", true},
		{0, "1.0", "1.0000001", false},
		{1e-6, "1.0", "1.00001", false},
		{0.02, "100", "101", true},
		{0.02, "100", "103", false},
		{0.02, "-100", "-101", true},
		{0.02, "-100", "101", false},
		{0.02, "0", "0.0", true},
		{0.5, "0", "1e-300", false}, // |a-b| = 1e-300 > 0.5*1e-300: no
		{0, "1e2", "100", true},
		{0, "-0", "0", true},
		{0, "1.5e400", "1.5e400", true},
		{0, "1e400", "2e400", false},
		// Integers beyond 2^53 are ids: exact, whatever the tolerance.
		{0, "9007199254740993", "9007199254740992", false},
		{0.5, "9007199254740993", "9007199254740995", false},
		{0.5, "12345678901234567890", "12345678901234567890", true},
		{0, "-9007199254740993", "-9007199254740993", true},
		{0.01, "9007199254740992", "9007199254740991", true}, // within 2^53: by value
	} {
		c := mustNew(t, Options{NumericTolerance: tc.tol})
		live, other := jsonResp(`{"n":`+tc.live+`}`), jsonResp(`{"n":`+tc.other+`}`)
		ds := c.Diff(live, other)
		if (len(ds) == 0) != tc.equal {
			t.Errorf("tol %g: %s vs %s: got %q, want equal=%v", tc.tol, tc.live, tc.other, brief(ds), tc.equal)
		}
		checkInvariants(t, c, live, other)
	}
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zlibBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func flateBytes(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func brotliBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func encoded(enc string, body []byte) *Response {
	return &Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {enc}}, Body: body}
}

func TestContentEncoding(t *testing.T) {
	c := mustNew(t, Options{})
	plain := []byte(`{"user":{"id":1,"name":"Ann"},"tags":["a","b"]}`)
	changed := []byte(`{"user":{"id":1,"name":"Bob"},"tags":["a","b"]}`)
	encoders := map[string]func([]byte) []byte{
		"gzip": gzipBytes, "x-gzip": gzipBytes, "deflate": zlibBytes, "br": brotliBytes,
	}
	for enc, f := range encoders {
		t.Run(enc, func(t *testing.T) {
			checkDiff(t, c, jsonResp(string(plain)), encoded(enc, f(plain)), nil)
			checkDiff(t, c, encoded(enc, f(plain)), encoded(enc, f(changed)), []string{`value $.user.name $.user.name "Ann"|"Bob"`})
		})
	}
	t.Run("raw deflate", func(t *testing.T) {
		checkDiff(t, c, jsonResp(string(plain)), encoded("deflate", flateBytes(plain)), nil)
	})
	t.Run("stacked", func(t *testing.T) {
		checkDiff(t, c, jsonResp(string(plain)), encoded("gzip, br", brotliBytes(gzipBytes(plain))), nil)
	})
	t.Run("case and identity", func(t *testing.T) {
		checkDiff(t, c, jsonResp(string(plain)), encoded("GZIP", gzipBytes(plain)), nil)
		checkDiff(t, c, jsonResp(string(plain)), encoded("identity", plain), nil)
	})
	t.Run("invalid gzip", func(t *testing.T) {
		checkDiff(t, c, jsonResp(string(plain)), encoded("gzip", plain),
			[]string{"body_encoding body body identity: ok|gzip: invalid header"})
		trunc := gzipBytes(plain)
		trunc = trunc[:len(trunc)-10]
		checkDiff(t, c, encoded("gzip", gzipBytes(plain)), encoded("gzip", trunc),
			[]string{"body_encoding body body gzip: ok|gzip: unexpected EOF"})
	})
	t.Run("invalid br and deflate", func(t *testing.T) {
		for _, enc := range []string{"br", "deflate"} {
			ds := c.Diff(jsonResp(string(plain)), encoded(enc, []byte("\xff\xfe not compressed at all")))
			if len(ds) != 1 || ds[0].Kind != KindBodyEncoding {
				t.Errorf("%s: %q", enc, brief(ds))
			}
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		checkDiff(t, c, jsonResp(string(plain)), encoded("zstd", plain),
			[]string{`body_encoding body body identity: ok|unsupported content-encoding "zstd"`})
		// The same bytes the same way are equal without decoding.
		checkDiff(t, c, encoded("zstd", plain), encoded("zstd", plain), nil)
	})
	t.Run("bomb", func(t *testing.T) {
		small := mustNew(t, Options{MaxDecodedBody: 1000})
		big := gzipBytes(bytes.Repeat([]byte(" "), 5000))
		ds := small.Diff(jsonResp("{}"), encoded("gzip", big))
		if len(ds) != 1 || ds[0].Kind != KindTruncated {
			t.Errorf("bomb: %q", brief(ds))
		}
	})
}

func TestTextAndBinary(t *testing.T) {
	c := mustNew(t, Options{})
	text := func(s string) *Response {
		return &Response{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: []byte(s)}
	}
	bin := func(b []byte) *Response {
		return &Response{Status: 200, Header: http.Header{"Content-Type": {"image/png"}}, Body: b}
	}
	checkDiff(t, c, text("<p>\nhello world\n</p>"), text("<p>\nhello there\n</p>"),
		[]string{"body_text body body line 2, col 7: hello world|line 2, col 7: hello there"})
	checkDiff(t, c, text("same"), text("same\nmore"), []string{`body_text body body line 1, col 5: (end of body)|line 1, col 5: same\nmore`})
	long := strings.Repeat("x", 100) + "A" + strings.Repeat("y", 300)
	ds := c.Diff(text(long), text(strings.Replace(long, "A", "B", 1)))
	if len(ds) != 1 || !strings.HasPrefix(ds[0].Live, "line 1, col 101: …xxxx") || !strings.HasSuffix(ds[0].Live, "…") ||
		utf8.RuneCountInString(ds[0].Live) > MaxRender || !strings.Contains(ds[0].Other, "xB") {
		t.Errorf("long line: %q", brief(ds))
	}
	// JSON against an HTML error page is a text difference.
	checkDiff(t, c, jsonResp(`{"a":1}`), text("<html>error</html>"),
		[]string{"header header:Content-Type header:Content-Type application/json|text/html",
			`body_text body body line 1, col 1: {"a":1}|line 1, col 1: <html>error</html>`})
	// text/* that is not UTF-8 is still text.
	checkDiff(t, c, text("caf\xe9 1"), text("caf\xe9 2"), []string{"body_text body body line 1, col 6: caf\ufffd 1|line 1, col 6: caf\ufffd 2"})
	// Binary.
	a := []byte{0x89, 'P', 'N', 'G', 0xff, 0x00, 0x01}
	b := []byte{0x89, 'P', 'N', 'G', 0xff, 0x00, 0x02, 0x03}
	checkDiff(t, c, bin(a), bin(a), nil)
	ds = c.Diff(bin(a), bin(b))
	if len(ds) != 1 || ds[0].Kind != KindBodyBinary || !strings.HasPrefix(ds[0].Live, "7 bytes, sha256 ") || !strings.HasPrefix(ds[0].Other, "8 bytes, sha256 ") {
		t.Errorf("binary: %q", brief(ds))
	}
	checkInvariants(t, c, bin(a), bin(b))
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Ignore: []string{"$.ok", "created_at"}}, `invalid ignore path "created_at": at offset 0: a path starts with "$"`},
		{Options{UnorderedArrays: []string{"$.a["}}, `invalid unordered_arrays path "$.a["`},
		{Options{NumericTolerance: -1}, "numeric tolerance"},
		{Options{IgnoreHeaders: []string{"bad name"}}, `invalid header name "bad name"`},
		{Options{MaxDecodedBody: -1}, "max decoded body"},
	} {
		_, err := New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.o, err, tc.want)
		}
	}
	if _, err := New(Options{Ignore: []string{"$"}, UnorderedArrays: []string{"$..x"}, NumericTolerance: 0.5, IgnoreHeaders: []string{"*"}}); err != nil {
		t.Error(err)
	}
}

// TestManyPaths uses more paths than one word of automaton state holds.
func TestManyPaths(t *testing.T) {
	var ignore []string
	for i := range 40 {
		ignore = append(ignore, fmt.Sprintf("$.a%d.b.c", i))
	}
	ignore = append(ignore, "$..z")
	c := mustNew(t, Options{Ignore: ignore, UnorderedArrays: []string{"$.a39.l"}})
	if c.m.words < 2 {
		t.Fatalf("want a multi-word state, got %d", c.m.words)
	}
	checkDiff(t, c, jsonResp(`{"a39":{"b":{"c":1,"d":1},"l":[1,2]},"q":{"z":1}}`), jsonResp(`{"a39":{"b":{"c":2,"d":2},"l":[2,1]},"q":{"z":2}}`),
		[]string{"value $.a39.b.d $.a39.b.d 1|2"})
}

func TestRenderingsAreShort(t *testing.T) {
	c := mustNew(t, Options{})
	big := `{"s":"` + strings.Repeat("é", 500) + `","a":[` + strings.Repeat(`{"k":"v"},`, 200) + `1]}`
	ds := c.Diff(jsonResp(big), jsonResp(`{"s":1,"a":2}`))
	if len(ds) != 2 {
		t.Fatalf("got %q", brief(ds))
	}
	for _, d := range ds {
		if n := utf8.RuneCountInString(d.Live); n != MaxRender || !strings.HasSuffix(d.Live, "…") {
			t.Errorf("rendering of %d characters: %q", n, d.Live)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c := mustNew(t, Options{Ignore: []string{"$..id"}, UnorderedArrays: []string{"$.l"}})
	a, b := jsonResp(`{"id":1,"l":[1,2,3],"v":"x"}`), encoded("gzip", gzipBytes([]byte(`{"id":2,"l":[3,2,1],"v":"y"}`)))
	want := brief(c.Diff(a, b))
	done := make(chan bool)
	for range 4 {
		go func() {
			defer func() { done <- true }()
			for range 200 {
				if got := brief(c.Diff(a, b)); !slices.Equal(got, want) {
					t.Errorf("concurrent Diff = %q, want %q", got, want)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

// TestResultsDoNotAlias checks that differences own their strings: parsed
// trees alias the bodies and pooled buffers, which are overwritten here.
func TestResultsDoNotAlias(t *testing.T) {
	c := mustNew(t, Options{UnorderedArrays: []string{"$.set"}})
	liveBody := []byte(`{"name":"alpha","list":["x"],"set":["p","q"],"obj":{"key":"v"},"n":1.5}`)
	otherBody := []byte(`{"name":"beta","list":["y","z"],"set":["q","r"],"obj":{"yek":"v"},"n":2.5}`)
	live, other := jsonResp(""), encoded("gzip", gzipBytes(otherBody))
	live.Body = liveBody
	ds := c.Diff(live, other)
	want := brief(ds) // brief builds new strings
	if len(want) < 6 {
		t.Fatalf("want several differences, got %q", want)
	}
	for i := range liveBody {
		liveBody[i] = '#'
	}
	for range 20 { // reuse the pooled parsers and buffers
		c.Diff(encoded("gzip", gzipBytes([]byte(`{"name":"#####","list":["#","#"],"set":["#"],"obj":{"###":"#"},"n":9}`))), jsonResp(`{"n":"########"}`))
	}
	if got := brief(ds); !slices.Equal(got, want) {
		t.Errorf("differences changed after their bodies did:\n got  %q\n want %q", got, want)
	}
}

func TestInstancesPerFieldBounded(t *testing.T) {
	c := mustNew(t, Options{})
	var a, b strings.Builder
	a.WriteString(`{"l":[`)
	b.WriteString(`{"l":[`)
	for i := range 1000 {
		if i > 0 {
			a.WriteByte(',')
			b.WriteByte(',')
		}
		fmt.Fprintf(&a, `{"v":%d,"w":%d}`, i, i)
		fmt.Fprintf(&b, `{"v":%d,"w":%d}`, i+1, i)
	}
	a.WriteString(`],"x":1}`)
	b.WriteString(`],"x":2}`)
	ds := c.Diff(jsonResp(a.String()), jsonResp(b.String()))
	if len(ds) != MaxInstancesPerField+1 || ds[0].Path != "$.l[0].v" || ds[len(ds)-1].Field != "$.x" {
		t.Errorf("got %d differences: %q…", len(ds), brief(ds[:3]))
	}
	checkInvariants(t, c, jsonResp(a.String()), jsonResp(b.String()))
	// A field filled by per-index differences that turn into one order
	// difference is counted again from zero: later instances still show.
	var o1, o2 strings.Builder
	o1.WriteString(`{"o":[`)
	o2.WriteString(`{"o":[`)
	for i := range 40 {
		if i > 0 {
			o1.WriteByte(',')
			o2.WriteByte(',')
		}
		fmt.Fprintf(&o1, `{"x":[%d,%d]}`, i, i+1)
		if i == 39 {
			fmt.Fprintf(&o2, `{"x":[%d,%d]}`, i, i+2) // a real change
		} else {
			fmt.Fprintf(&o2, `{"x":[%d,%d]}`, i+1, i) // a reorder
		}
	}
	o1.WriteString(`]}`)
	o2.WriteString(`]}`)
	got := brief(c.Diff(jsonResp(o1.String()), jsonResp(o2.String())))
	if len(got) != MaxInstancesPerField+1 || got[len(got)-1] != "value $.o[*].x[*] $.o[39].x[1] 40|41" {
		t.Errorf("got %d: %q", len(got), got)
	}
}
