package split

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/config"
)

func newSplit(t *testing.T, weight float64, override string) *Split {
	t.Helper()
	key, _ := config.ParseKey("header:X-User-ID")
	return New(&config.Route{Name: "r", KeySource: key, Canary: &config.Canary{
		Backend: "v2", Weight: config.Percent(weight), OverrideHeader: override, Cookie: "umbra_canary_r"}})
}

func request(user string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if user != "" {
		r.Header.Set("X-User-ID", user)
	}
	return r
}

// TestStickyMonotoneAndWithinBounds walks the weight through a rollout over
// 10,000 callers: nobody leaves the canary when the weight rises, repeated
// decisions never change, and the share is within 4 standard deviations.
func TestStickyMonotoneAndWithinBounds(t *testing.T) {
	const n = 10000
	s := newSplit(t, 0, "")
	in := make([]bool, n)
	for _, w := range []float64{1, 5, 10, 25, 50, 100} {
		s.SetWeight(w)
		count := 0
		for i := 0; i < n; i++ {
			user := fmt.Sprintf("user-%d", i)
			got, cookie := s.Decide(request(user))
			if cookie != "" {
				t.Fatal("keyed callers must not get a cookie")
			}
			if in[i] && !got {
				t.Fatalf("%s left the canary when the weight rose to %v%%", user, w)
			}
			if again, _ := s.Decide(request(user)); again != got {
				t.Fatalf("%s flipped at a constant weight %v%%", user, w)
			}
			in[i] = got
			if got {
				count++
			}
		}
		p := w / 100
		sd := math.Sqrt(n * p * (1 - p))
		if math.Abs(float64(count)-n*p) > 4*sd+0.5 {
			t.Errorf("weight %v%%: %d of %d in the canary, want %.0f ± %.1f", w, count, n, n*p, 4*sd)
		}
	}
}

func TestZeroWeightSendsNobody(t *testing.T) {
	s := newSplit(t, 0, "")
	for i := 0; i < 1000; i++ {
		if c, ck := s.Decide(request(fmt.Sprint(i))); c || ck != "" {
			t.Fatal("weight 0 must send nobody and set no cookie")
		}
	}
	if s.Weight() != 0 {
		t.Fatal("weight")
	}
}

func TestDecimalWeight(t *testing.T) {
	s := newSplit(t, 0.5, "")
	if s.Weight() != 0.5 {
		t.Fatalf("Weight() = %v", s.Weight())
	}
	count := 0
	for i := 0; i < 100000; i++ {
		if c, _ := s.Decide(request(fmt.Sprint("u", i))); c {
			count++
		}
	}
	if count < 400 || count > 600 {
		t.Errorf("0.5%% of 100000 = %d, want about 500", count)
	}
}

func TestKeylessCallersGetAStickyCookie(t *testing.T) {
	s := newSplit(t, 50, "")
	canary, live := 0, 0
	for i := 0; i < 200; i++ {
		first, cookie := s.Decide(request(""))
		if !strings.HasPrefix(cookie, "umbra_canary_r=") || !strings.Contains(cookie, "HttpOnly") {
			t.Fatalf("cookie %q", cookie)
		}
		header := http.Header{"Set-Cookie": {cookie}}
		c := (&http.Response{Header: header}).Cookies()[0]
		for j := 0; j < 5; j++ {
			r := request("")
			r.AddCookie(c)
			again, ck := s.Decide(r)
			if again != first || ck != "" {
				t.Fatalf("keyless caller with cookie %s flipped or got a new cookie", c.Value)
			}
		}
		if first {
			canary++
		} else {
			live++
		}
	}
	if canary == 0 || live == 0 {
		t.Errorf("random assignment went one way only: canary %d live %d", canary, live)
	}
	r := request("")
	r.AddCookie(&http.Cookie{Name: "umbra_canary_r", Value: "not-a-number"})
	if _, ck := s.Decide(r); ck == "" {
		t.Error("a garbage cookie must be replaced")
	}
}

func TestOverrideHeader(t *testing.T) {
	s := newSplit(t, 0, "X-Umbra-Version")
	r := request("u1")
	r.Header.Set("X-Umbra-Version", "canary")
	if c, _ := s.Decide(r); !c {
		t.Error("override canary at weight 0")
	}
	s.SetWeight(100)
	r.Header.Set("X-Umbra-Version", "live")
	if c, _ := s.Decide(r); c {
		t.Error("override live at weight 100")
	}
	r.Header.Set("X-Umbra-Version", "bogus")
	if c, _ := s.Decide(r); !c {
		t.Error("an unknown override value must be ignored")
	}
	noOverride := newSplit(t, 0, "")
	r.Header.Set("X-Umbra-Version", "canary")
	if c, _ := noOverride.Decide(r); c {
		t.Error("override must be off unless configured")
	}
}

func BenchmarkDecideKeyed(b *testing.B) {
	key, _ := config.ParseKey("header:X-User-ID")
	s := New(&config.Route{Name: "r", KeySource: key, Canary: &config.Canary{Backend: "v2", Weight: 10, Cookie: "c"}})
	r := request("user-123456")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Decide(r)
	}
}
