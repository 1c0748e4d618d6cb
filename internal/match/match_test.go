package match

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/umbragw/umbra/internal/config"
)

// TestHostCondition: a condition on Host reads r.Host, where servers keep
// it (it is never in r.Header), by value, regex, presence and absence.
func TestHostCondition(t *testing.T) {
	r := &http.Request{Host: "beta.example.com", Header: http.Header{"X-A": {"1"}}}
	for _, tc := range []struct {
		m    config.ValueMatch
		want bool
	}{
		{config.ValueMatch{Name: "host", Value: "beta.example.com"}, true},
		{config.ValueMatch{Name: "Host", Value: "example.com"}, false},
		{config.ValueMatch{Name: "HOST", Regex: `^beta\.`}, true},
		{config.ValueMatch{Name: "Host"}, true},
		{config.ValueMatch{Name: "Host", Present: new(false)}, false},
		{config.ValueMatch{Name: "x-a", Value: "1"}, true},
	} {
		cs, err := Headers([]config.ValueMatch{tc.m})
		if err != nil {
			t.Fatal(err)
		}
		if got := HeadersHold(cs, r); got != tc.want {
			t.Errorf("%+v on Host %s: %v, want %v", tc.m, r.Host, got, tc.want)
		}
	}
}

// TestParsableQuery agrees with url.ParseQuery: it keeps every pair
// exactly when ParsableQuery says so.
func TestParsableQuery(t *testing.T) {
	for _, q := range []string{"", "a=1&b=2", "a=%41", "a=%4", "a=%zz", "a=1;b=2", "%", "a+b=c%20d", "a=%41%"} {
		_, err := url.ParseQuery(q)
		if got := ParsableQuery(q); got != (err == nil) {
			t.Errorf("ParsableQuery(%q) = %v, ParseQuery error %v", q, got, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, m := range []config.ValueMatch{
		{},
		{Name: "a", Value: "1", Regex: "1"},
		{Name: "a", Value: "1", Present: new(false)},
		{Name: "a", Regex: "("},
	} {
		if _, err := Query([]config.ValueMatch{m}); err == nil {
			t.Errorf("%+v compiled", m)
		}
	}
}
