package compare

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// A generator of related random JSON documents, driven by a byte string
// so that the fuzzer can steer it.

type gen struct {
	b []byte
	i int
}

func (g *gen) n(k int) int {
	if g.i >= len(g.b) {
		return 0
	}
	v := int(g.b[g.i]) % k
	g.i++
	return v
}

type jnum string // a number literal

type jobj []jkv

type jkv struct {
	k string
	v any
}

var (
	genNumbers = []string{"0", "1", "-1", "2", "1.0", "1.0000001", "1.5", "-0", "1e2", "100", "101",
		"9007199254740993", "9007199254740992", "2.5e10", "12345678901234567890", "3.14159"}
	genStrings = []string{"a", "b", "", "é", "a.b", "id", "x y", "\u0000", "it's", "Z"}
	genKeys    = []string{"id", "a", "b", "l", "x y", "trace_id", "n", "a.b", "*", "0"}
)

func (g *gen) value(depth int) any {
	k := g.n(9)
	if depth > 4 && k >= 5 {
		k %= 5
	}
	switch k {
	case 0:
		return nil
	case 1:
		return g.n(2) == 0
	case 2, 3:
		return jnum(genNumbers[g.n(len(genNumbers))])
	case 4:
		return genStrings[g.n(len(genStrings))]
	case 5, 6:
		arr := make([]any, g.n(5))
		for i := range arr {
			arr[i] = g.value(depth + 1)
		}
		return arr
	default:
		var o jobj
		for range g.n(5) {
			o = append(o, jkv{genKeys[g.n(len(genKeys))], g.value(depth + 1)})
		}
		return o
	}
}

// mutate returns v with random changes: new values, reordered arrays,
// nudged numbers, dropped or added keys.
func (g *gen) mutate(v any, depth int) any {
	switch g.n(12) {
	case 0:
		return g.value(depth)
	case 1:
		if n, ok := v.(jnum); ok && !strings.ContainsAny(string(n), "eE") {
			if strings.Contains(string(n), ".") {
				return n + "000001"
			}
			return n + ".0000001"
		}
	case 2:
		if arr, ok := v.([]any); ok && len(arr) > 1 {
			out := append([]any(nil), arr[1:]...)
			return append(out, arr[0])
		}
	case 3:
		if o, ok := v.(jobj); ok && len(o) > 0 {
			return append(jobj(nil), o[1:]...)
		}
	case 4:
		if o, ok := v.(jobj); ok {
			return append(append(jobj(nil), o...), jkv{genKeys[g.n(len(genKeys))], g.value(depth + 1)})
		}
	}
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = g.mutate(x[i], depth+1)
		}
		return out
	case jobj:
		out := make(jobj, len(x))
		for i := range x {
			out[i] = jkv{x[i].k, g.mutate(x[i].v, depth+1)}
		}
		return out
	}
	return v
}

func writeJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case jnum:
		b.WriteString(string(x))
	case string:
		b.WriteString(jsonQuote(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	case jobj:
		b.WriteByte('{')
		for i, kv := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonQuote(kv.k) + ":")
			writeJSON(b, kv.v)
		}
		b.WriteByte('}')
	}
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// genPair builds a document and a mutated copy from seed.
func genPair(seed []byte) (string, string) {
	g := &gen{b: seed}
	v := g.value(0)
	w := g.mutate(v, 0)
	var a, b strings.Builder
	writeJSON(&a, v)
	writeJSON(&b, w)
	return a.String(), b.String()
}

// TestRandomDocuments checks Diff's invariants on random related documents
// (FuzzDiff explores further).
func TestRandomDocuments(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	seed := make([]byte, 96)
	n := 3000
	if testing.Short() {
		n = 300
	}
	for range n {
		for i := range seed {
			seed[i] = byte(rng.Uint32())
		}
		a, b := genPair(seed)
		for _, c := range fuzzComparators {
			checkInvariants(t, c, jsonResp(a), jsonResp(b))
		}
	}
}
