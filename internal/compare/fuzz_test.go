package compare

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/umbragw/umbra/internal/jsonpath"
)

// canonicalPath renders compiled steps back to the grammar.
func canonicalPath(p Path) string {
	b := []byte("$")
	for _, st := range p.Steps() {
		if st.Descend {
			b = append(b, '.')
		}
		switch st.Kind {
		case jsonpath.Any:
			if st.Descend {
				b = append(b, '.')
			}
			b = append(b, "[*]"...)
		case jsonpath.Index:
			if st.Descend {
				b = append(b, '.')
			}
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(st.Index), 10)
			b = append(b, ']')
		default:
			b = jsonpath.AppendKey(b, st.Key)
		}
	}
	return string(b)
}

func FuzzPath(f *testing.F) {
	for _, s := range []string{"$", "$.a", "$.items[*].id", "$..trace_id", "$['a.b']", `$["x\"y"]`,
		"$[0][1]", "$..*", "$.a.*", "$..[2]", "$.", "$[", "$['", "a.b", "$.ü", "$[01]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err == nil {
			if p.String() != s {
				t.Fatalf("String() = %q, want %q", p.String(), s)
			}
			// The canonical rendering compiles to the same steps.
			c := canonicalPath(p)
			q, err := ParsePath(c)
			if err != nil || !reflect.DeepEqual(p.Steps(), q.Steps()) {
				t.Fatalf("%q rendered as %q: %v\n%+v\n%+v", s, c, err, p.Steps(), q.Steps())
			}
			// Matching never panics, whatever the location.
			m := newMatcher([]Path{p}, []Path{p})
			matchPath(m, "a", "[0]", "[*]", s)
		} else if _, ok := err.(*PathError); !ok {
			t.Fatalf("error %T %v", err, err)
		}
		// Any key round-trips through appendKey.
		k := string(jsonpath.AppendKey([]byte("$"), s))
		p, err = ParsePath(k)
		if err != nil || len(p.Steps()) != 1 || p.Steps()[0].Key != s {
			t.Fatalf("key %q rendered as %q: %v", s, k, err)
		}
	})
}

// toAny converts a parsed value to what encoding/json decodes with UseNumber.
func toAny(v *value) any {
	switch v.kind {
	case kNull:
		return nil
	case kBool:
		return v.str == "true"
	case kNumber:
		return json.Number(v.str)
	case kString:
		return v.str
	case kArray:
		out := make([]any, len(v.list))
		for i := range v.list {
			out[i] = toAny(&v.list[i])
		}
		return out
	default:
		out := make(map[string]any, v.members())
		for i := range v.members() {
			out[v.key(i)] = toAny(v.val(i))
		}
		return out
	}
}

func decodeStd(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// fuzzComparators cover the options that change the walk.
var fuzzComparators = []*Comparator{
	MustNew(Options{}),
	MustNew(Options{NumericTolerance: 0.01}),
	MustNew(Options{Ignore: []string{"$..id", "$.a[0]", "$.b.*"}, UnorderedArrays: []string{"$", "$..l", "$.a", "$[*]"}, NumericTolerance: 1e-9}),
	MustNew(Options{UnorderedArrays: []string{"$..*"}, NumericTolerance: 0.5}),
}

func FuzzDiff(f *testing.F) {
	seeds := [][2]string{
		{`{"a":1}`, `{"a":2}`},
		{`{"user":{"emails":["a","b"],"id":3}}`, `{"user":{"emails":["b","a"],"id":4}}`},
		{`[1,2,3]`, `[3,2,1]`},
		{`[1,2.0000001,3]`, `[1.000000001,2,4]`},
		{`{"l":[{"id":1},{"id":2}],"x":null}`, `{"l":[{"id":2},{"id":1,"y":true}]}`},
		{`{"a":[1,1,2],"b":{"c":1}}`, `{"a":[1,2,2],"b":{"c":2}}`},
		{`"text"`, `"other"`},
		{`{"n":9007199254740993}`, `{"n":9007199254740992}`},
		{`{"a":1,"a":2}`, `{"a":"\u00e9\ud800"}`},
		{"not json", "<html></html>"},
		{"", `{}`},
		{"\xff\xfe", "\xff"},
		{`[[1,2],[2,1]]`, `[[2,1],[1,2]]`},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		// The parser agrees with encoding/json on validity and values.
		var p parser
		for _, x := range [][]byte{a, b} {
			v, ok := p.parse(string(x))
			if ok != json.Valid(x) {
				t.Fatalf("parse(%q) ok=%v, json.Valid=%v", x, ok, !ok)
			}
			if ok {
				std, err := decodeStd(x)
				if err != nil {
					t.Fatal(err)
				}
				if got := toAny(&v); !reflect.DeepEqual(got, std) {
					t.Fatalf("parse(%q) = %#v, encoding/json: %#v", x, got, std)
				}
			}
		}
		ga, gb := genPair(a)
		for _, c := range fuzzComparators {
			checkInvariants(t, c, jsonResp(ga), jsonResp(gb))
		}
		ra, rb := jsonResp(string(a)), jsonResp(string(b))
		for _, c := range fuzzComparators {
			// Never panics; Diff(x, x) is empty; fields are symmetric.
			checkInvariants(t, c, ra, rb)
			// A re-encoding of the same document is equal.
			if std, err := decodeStd(a); err == nil && json.Valid(a) {
				re, err := json.MarshalIndent(std, "", " ")
				if err != nil {
					t.Fatal(err)
				}
				if ds := c.Diff(ra, jsonResp(string(re))); len(ds) != 0 {
					t.Fatalf("re-encoded %q as %q: %q", a, re, brief(ds))
				}
			}
		}
	})
}
