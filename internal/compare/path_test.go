package compare

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	key := func(k string) step { return step{sel: selKey, key: k} }
	for _, tc := range []struct {
		in   string
		want []step
	}{
		{"$", nil},
		{"$.a", []step{key("a")}},
		{"$.created_at", []step{key("created_at")}},
		{"$.items[*].id", []step{key("items"), {sel: selAny}, key("id")}},
		{"$.a.*", []step{key("a"), {sel: selAny}}},
		{"$[0][12]", []step{{sel: selIndex}, {sel: selIndex, idx: 12}}},
		{"$['key with.dots']", []step{key("key with.dots")}},
		{`$["dq"]`, []step{key("dq")}},
		{`$['it\'s \\ "x"']`, []step{key(`it's \ "x"`)}},
		{"$..trace_id", []step{{desc: true, sel: selKey, key: "trace_id"}}},
		{"$..['a b']", []step{{desc: true, sel: selKey, key: "a b"}}},
		{"$..[3]", []step{{desc: true, sel: selIndex, idx: 3}}},
		{"$..*", []step{{desc: true, sel: selAny}}},
		{"$.a..b", []step{key("a"), {desc: true, sel: selKey, key: "b"}}},
		{"$.ünï-cödé:x$@", []step{key("ünï-cödé:x$@")}},
		{"$.0", []step{key("0")}},
	} {
		p, err := ParsePath(tc.in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(p.steps, tc.want) || p.String() != tc.in {
			t.Errorf("ParsePath(%q) = %+v, want %+v", tc.in, p.steps, tc.want)
		}
	}
}

func TestParsePathErrors(t *testing.T) {
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
		_, err := ParsePath(tc.in)
		var pe *PathError
		if !errors.As(err, &pe) || pe.Offset != tc.offset || !strings.Contains(pe.Msg, tc.msg) || pe.Path != tc.in {
			t.Errorf("ParsePath(%q) = %v, want offset %d and %q", tc.in, err, tc.offset, tc.msg)
		}
	}
}

// matchPath runs a concrete location (segments "key" or "[N]") through a
// matcher and returns whether it is ignored at some prefix, and whether
// the location itself is an unordered array.
func matchPath(m *matcher, segs ...string) (ignored, unordered bool) {
	cur := append([]uint64(nil), m.start...)
	if intersects(cur, m.ignore) {
		return true, false
	}
	for _, s := range segs {
		sg := seg{key: s, idx: keySeg}
		if strings.HasPrefix(s, "[") {
			sg.key = ""
			if s == "[*]" {
				sg.idx = anyIndex
			} else {
				sg.idx, _ = strconv.Atoi(strings.Trim(s, "[]"))
			}
		}
		next := make([]uint64, m.words)
		if m.next(cur, next, sg) {
			return true, false
		}
		cur = next
	}
	return false, intersects(cur, m.unord)
}

func TestMatcher(t *testing.T) {
	compile := func(paths ...string) []Path {
		var ps []Path
		for _, s := range paths {
			p, err := ParsePath(s)
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		return ps
	}
	m := newMatcher(
		compile("$.created_at", "$.items[*].id", "$.meta", "$..trace_id", "$.list[1]", "$.a.*.c", "$..['x y']"),
		compile("$.tags", "$..sets", "$.rows[*]"),
	)
	for _, tc := range []struct {
		segs               []string
		ignored, unordered bool
	}{
		{[]string{"created_at"}, true, false},
		{[]string{"created"}, false, false},
		{[]string{"created_at_x"}, false, false},
		{[]string{"items", "[3]", "id"}, true, false},
		{[]string{"items", "[3]", "name"}, false, false},
		{[]string{"items", "id"}, false, false}, // [*] is any child, but the key must follow it
		{[]string{"items", "x", "id"}, true, false},
		{[]string{"meta"}, true, false},
		{[]string{"meta", "page", "[0]"}, true, false}, // everything under an ignored path
		{[]string{"trace_id"}, true, false},
		{[]string{"a", "[2]", "b", "trace_id"}, true, false},
		{[]string{"a", "trace_id", "x"}, true, false},
		{[]string{"list", "[1]"}, true, false},
		{[]string{"list", "[0]"}, false, false},
		{[]string{"list", "[*]"}, false, false}, // inside a multiset, [N] does not match
		{[]string{"a", "b", "c"}, true, false},
		{[]string{"a", "[0]", "c"}, true, false},
		{[]string{"a", "c"}, false, false},
		{[]string{"q", "x y"}, true, false},
		{[]string{"tags"}, false, true},
		{[]string{"tags", "[0]"}, false, false}, // only the array itself
		{[]string{"x", "[1]", "sets"}, false, true},
		{[]string{"sets"}, false, true},
		{[]string{"rows"}, false, false},
		{[]string{"rows", "[5]"}, false, true},
	} {
		ign, uno := matchPath(m, tc.segs...)
		if ign != tc.ignored || uno != tc.unordered {
			t.Errorf("%v: ignored %v unordered %v, want %v %v", tc.segs, ign, uno, tc.ignored, tc.unordered)
		}
	}
	root := newMatcher(compile("$"), nil)
	if ign, _ := matchPath(root); !ign {
		t.Error(`"$" does not ignore the document`)
	}
	none := newMatcher(nil, nil)
	if ign, uno := matchPath(none, "a", "[0]"); ign || uno || none.words != 0 {
		t.Error("an empty matcher matches")
	}
}

func TestAppendKeyRoundTrip(t *testing.T) {
	for _, k := range []string{"a", "a.b", "it's", `back\slash`, "", "*", "a b", "[0]", "ü", "\x00\n", `"`, "$"} {
		s := string(appendKey([]byte("$"), k))
		p, err := ParsePath(s)
		if err != nil || len(p.steps) != 1 || p.steps[0].key != k || p.steps[0].sel != selKey {
			t.Errorf("key %q rendered as %q: %v %+v", k, s, err, p.steps)
		}
	}
}
