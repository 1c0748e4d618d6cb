package shadow

import (
	"net/http"
	"strings"
	"testing"
)

const sampleTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestValidTraceparent(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{sampleTP, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"", false},
		{"garbage", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},                // forbidden version
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},                // zero trace id
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},                // zero span id
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},                // upper case
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", false},                 // short
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011", false},               // long
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},                // separator
		{"00-4bf92f3577b34da6a3ce929d0e0e4736x00f067aa0ba902b7-01", false},                // separator
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7x01", false},                // separator
		{"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", false},                // not hex
		{"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},                // version not hex
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z", false},                // flags not hex
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra-fields-x", false}, // not version 00 form
	} {
		if got := validTraceparent(tc.in); got != tc.want {
			t.Errorf("validTraceparent(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestChildTraceparent(t *testing.T) {
	spans := map[string]bool{}
	for i := 0; i < 100; i++ {
		c := childTraceparent(sampleTP)
		if !validTraceparent(c) {
			t.Fatalf("child %q is not a valid traceparent", c)
		}
		if c[:36] != sampleTP[:36] || c[52:] != sampleTP[52:] {
			t.Fatalf("child %q does not keep version, trace id and flags of %q", c, sampleTP)
		}
		if c[36:52] == sampleTP[36:52] {
			t.Fatalf("child %q reuses the parent span id", c)
		}
		spans[c[36:52]] = true
	}
	if len(spans) != 100 {
		t.Fatalf("100 children got %d distinct span ids", len(spans))
	}
	// Without a valid parent the copy starts a trace of its own.
	for _, parent := range []string{"", "nonsense", strings.ToUpper(sampleTP)} {
		c := childTraceparent(parent)
		if !validTraceparent(c) || !strings.HasPrefix(c, "00-") || !strings.HasSuffix(c, "-01") {
			t.Fatalf("childTraceparent(%q) = %q, want a fresh valid traceparent", parent, c)
		}
	}
}

func TestEnsureTraceparent(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	ensureTraceparent(r)
	tp := r.Header.Get(HeaderTraceparent)
	if !validTraceparent(tp) {
		t.Fatalf("ensureTraceparent set %q", tp)
	}
	ensureTraceparent(r)
	if got := r.Header.Get(HeaderTraceparent); got != tp {
		t.Fatalf("ensureTraceparent replaced a valid traceparent: %q -> %q", tp, got)
	}
	r.Header.Set(HeaderTraceparent, sampleTP)
	ensureTraceparent(r)
	if got := r.Header.Get(HeaderTraceparent); got != sampleTP {
		t.Fatalf("incoming traceparent changed to %q", got)
	}
	r.Header.Set(HeaderTraceparent, "bogus")
	ensureTraceparent(r)
	if got := r.Header.Get(HeaderTraceparent); !validTraceparent(got) {
		t.Fatalf("invalid incoming traceparent replaced by %q", got)
	}
}

func FuzzTraceparent(f *testing.F) {
	f.Add(sampleTP)
	f.Add("")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\xff")
	f.Add(strings.Repeat("-", 55))
	f.Fuzz(func(t *testing.T, s string) {
		valid := validTraceparent(s)
		if valid {
			if len(s) != 55 {
				t.Fatalf("valid traceparent of length %d", len(s))
			}
			for i := 0; i < len(s); i++ {
				c := s[i]
				if i == 2 || i == 35 || i == 52 {
					if c != '-' {
						t.Fatalf("valid traceparent %q has %q at %d", s, c, i)
					}
				} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
					t.Fatalf("valid traceparent %q has non-hex %q at %d", s, c, i)
				}
			}
		}
		c := childTraceparent(s)
		if !validTraceparent(c) {
			t.Fatalf("childTraceparent(%q) = %q: not valid", s, c)
		}
		if valid {
			if c[:36] != s[:36] || c[52:] != s[52:] {
				t.Fatalf("childTraceparent(%q) = %q: trace id or flags changed", s, c)
			}
			if c[36:52] == s[36:52] {
				t.Fatalf("childTraceparent(%q) = %q: same span id", s, c)
			}
		} else if !strings.HasPrefix(c, "00-") {
			t.Fatalf("childTraceparent(%q) = %q: a fresh trace must be version 00", s, c)
		}
	})
}

func TestWithHostSuffix(t *testing.T) {
	for _, tc := range []struct{ host, suffix, want string }{
		{"example.com", "", "example.com"},
		{"example.com:8080", "", "example.com:8080"},
		{"example.com", "-shadow", "example.com-shadow"},
		{"example.com:8080", "-shadow", "example.com-shadow:8080"},
		{"shop.example.com:443", ".dark", "shop.example.com.dark:443"},
		{"127.0.0.1:80", "-shadow", "127.0.0.1-shadow:80"},
	} {
		if got := withHostSuffix(tc.host, tc.suffix); got != tc.want {
			t.Errorf("withHostSuffix(%q, %q) = %q, want %q", tc.host, tc.suffix, got, tc.want)
		}
	}
}
