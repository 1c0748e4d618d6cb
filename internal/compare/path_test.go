package compare

import (
	"strconv"
	"strings"
	"testing"
)

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
