package headers

import (
	"bufio"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// TestParseFields: a block reads as textproto.Reader.ReadMIMEHeader reads
// it, and what that reader would read differently or refuse is refused.
func TestParseFields(t *testing.T) {
	all := func(string, string) bool { return true }
	good := []string{
		"",
		"Host: x\r\n",
		"content-type: a/b\r\nX-A:  1 \r\nx-a:\t2\t\r\nX-Empty:\r\n",
		"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nWWW-Authenticate: Basic\r\n",
	}
	for _, block := range good {
		got, ok := ParseFields(block, FieldLines([]byte("S\r\n"+block+"\r\n")), all)
		if !ok {
			t.Errorf("refused %q", block)
			continue
		}
		want, err := textproto.NewReader(bufio.NewReader(strings.NewReader(block + "\r\n"))).ReadMIMEHeader()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, http.Header(want)) {
			t.Errorf("%q: got %v, want %v", block, got, want)
		}
	}
	bad := []string{
		" folded: x\r\n",
		"Bad Name: x\r\n",
		"NoColon\r\n",
		": empty name\r\n",
		"X: a\x00b\r\n",
		"X: a\rb\r\n",
		"X: unterminated",
	}
	for _, block := range bad {
		if _, ok := ParseFields(block, 4, all); ok {
			t.Errorf("read %q", block)
		}
	}
	if _, ok := ParseFields("A: 1\r\nB: 2\r\n", 1, all); ok {
		t.Error("read more lines than announced")
	}
	if _, ok := ParseFields("A: 1\r\nB: 2\r\n", 2, func(k, _ string) bool { return k != "B" }); ok {
		t.Error("accept's refusal ignored")
	}
}

// TestHeadLength finds the end of a head only when it is all there.
func TestHeadLength(t *testing.T) {
	for in, want := range map[string]int{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody": 27,
		"GET / HTTP/1.1\r\nHost: x\r\n":         0,
		"":                                      0,
	} {
		if got := HeadLength([]byte(in)); got != want {
			t.Errorf("HeadLength(%q) = %d, want %d", in, got, want)
		}
	}
}

// nextFieldReference is NextField as three steps (find the line's end,
// cut at the colon, check each part), the way the standard library's
// reader reads a field; NextField does it in one pass.
func nextFieldReference(s string) (k, v, rest string, ok bool) {
	eol := strings.Index(s, "\r\n")
	if eol < 0 {
		return "", "", "", false
	}
	k, v, ok = strings.Cut(s[:eol], ":")
	if !ok || !IsToken(k) {
		return "", "", "", false
	}
	v = TrimSpace(v)
	if !httpguts.ValidHeaderFieldValue(v) {
		return "", "", "", false
	}
	return k, v, s[eol+2:], true
}

// FuzzNextField: NextField reads every input as the reference does.
func FuzzNextField(f *testing.F) {
	for _, s := range []string{
		"Content-Type: text/plain\r\nX: y\r\n", "X:\r\n", "X: a\rb\r\n", "X: a\nb\r\n", ": v\r\n",
		"Bad Name: v\r\n", "X: \t v \t\r\n", "X: caf\xc3\xa9\r\n", "X: a\x7f\r\n", "X: v", "X: v\r", "X",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, rest, ok := NextField(s)
		rk, rv, rrest, rok := nextFieldReference(s)
		if k != rk || v != rv || rest != rrest || ok != rok {
			t.Fatalf("%q: got (%q, %q, %q, %v), reference (%q, %q, %q, %v)", s, k, v, rest, ok, rk, rv, rrest, rok)
		}
	})
}
