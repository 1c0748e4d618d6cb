package bucket

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/umbragw/umbra/internal/config"
)

func TestKeySources(t *testing.T) {
	r := httptest.NewRequest("GET", "/x?a=1&user=bob%20smith&empty=", nil)
	r.Header.Set("X-User-ID", "alice")
	r.AddCookie(&http.Cookie{Name: "sid", Value: "s-42"})
	r.RemoteAddr = "10.1.2.3:5555"
	cases := []struct {
		src  string
		want string
		ok   bool
	}{
		{"header:X-User-ID", "alice", true},
		{"header:x-user-id", "alice", true},
		{"header:X-Missing", "", false},
		{"cookie:sid", "s-42", true},
		{"cookie:nope", "", false},
		{"query:user", "bob smith", true},
		{"query:a", "1", true},
		{"query:empty", "", false},
		{"query:zzz", "", false},
		{"client_ip", "10.1.2.3", true},
	}
	for _, c := range cases {
		src, ok := config.ParseKey(c.src)
		if !ok {
			t.Fatalf("ParseKey(%q) failed", c.src)
		}
		got, gotOK := Key(r, src)
		if got != c.want || gotOK != c.ok {
			t.Errorf("Key(%s) = %q, %v; want %q, %v", c.src, got, gotOK, c.want, c.ok)
		}
	}
	if _, ok := Key(r, config.KeySource{}); ok {
		t.Error("empty key source must give no key")
	}
}

func TestBucketDeterministicAndSalted(t *testing.T) {
	first := Of("", "user-1")
	for i := 0; i < 3; i++ {
		if got := Of("", "user-1"); got != first {
			t.Fatalf("bucket not deterministic: %d then %d", first, got)
		}
	}
	same := 0
	for i := 0; i < 1000; i++ {
		k := fmt.Sprintf("user-%d", i)
		if Of("shadow", k) == Of("canary", k) {
			same++
		}
	}
	if same > 5 {
		t.Errorf("salts do not decorrelate: %d of 1000 keys share a bucket", same)
	}
}

// TestShareWithinBounds checks that over 10,000 sequential keys the
// included share is within 4 standard deviations of the target, and that
// shares nest.
func TestShareWithinBounds(t *testing.T) {
	const n = 10000
	for _, pct := range []float64{0.5, 1, 5, 10, 25, 50, 90} {
		in := 0
		for i := 0; i < n; i++ {
			b := Of("", fmt.Sprintf("user-%d", i))
			if In(b, pct) {
				in++
				for _, larger := range []float64{pct, pct + 1, 100} {
					if !In(b, larger) {
						t.Fatalf("nesting broken: bucket %d in %v%% but not in %v%%", b, pct, larger)
					}
				}
			}
		}
		p := pct / 100
		sd := math.Sqrt(n * p * (1 - p))
		if diff := math.Abs(float64(in) - n*p); diff > 4*sd {
			t.Errorf("%v%%: %d of %d in, want %.0f ± %.0f", pct, in, n, n*p, 4*sd)
		}
	}
	if In(0, 0) || !In(Count-1, 100) {
		t.Error("0% must include nobody and 100% everybody")
	}
}

func BenchmarkOf(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = Of("shadow", "user-123456789")
	}
}

func FuzzQueryValue(f *testing.F) {
	f.Add("a=1&b=2", "b")
	f.Add("%zz=1&b=%", "b")
	f.Fuzz(func(t *testing.T, raw, name string) {
		_, _ = queryValue(raw, name)
	})
}
