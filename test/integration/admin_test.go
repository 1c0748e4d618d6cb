package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/config"

	"github.com/umbragw/umbra/test/testkit"
)

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	up := testkit.NewUpstream(t, "api", nil)
	g := startGW(t, base+fmt.Sprintf(`
backends:
  api: {endpoints: [%q], timeout: 3s}
routes:
  - {name: api, match: {path_prefix: /api/, methods: [GET]}, backend: api}
`, up.URL))
	c := newClient(t)

	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		if r := do(t, c, "GET", g.AdminURL+path, nil); r.Status != 200 || r.Body != want {
			t.Errorf("%s: %d %q", path, r.Status, r.Body)
		}
	}

	m := g.ScrapeText(t)
	if v, ok := metric(t, m, "umbra_build_info", testkit.Labels("version", "itest", "goversion", runtime.Version())); !ok || v != 1 {
		t.Errorf("umbra_build_info{version=itest,goversion=%s} = %v (%v)", runtime.Version(), v, ok)
	}
	if v, _ := metric(t, m, "umbra_config_routes", nil); v != 1 {
		t.Errorf("umbra_config_routes = %v", v)
	}

	r := do(t, c, "GET", g.AdminURL+"/api/v1/config", nil)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("/api/v1/config: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	var cfg struct {
		Listen   string `json:"listen"`
		Backends map[string]struct {
			Endpoints []string `json:"endpoints"`
			Timeout   string   `json:"timeout"`
		} `json:"backends"`
		Routes []struct {
			Name    string `json:"name"`
			Backend string `json:"backend"`
		} `json:"routes"`
	}
	if err := json.Unmarshal([]byte(r.Body), &cfg); err != nil {
		t.Fatalf("/api/v1/config: %v\n%s", err, r.Body)
	}
	if cfg.Listen != "127.0.0.1:0" || len(cfg.Routes) != 1 || cfg.Routes[0].Backend != "api" ||
		len(cfg.Backends["api"].Endpoints) != 1 || cfg.Backends["api"].Endpoints[0] != up.URL || cfg.Backends["api"].Timeout != "3s" {
		t.Errorf("/api/v1/config = %+v", cfg)
	}

	ri, ok := routes(t, g)["api"]
	if !ok || ri.Backend != "api" || ri.Endpoint != "/api/*" || len(ri.Endpoints) != 1 ||
		ri.Endpoints[0].URL != up.URL || !ri.Endpoints[0].Healthy {
		t.Errorf("/api/v1/routes api = %+v", ri)
	}

	r = do(t, c, "GET", g.AdminURL+"/api/v1/nope", nil)
	if r.Status != 404 || !strings.Contains(r.Body, `"error"`) {
		t.Errorf("/api/v1/nope: %d %s", r.Status, r.Body)
	}
	// The admin endpoints are not on the main listener (where only /api/ is routed).
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if r := do(t, c, "GET", g.URL+path, nil); r.Status != 404 {
			t.Errorf("main listener %s: %d", path, r.Status)
		}
	}
}

// TestAdminOffLoopbackNeedsToken: config.Parse rejects an admin listener
// off loopback without token_file, pointing at the listen key.
func TestAdminOffLoopbackNeedsToken(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":9901", "192.0.2.1:9901"} {
		_, err := config.Parse("exposed.yaml", []byte(fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: %q}
backends:
  a: {endpoints: ["http://127.0.0.1:1"]}
routes:
  - {name: a, backend: a}
`, addr)))
		if err == nil {
			t.Errorf("admin %s without token_file accepted", addr)
			continue
		}
		if !strings.Contains(err.Error(), "exposed.yaml:2:") || !strings.Contains(err.Error(), "token_file") {
			t.Errorf("admin %s: error %q, want exposed.yaml:2:COL and a mention of token_file", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:9901", "[::1]:9901"} {
		if _, err := config.Parse("local.yaml", []byte(fmt.Sprintf("admin: {listen: %q}\nbackends: {a: {endpoints: [\"http://127.0.0.1:1\"]}}\nroutes: [{name: a, backend: a}]\n", addr))); err != nil {
			t.Errorf("loopback admin %s rejected: %v", addr, err)
		}
	}
}

// TestAdminToken: with token_file, /api/v1/* and /metrics need the bearer
// token; the probes stay open for load balancers and kubelets.
func TestAdminToken(t *testing.T) {
	t.Parallel()
	const token = "s3cret-T0ken"
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	testkit.WriteFile(t, tokenFile, token+"\n")
	up := testkit.NewUpstream(t, "api", nil)
	g := startGW(t, fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "0.0.0.0:0", token_file: %q}
backends:
  api: {endpoints: [%q]}
routes:
  - {name: api, backend: api}
`, tokenFile, up.URL))
	_, port, err := net.SplitHostPort(g.AdminAddr())
	if err != nil {
		t.Fatal(err)
	}
	adminURL := "http://127.0.0.1:" + port
	c := newClient(t)
	for _, path := range []string{"/api/v1/config", "/api/v1/routes", "/metrics", "/api/v1/nope"} {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + token, "Bearer " + token + "x", token} {
			var hdr []string
			if auth != "" {
				hdr = []string{"Authorization", auth}
			}
			r := do(t, c, "GET", adminURL+path, nil, hdr...)
			if r.Status != http.StatusUnauthorized {
				t.Errorf("%s with Authorization %q: %d, want 401", path, auth, r.Status)
			}
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: 401 without WWW-Authenticate: Bearer", path)
			}
		}
		want := 200
		if path == "/api/v1/nope" {
			want = 404
		}
		r := do(t, c, "GET", adminURL+path, nil, "Authorization", "Bearer "+token)
		if r.Status != want {
			t.Errorf("%s with the token: %d, want %d: %s", path, r.Status, want, r.Body)
		}
		if strings.Contains(r.Body, token) {
			t.Errorf("%s shows the admin token", path)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := do(t, c, "GET", adminURL+path, nil); r.Status != 200 {
			t.Errorf("%s without a token: %d, want 200", path, r.Status)
		}
	}
	// The token guards the admin listener only; proxying is unaffected.
	if r := do(t, c, "GET", g.URL+"/x", nil); r.Status != 200 {
		t.Errorf("proxied request: %d", r.Status)
	}
}
