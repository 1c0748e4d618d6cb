package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type source struct{}

func (source) Ready() bool { return true }
func (source) Config() any { return map[string]string{"listen": "127.0.0.1:8080"} }
func (source) Routes() any { return []string{} }

// newAdmin serves an admin Server on a real loopback socket with one
// state-changing endpoint that counts its calls.
func newAdmin(t *testing.T, token string) (*httptest.Server, *int) {
	t.Helper()
	s := New(source{}, http.NotFoundHandler(), token)
	calls := new(int)
	s.Handle("POST /api/v1/rollouts/{route}/abort", func(w http.ResponseWriter, _ *http.Request) {
		*calls++
		WriteJSON(w, http.StatusOK, map[string]string{"phase": "aborted"})
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, calls
}

func do(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// A web page the operator visits must not drive a token-less loopback
// admin API with a cross-site form post; the CLI (no browser headers) and
// the same-origin dashboard must.
func TestCrossOriginWritesRefused(t *testing.T) {
	srv, calls := newAdmin(t, "")
	const path = "/api/v1/rollouts/checkout/abort"
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"cross-site form", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"}, http.StatusForbidden},
		{"cross-origin, old browser", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"CLI", nil, http.StatusOK},
		{"dashboard", map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
	} {
		before := *calls
		resp := do(t, srv, http.MethodPost, path, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if ran := *calls > before; ran != (tc.want == http.StatusOK) {
			t.Errorf("%s: handler ran = %v", tc.name, ran)
		}
	}
	// Reads stay open cross-origin (a GET changes nothing).
	if resp := do(t, srv, http.MethodGet, "/api/v1/config", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusOK {
		t.Errorf("cross-origin GET: status %d", resp.StatusCode)
	}
}

// DNS rebinding: a browser pointed at the loopback listener through an
// attacker's name sends that name as Host; without a token only loopback
// names are answered.
func TestTokenlessAdminAnswersLoopbackHostsOnly(t *testing.T) {
	srv, calls := newAdmin(t, "")
	for host, want := range map[string]int{
		"evil.example:9901":  http.StatusMisdirectedRequest,
		"evil.example":       http.StatusMisdirectedRequest,
		"10.0.0.1:9901":      http.StatusMisdirectedRequest,
		"127.0.0.1:9901":     http.StatusOK,
		"localhost:9901":     http.StatusOK,
		"LOCALHOST":          http.StatusOK,
		"[::1]:9901":         http.StatusOK,
		"umbra.localhost:80": http.StatusOK,
		"127.5.6.7":          http.StatusOK,
	} {
		resp := do(t, srv, http.MethodPost, "/api/v1/rollouts/checkout/abort", map[string]string{"Host": host})
		if resp.StatusCode != want {
			t.Errorf("Host %q: status %d, want %d", host, resp.StatusCode, want)
		}
	}
	if *calls != 6 {
		t.Errorf("handler ran %d times, want 6 (the loopback hosts)", *calls)
	}
	// With a token, any host name is fine: the token is the protection.
	tsrv, _ := newAdmin(t, "s3cret")
	resp := do(t, tsrv, http.MethodPost, "/api/v1/rollouts/checkout/abort", map[string]string{"Host": "umbra.internal:9901", "Authorization": "Bearer s3cret"})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("token, named host: status %d", resp.StatusCode)
	}
	if resp := do(t, tsrv, http.MethodPost, "/api/v1/rollouts/checkout/abort", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token missing: status %d", resp.StatusCode)
	}
}

// Every path the admin listener does not serve answers the API's error
// shape: 404 for unknown paths (under /api/ and elsewhere), 405 with Allow
// for a method an endpoint does not take. Under /api/ the token comes first.
func TestUnknownPathsAnswerJSON(t *testing.T) {
	srv, _ := newAdmin(t, "")
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/api/v1/nope", 404, "not_found", ""},
		{"GET", "/api/v2/config", 404, "not_found", ""},
		{"GET", "/nope", 404, "not_found", ""},
		{"DELETE", "/api/v1/config", 405, "method_not_allowed", "GET, HEAD"},
		{"POST", "/api/v1/routes", 405, "method_not_allowed", "GET, HEAD"},
		{"GET", "/api/v1/rollouts/checkout/abort", 405, "method_not_allowed", "POST"},
		{"POST", "/healthz", 405, "method_not_allowed", "GET, HEAD"},
	} {
		resp, body := doBody(t, srv, tc.method, tc.path, nil)
		var e struct{ Error, Message string }
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal(body, &e) != nil || e.Error != tc.code || e.Message == "" {
			t.Errorf("%s %s: %d %s %s, want %d with error %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.code)
		}
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
	tsrv, _ := newAdmin(t, "s3cret")
	for _, path := range []string{"/api/v1/nope", "/api/v1/config"} {
		if resp, _ := doBody(t, tsrv, "DELETE", path, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("DELETE %s without the token: %d, want 401 before 404/405", path, resp.StatusCode)
		}
	}
	if resp, _ := doBody(t, tsrv, "DELETE", "/api/v1/config", map[string]string{"Authorization": "Bearer s3cret"}); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /api/v1/config with the token: %d, want 405", resp.StatusCode)
	}
}

func doBody(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}
