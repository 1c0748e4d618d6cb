package headers

import (
	"crypto/tls"
	"net/http"
	"slices"
	"testing"
)

func TestIsHopByHopMatchesList(t *testing.T) {
	for _, k := range hopByHop {
		if !IsHopByHop(k) {
			t.Errorf("IsHopByHop(%q) = false, but it is in hopByHop", k)
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

// TestOwned: isOwned (a switch, for the request path) and Owned (the
// list ReverseProxy's requests restore) name the same fields, in
// canonical form.
func TestOwned(t *testing.T) {
	for _, k := range Owned {
		if !isOwned(k) || http.CanonicalHeaderKey(k) != k {
			t.Errorf("Owned lists %q: isOwned %v, canonical %q", k, isOwned(k), http.CanonicalHeaderKey(k))
		}
	}
	for _, k := range []string{"X-Request-Id", "X-Umbra-Flags", "X-Request-ID", "Connection", "X-Umbra-Shadow"} {
		if isOwned(k) != slices.Contains(Owned, k) {
			t.Errorf("isOwned(%q) = %v, Owned disagrees", k, isOwned(k))
		}
	}
}

// TestEndToEnd: hop-by-hop fields and the ones Connection names stay
// behind, except the gateway's own.
func TestEndToEnd(t *testing.T) {
	conn := []string{"keep-alive, x-custom", " X-Request-Id ,,x-umbra-flags"}
	for k, want := range map[string]bool{
		"Keep-Alive": false, "Te": false, "Connection": false, "X-Custom": false,
		"X-Request-Id": true, "X-Umbra-Flags": true, "Accept": true,
	} {
		if got := EndToEnd(k, conn); got != want {
			t.Errorf("EndToEnd(%q) = %v, want %v", k, got, want)
		}
	}
	if !EndToEnd("X-Custom", nil) || EndToEnd("Upgrade", nil) {
		t.Error("without a Connection field only hop-by-hop fields stay behind")
	}
}
