package adoption

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/jsonpath"
)

func fieldsOf(t testing.TB, paths ...string) []field {
	t.Helper()
	fs := make([]field, len(paths))
	for i, p := range paths {
		steps, err := config.ParseFieldPath(p)
		if err != nil {
			t.Fatal(err)
		}
		fs[i] = field{name: fmt.Sprint(i), path: p, steps: steps}
	}
	return fs
}

// reference decodes with encoding/json and follows the paths: what scan
// must agree with.
func reference(body []byte, fields []field) (uint64, bool) {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return 0, false
	}
	var found uint64
	for i, f := range fields {
		if present(doc, f.steps) {
			found |= 1 << i
		}
	}
	return found, true
}

func present(v any, steps []jsonpath.Step) bool {
	if len(steps) == 0 {
		return true
	}
	st := steps[0]
	switch t := v.(type) {
	case map[string]any:
		if st.Kind != jsonpath.Key {
			return false
		}
		c, ok := t[st.Key]
		return ok && present(c, steps[1:])
	case []any:
		if st.Kind == jsonpath.Any {
			for _, c := range t {
				if present(c, steps[1:]) {
					return true
				}
			}
			return false
		}
		return st.Kind == jsonpath.Index && st.Index < len(t) && present(t[st.Index], steps[1:])
	}
	return false
}

func TestScan(t *testing.T) {
	fs := fieldsOf(t, "$.email", "$.emails", "$.contact['e-mail']", "$.items[*].sku", "$.items[1]", "$.a.b.c")
	for _, c := range []struct {
		body string
		want []int // indexes of fields present
		ok   bool
	}{
		{`{"email": "a@x"}`, []int{0}, true},
		{`{"emails": ["a@x"], "email": null}`, []int{0, 1}, true},
		{`{"name": "x"}`, nil, true},
		{`{"contact": {"e-mail": 1}}`, []int{2}, true},
		{`{"contact": {"e\u002dmail": 1}}`, []int{2}, true},
		{`{"em\"ail": 1, "x": {"email": 2}}`, nil, true},
		{`{"items": [{"sku": 1}]}`, []int{3}, true},
		{`{"items": [{"id": 1}, {"id": 2, "sku": "x"}]}`, []int{3, 4}, true},
		{`{"items": {"sku": 1}}`, nil, true},
		{`{"a": {"b": {"c": {}}}}`, []int{5}, true},
		{`{"a": {"b": [1, {"c": 1}]}}`, nil, true},
		{`[{"email": 1}]`, nil, true},
		{` "email" `, nil, true},
		{`{"email": 1`, nil, false},
		{`{"email": 1}}`, nil, false},
		{`{"email": tru}`, nil, false},
		{`{"email": 01}`, nil, false},
		{`{"email": "a` + "\n" + `"}`, nil, false},
		{`{email: 1}`, nil, false},
		{``, nil, false},
		{`{"a": [1, 2,]}`, nil, false},
		{`{"n": -1.5e+3, "t": true, "f": false, "z": null, "s": "\ud83d\ude00", "e": {}, "l": []}`, nil, true},
	} {
		got, ok := scan([]byte(c.body), fs)
		var want uint64
		for _, i := range c.want {
			want |= 1 << i
		}
		if ok != c.ok || got != want {
			t.Errorf("%s: found %b ok %v, want %b %v", c.body, got, ok, want, c.ok)
		}
		if rf, rok := reference([]byte(c.body), fs); rok != ok || rf != got {
			t.Errorf("%s: encoding/json reference %b %v", c.body, rf, rok)
		}
	}
	if _, ok := scan([]byte(strings.Repeat("[", 600)+strings.Repeat("]", 600)), fs); ok {
		t.Error("nesting deeper than maxDepth accepted")
	}
}

// Random documents: scan agrees with the encoding/json reference.
func TestScanRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	fs := fieldsOf(t, "$.a", "$.b.a", "$.c[0]", "$.c[*].a", "$['x y']", "$.b[*]")
	for range 5000 {
		doc := randomJSON(r, 0)
		body, _ := json.Marshal(doc)
		got, ok := scan(body, fs)
		want, wok := reference(body, fs)
		if ok != wok || got != want {
			t.Fatalf("%s: scan %b %v, reference %b %v", body, got, ok, want, wok)
		}
	}
}

func randomJSON(r *rand.Rand, depth int) any {
	names := []string{"a", "b", "c", "x y", "é"}
	switch k := r.IntN(8); {
	case depth > 3 || k < 2:
		return []any{nil, true, 1.5, "s", `q"\`}[r.IntN(5)]
	case k < 5:
		m := map[string]any{}
		for range r.IntN(4) {
			m[names[r.IntN(len(names))]] = randomJSON(r, depth+1)
		}
		return m
	default:
		var l []any
		for range r.IntN(4) {
			l = append(l, randomJSON(r, depth+1))
		}
		return l
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{`{"email": "a"}`, `{"items": [{"sku": 1}, 2]}`, `[1, {"a": {"b": null}}]`, `{"e\u006dail": true}`, `{"a":`, `"x"`} {
		f.Add([]byte(s))
	}
	fs := fieldsOf(f, "$.email", "$.items[*].sku", "$.a.b", "$[1].a")
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scan(body, fs)
		if ok != json.Valid(body) {
			t.Fatalf("%q: scan ok %v, json.Valid %v", body, ok, !ok)
		}
		if ok {
			if want, _ := reference(body, fs); got != want {
				t.Fatalf("%q: scan %b, reference %b", body, got, want)
			}
		}
	})
}

var benchBody = []byte(`{"id": 12345, "name": "Ada Lovelace", "email": "ada@example.com",
 "address": {"street": "1 Analytical Engine Way", "city": "London", "zip": "N1"},
 "tags": ["math", "computing", "poetry"], "preferences": {"newsletter": true, "theme": "dark"},
 "orders": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}, {"sku": "C-3", "qty": 5}]}`)

// BenchmarkScan compares the scanner with decoding into map[string]any.
func BenchmarkScan(b *testing.B) {
	fs := fieldsOf(b, "$.email", "$.emails", "$.orders[*].sku")
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchBody)))
		for b.Loop() {
			scan(benchBody, fs)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchBody)))
		for b.Loop() {
			reference(benchBody, fs)
		}
	})
}

func TestScanAllocs(t *testing.T) {
	fs := fieldsOf(t, "$.email", "$.emails", "$.orders[*].sku", `$['na"me']`)
	if n := testing.AllocsPerRun(100, func() { scan(benchBody, fs) }); n != 0 {
		t.Errorf("%v allocations per scan", n)
	}
	// Escaped keys, non-ASCII and longer than a small string conversion's
	// stack buffer, are decoded without allocating either.
	escaped := []byte(`{"e\u006dail": 1, "na\"me": 2, "a-k\u00e9y-longer-than-thirty-two-bytes-\u00fc\ud83d\ude00": 3}`)
	fs = fieldsOf(t, "$.email", `$['na"me']`, "$['a-kéy-longer-than-thirty-two-bytes-ü😀']")
	if got, ok := scan(escaped, fs); !ok || got != 7 {
		t.Fatalf("scan = %b, %v; want all three fields", got, ok)
	}
	if n := testing.AllocsPerRun(100, func() { scan(escaped, fs) }); n != 0 {
		t.Errorf("%v allocations per scan of escaped keys", n)
	}
}
