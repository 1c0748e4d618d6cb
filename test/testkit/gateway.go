package testkit

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/gateway"
)

// logTailLines is how many log lines a failed test prints.
const logTailLines = 60

// Wait is the poll of the kit's own waits (metrics, admin state): long
// enough for two shared cores under -race, never reached when things
// work, since a poll returns as soon as its condition holds.
var Wait = Poll{Timeout: 30 * time.Second, Interval: 10 * time.Millisecond}

// Slow is the poll of waits for heavy work: thousands of requests through
// shadow, comparison and egress, or a browser rendering a page.
var Slow = Poll{Timeout: time.Minute, Interval: 20 * time.Millisecond}

// Gateway is a started gateway with its addresses, config file and log.
type Gateway struct {
	*gateway.Gateway
	URL      string // http(s)://main listener
	AdminURL string // http://admin listener
	Path     string // the config file
	Dir      string // the directory of the config file
	DataDir  string // data_dir as Launch wrote it ("" from Start)
	Log      *LogBuffer
	Client   *http.Client // its own pool, for the admin API and /metrics
	Token    string       // admin bearer token the admin helpers send, if any
	Poll     Poll         // the bound of the helpers' waits; Wait by default

	opts gateway.Options // for Restart

	top      string // the config top Rewrite keeps
	stopOnce sync.Once
	stopErr  error
}

// Launch starts a gateway on top+body written to umbra.yaml in a new temp
// dir (DIR/data is the data_dir unless top names one). version is the
// gateway's version string.
func Launch(t testing.TB, version string, top Top, body string) *Gateway {
	t.Helper()
	return LaunchWith(t, gateway.Options{Version: version}, top, body)
}

// LaunchWith is Launch with more gateway options.
func LaunchWith(t testing.TB, opts gateway.Options, top Top, body string) *Gateway {
	t.Helper()
	dir := t.TempDir()
	if top.DataDir == "" {
		top.DataDir = filepath.Join(dir, "data")
	}
	g, err := TryStart(t, opts, filepath.Join(dir, "umbra.yaml"), top.YAML()+body)
	if err != nil {
		t.Fatal(err)
	}
	g.top, g.DataDir = top.YAML(), top.DataDir
	return g
}

// Start writes text to path, parses it with config.Parse (as the loader
// would read that file) and starts a gateway whose version is version and
// whose log goes to a LogBuffer. Cleanup stops it and, if the test failed,
// prints the tail of its log.
func Start(t testing.TB, version, path, text string) *Gateway {
	t.Helper()
	return StartWith(t, gateway.Options{Version: version}, path, text)
}

// StartWith is Start with more gateway options (LogOutput is replaced by
// the LogBuffer).
func StartWith(t testing.TB, opts gateway.Options, path, text string) *Gateway {
	t.Helper()
	g, err := TryStart(t, opts, path, text)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TryStart is StartWith that returns what went wrong instead of failing
// the test, for goroutines other than the test's. It registers cleanups.
func TryStart(t testing.TB, opts gateway.Options, path, text string) (*Gateway, error) {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Parse(path, []byte(text))
	if err != nil {
		return nil, fmt.Errorf("config.Parse:\n%v\n--- config ---\n%s", err, text)
	}
	logs := &LogBuffer{}
	opts.LogOutput = logs
	g, err := gateway.New(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("gateway.New: %v", err)
	}
	if err := g.Start(); err != nil {
		return nil, fmt.Errorf("Start: %v", err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	w := &Gateway{Gateway: g, URL: mainURL(cfg, g.Addr()), AdminURL: "http://" + g.AdminAddr(), Path: path,
		Dir: filepath.Dir(path), Log: logs, opts: opts, Client: &http.Client{Transport: tr, Timeout: Wait.Timeout}, Poll: Wait}
	t.Cleanup(func() {
		_ = w.Stop()
		tr.CloseIdleConnections()
		if t.Failed() {
			t.Logf("gateway log (last lines):\n%s", Tail(logs.String(), logTailLines))
		}
	})
	return w, nil
}

// mainURL is the base URL of the main listener at addr.
func mainURL(cfg *config.Config, addr string) string {
	if cfg.TLS != nil {
		return "https://" + addr
	}
	return "http://" + addr
}

// Stop shuts the gateway down once; later calls return the first result.
func (g *Gateway) Stop() error {
	g.stopOnce.Do(func() {
		g.stopErr = g.Shutdown()
		g.Client.CloseIdleConnections()
	})
	return g.stopErr
}

// Rewrite replaces the config file atomically with body after the top
// Launch wrote (the caller then reloads, or lets the watcher notice).
func (g *Gateway) Rewrite(t testing.TB, body string) {
	t.Helper()
	WriteAtomic(t, g.Path, g.top+body)
}

// Reconfigure rewrites the config file and reloads it, failing the test
// if the reload is refused.
func (g *Gateway) Reconfigure(t testing.TB, body string) {
	t.Helper()
	g.Rewrite(t, body)
	if err := g.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// LaunchText starts a gateway on text, a whole config, written to
// umbra.yaml in a new temp dir. When text names no data_dir a line naming
// DIR/data is put before it, and Rewrite keeps that line.
func LaunchText(t testing.TB, version, text string) *Gateway {
	t.Helper()
	dir := t.TempDir()
	top := ""
	if !hasKey(text, "data_dir") {
		top = "data_dir: " + strconv.Quote(filepath.Join(dir, "data")) + "\n"
	}
	g := Start(t, version, filepath.Join(dir, "umbra.yaml"), top+text)
	g.top = top
	return g
}

// Restart stops g and starts a new gateway on the same config file (and
// so the same data_dir).
func (g *Gateway) Restart(t testing.TB) *Gateway {
	t.Helper()
	if err := g.Stop(); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	text, err := os.ReadFile(g.Path)
	if err != nil {
		t.Fatal(err)
	}
	n := StartWith(t, g.opts, g.Path, string(text))
	n.top, n.DataDir, n.Token, n.Poll = g.top, g.DataDir, g.Token, g.Poll
	return n
}

// hasKey reports whether YAML text has key at its top level.
func hasKey(text, key string) bool {
	return strings.HasPrefix(text, key+":") || strings.Contains(text, "\n"+key+":")
}

// Remote is a Gateway for an umbra running in another process (umbra
// serve): only its URLs, client and poll are set, for the helpers that
// read its admin API and metrics.
func Remote(t testing.TB, url, adminURL string) *Gateway {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &Gateway{URL: url, AdminURL: adminURL, Client: &http.Client{Transport: tr, Timeout: Wait.Timeout}, Poll: Wait}
}
