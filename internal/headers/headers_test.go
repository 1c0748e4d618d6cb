package headers

import (
	"crypto/tls"
	"net/http"
	"slices"
	"testing"
)

func TestIsHopByHopMatchesList(t *testing.T) {
	for _, k := range HopByHop {
		if !IsHopByHop(k) {
			t.Errorf("IsHopByHop(%q) = false, but it is in HopByHop", k)
		}
	}
	for _, k := range []string{"Content-Type", "X-Forwarded-For", "Te-Extra", "connection", ""} {
		if IsHopByHop(k) {
			t.Errorf("IsHopByHop(%q) = true", k)
		}
	}
}

func TestSetForwarded(t *testing.T) {
	for _, tc := range []struct {
		name, remote string
		prior        []string
		tls          bool
		wantFor      []string
		wantProto    string
	}{
		{"first hop", "10.0.0.7:5555", nil, false, []string{"10.0.0.7"}, "http"},
		{"appends to every prior value", "[::1]:80", []string{"1.1.1.1", "2.2.2.2, 3.3.3.3"}, true,
			[]string{"1.1.1.1, 2.2.2.2, 3.3.3.3, ::1"}, "https"},
		{"unparsable remote keeps no address", "pipe", []string{"1.1.1.1"}, false, nil, "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Host: "shop.test:8080", Header: http.Header{}}
			if tc.prior != nil {
				r.Header["X-Forwarded-For"] = tc.prior
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			out := http.Header{}
			SetForwarded(out, r)
			if got := out["X-Forwarded-For"]; !slices.Equal(got, tc.wantFor) {
				t.Errorf("X-Forwarded-For = %q, want %q", got, tc.wantFor)
			}
			if got := out.Get("X-Forwarded-Host"); got != "shop.test:8080" {
				t.Errorf("X-Forwarded-Host = %q", got)
			}
			if got := out.Get("X-Forwarded-Proto"); got != tc.wantProto {
				t.Errorf("X-Forwarded-Proto = %q, want %q", got, tc.wantProto)
			}
		})
	}
}

// TestOwned: IsOwned (a switch, for the request path) and Owned (the
// list the copies restore) name the same fields, in canonical form.
func TestOwned(t *testing.T) {
	for _, k := range Owned {
		if !IsOwned(k) || http.CanonicalHeaderKey(k) != k {
			t.Errorf("Owned lists %q: IsOwned %v, canonical %q", k, IsOwned(k), http.CanonicalHeaderKey(k))
		}
	}
	for _, k := range []string{"X-Request-Id", "X-Umbra-Flags", "X-Request-ID", "Connection", "X-Umbra-Shadow"} {
		if IsOwned(k) != slices.Contains(Owned, k) {
			t.Errorf("IsOwned(%q) = %v, Owned disagrees", k, IsOwned(k))
		}
	}
}
