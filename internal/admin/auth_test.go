package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// get sends one request to srv and returns the status, headers and body.
func get(t *testing.T, url, method, authorization string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestTokenGuardsEverythingButProbes: with admin.token_file set, every
// endpoint but the health probes and the public ones answers 401 with a
// Bearer challenge and the JSON error shape unless the request carries
// exactly "Bearer <token>"; with it, each answers as without a token.
func TestTokenGuardsEverythingButProbes(t *testing.T) {
	const token = "s3cret-token"
	srv, calls := newAdmin(t, token)
	s := srv.Config.Handler.(*Server)
	s.HandlePublic("GET /ui/static/app.js", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "js")
	}))

	for _, p := range []struct{ method, path string }{
		{"GET", "/metrics"},
		{"GET", "/api/v1/config"},
		{"GET", "/api/v1/routes"},
		{"GET", "/api/v1/no-such-endpoint"},
		{"POST", "/api/v1/rollouts/checkout/abort"},
		{"GET", "/debug/pprof/"},
	} {
		for _, bad := range []string{"", "s3cret-token", "Bearer s3cret", "Bearer s3cret-token2", "bearer s3cret-token",
			"Bearer  s3cret-token", "Basic czNjcmV0LXRva2Vu"} {
			code, hdr, body := get(t, srv.URL+p.path, p.method, bad)
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: status %d, want 401", p.method, p.path, bad, code)
				continue
			}
			if got := hdr.Get("WWW-Authenticate"); got != `Bearer realm="umbra-admin"` {
				t.Errorf("%s %s: WWW-Authenticate %q", p.method, p.path, got)
			}
			var e struct{ Error, Message string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "unauthorized" || e.Message == "" {
				t.Errorf("%s %s: body %q, want the JSON error shape with \"unauthorized\"", p.method, p.path, body)
			}
		}
		code, _, body := get(t, srv.URL+p.path, p.method, "Bearer "+token)
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			t.Errorf("%s %s with the token: status %d %s", p.method, p.path, code, body)
		}
	}
	if *calls != 1 {
		t.Errorf("the guarded POST ran %d times, want once (with the token)", *calls)
	}
	// The unknown API path answers the JSON 404 once authorized.
	if code, _, body := get(t, srv.URL+"/api/v1/no-such-endpoint", "GET", "Bearer "+token); code != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
		t.Errorf("unknown API path with the token: %d %s", code, body)
	}
	// Probes and public files need no token: a kubelet or load balancer
	// has none, and the dashboard's sign-in page must load.
	for _, path := range []string{"/healthz", "/readyz", "/ui/static/app.js"} {
		if code, _, body := get(t, srv.URL+path, "GET", ""); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", path, code, body)
		}
	}
}

// TestAuthorized is the check the dashboard's pages use to choose between
// the page and a sign-in form.
func TestAuthorized(t *testing.T) {
	withToken := New(source{}, http.NotFoundHandler(), "tok")
	open := New(source{}, http.NotFoundHandler(), "")
	for auth, want := range map[string]bool{"": false, "Bearer tok": true, "Bearer tok2": false, "tok": false, "Bearer tokx": false} {
		r, _ := http.NewRequest("GET", "/ui/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if got := withToken.Authorized(r); got != want {
			t.Errorf("token set, Authorization %q: Authorized = %v, want %v", auth, got, want)
		}
		if !open.Authorized(r) {
			t.Errorf("no token, Authorization %q: not authorized", auth)
		}
	}
}

type notReady struct{ source }

func (notReady) Ready() bool { return false }

// TestReadyzFollowsTheSource: /readyz answers 503 until the gateway is
// ready (a load balancer must not send traffic before), /healthz 200
// throughout.
func TestReadyzFollowsTheSource(t *testing.T) {
	for _, tc := range []struct {
		src   Source
		ready int
	}{{source{}, http.StatusOK}, {notReady{}, http.StatusServiceUnavailable}} {
		s := New(tc.src, http.NotFoundHandler(), "tok")
		srv := newServer(t, s)
		if code, _, _ := get(t, srv+"/readyz", "GET", ""); code != tc.ready {
			t.Errorf("%T: /readyz %d, want %d", tc.src, code, tc.ready)
		}
		if code, _, _ := get(t, srv+"/healthz", "GET", ""); code != http.StatusOK {
			t.Errorf("%T: /healthz %d", tc.src, code)
		}
	}
}

// newServer serves h on a loopback socket until the test ends.
func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
