package jsonpath

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	key := func(k string) Step { return Step{Kind: Key, Key: k} }
	for _, tc := range []struct {
		in   string
		want []Step
	}{
		{"$", nil},
		{"$.a", []Step{key("a")}},
		{"$.created_at", []Step{key("created_at")}},
		{"$.items[*].id", []Step{key("items"), {Kind: Any}, key("id")}},
		{"$.a.*", []Step{key("a"), {Kind: Any}}},
		{"$[0][12]", []Step{{Kind: Index}, {Kind: Index, Index: 12}}},
		{"$['key with.dots']", []Step{key("key with.dots")}},
		{`$["dq"]`, []Step{key("dq")}},
		{`$['it\'s \\ "x"']`, []Step{key(`it's \ "x"`)}},
		{"$..trace_id", []Step{{Descend: true, Kind: Key, Key: "trace_id"}}},
		{"$..['a b']", []Step{{Descend: true, Kind: Key, Key: "a b"}}},
		{"$..[3]", []Step{{Descend: true, Kind: Index, Index: 3}}},
		{"$..*", []Step{{Descend: true, Kind: Any}}},
		{"$.a..b", []Step{key("a"), {Descend: true, Kind: Key, Key: "b"}}},
		{"$.ünï-cödé:x$@", []Step{key("ünï-cödé:x$@")}},
		{"$.0", []Step{key("0")}},
	} {
		p, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(p.steps, tc.want) || p.String() != tc.in {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, p.steps, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in     string
		offset int
		msg    string
	}{
		{"", 0, `starts with "$"`},
		{"created_at", 0, `starts with "$"`},
		{".a", 0, `starts with "$"`},
		{"$.", 2, "expected a name"},
		{"$..", 3, "expected a name"},
		{"$...a", 3, "unexpected '.'"},
		{"$a", 1, `expected "." or "["`},
		{"$.a b", 3, `unexpected ' '`},
		{"$.['a']", 2, "unexpected '['"},
		{"$[", 2, "expected an index"},
		{"$[x]", 2, "unexpected 'x'"},
		{"$[-1]", 2, "unexpected '-'"},
		{"$[01]", 2, "leading zeros"},
		{"$[99999999999999999999]", 2, "too large"},
		{"$[1", 3, `expected "]"`},
		{"$[*", 3, `expected "]"`},
		{"$['a", 2, "unterminated"},
		{`$['a\n']`, 4, "escapes only"},
		{"$['a'x", 5, `expected "]"`},
		{"$.a[*]b", 6, `expected "." or "["`},
	} {
		_, err := Parse(tc.in)
		var pe *Error
		if !errors.As(err, &pe) || pe.Offset != tc.offset || !strings.Contains(pe.Msg, tc.msg) || pe.Path != tc.in {
			t.Errorf("Parse(%q) = %v, want offset %d and %q", tc.in, err, tc.offset, tc.msg)
		}
	}
}

func TestAppendKeyRoundTrip(t *testing.T) {
	for _, k := range []string{"a", "a.b", "it's", `back\slash`, "", "*", "a b", "[0]", "ü", "\x00\n", `"`, "$"} {
		s := string(AppendKey([]byte("$"), k))
		p, err := Parse(s)
		if err != nil || len(p.steps) != 1 || p.steps[0].Key != k || p.steps[0].Kind != Key {
			t.Errorf("key %q rendered as %q: %v %+v", k, s, err, p.steps)
		}
	}
}
