package testkit

import (
	"os"
	"sync"
	"testing"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/gateway"
)

// logTailLines is how many log lines a failed test prints.
const logTailLines = 60

// Gateway is a started gateway with its addresses, config file and log.
type Gateway struct {
	*gateway.Gateway
	URL      string // http(s)://main listener
	AdminURL string // http://admin listener
	Path     string // the config file
	Log      *LogBuffer

	stopOnce sync.Once
	stopErr  error
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
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, []byte(text))
	if err != nil {
		t.Fatalf("config.Parse:\n%v\n--- config ---\n%s", err, text)
	}
	logs := &LogBuffer{}
	opts.LogOutput = logs
	g, err := gateway.New(cfg, opts)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := g.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	w := &Gateway{Gateway: g, URL: mainURL(cfg, g.Addr()), AdminURL: "http://" + g.AdminAddr(), Path: path, Log: logs}
	t.Cleanup(func() {
		_ = w.Stop()
		if t.Failed() {
			t.Logf("gateway log (last lines):\n%s", Tail(logs.String(), logTailLines))
		}
	})
	return w
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
	g.stopOnce.Do(func() { g.stopErr = g.Shutdown() })
	return g.stopErr
}
