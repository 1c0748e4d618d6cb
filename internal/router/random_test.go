package router

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMatchRandomTables compares Match with the reference on random tables
// built from a small vocabulary, so that routes overlap a lot: every path
// kind at every host level, literal fan-outs above maxFew, nested prefixes
// and conditions that fail.
func TestMatchRandomTables(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		specs := make([]string, 1+rng.IntN(60))
		for i := range specs {
			specs[i] = randomRoute(rng, i)
		}
		routes := parseRoutes(t, specs...)
		tab, err := Compile(routes)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for range 300 {
			r := newReq(pick(rng, "GET", "POST"), pick(rng, randHosts...), randomPath(rng), pick(rng, "", "k=v", "k=w&d"))
			if rng.IntN(2) == 0 {
				r.Header.Set("X-A", pick(rng, "1", "2"))
			}
			if got, want := matchName(tab, r), refName(t, routes, r); got != want {
				t.Fatalf("seed %d: %s %s %s?%s %v: got %q, reference %q\nroutes:\n%s",
					seed, r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Header, got, want, strings.Join(specs, "\n"))
			}
		}
	}
}

var (
	randHosts = []string{"a.example.com", "b.a.example.com", "c.b.a.example.com", "example.com", "other.org", ""}
	randSegs  = []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"}
)

func pick(rng *rand.Rand, xs ...string) string { return xs[rng.IntN(len(xs))] }

func randomPath(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(4) {
		b.WriteString("/" + pick(rng, randSegs[:3+rng.IntN(len(randSegs)-3)]...))
	}
	if b.Len() == 0 || rng.IntN(5) == 0 {
		b.WriteString("/")
	}
	return b.String()
}

func randomRoute(rng *rand.Rand, i int) string {
	spec := []string{"r" + string(rune('A'+i/26)) + string(rune('a'+i%26))}
	switch rng.IntN(4) {
	case 0:
		spec = append(spec, "host="+pick(rng, "a.example.com", "b.a.example.com", "example.com"))
	case 1:
		spec = append(spec, "host="+pick(rng, "*.example.com", "*.a.example.com", "*.b.a.example.com"))
	}
	p := randomPath(rng)
	switch rng.IntN(4) {
	case 0:
		spec = append(spec, "path="+p)
	case 1:
		spec = append(spec, "path="+randomTemplate(rng))
	case 2:
		spec = append(spec, "prefix="+p[:1+rng.IntN(len(p))])
	}
	switch rng.IntN(6) {
	case 0:
		spec = append(spec, "methods=POST")
	case 1:
		spec = append(spec, "h:X-A=1")
	case 2:
		spec = append(spec, "q:k=v")
	case 3:
		spec = append(spec, "h:!X-A")
	}
	return strings.Join(spec, " ")
}

func randomTemplate(rng *rand.Rand) string {
	var b strings.Builder
	n := 1 + rng.IntN(3)
	for i := range n {
		switch k := rng.IntN(5); {
		case k == 0 && i == n-1:
			b.WriteString("/{rest...}")
		case k <= 2:
			b.WriteString("/{p" + string(rune('0'+i)) + "}")
		default:
			b.WriteString("/" + pick(rng, randSegs...))
		}
	}
	return b.String()
}
