package deploytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/gateway"
)

// root is the repository root, relative to this package.
var root = filepath.Join("..", "..")

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// validateConfig loads text as `umbra validate` does (config.Load, then
// gateway.Validate, which compiles routes, flags and comparisons), with
// the absolute paths it names under /etc/umbra/ and /var/lib/umbra moved
// into a temporary directory. files holds what those paths contain (the
// flag file, the admin token); other files umbra would read are missing.
// It returns the loaded config.
func validateConfig(t *testing.T, name, text string, files map[string]string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	move := strings.NewReplacer("/etc/umbra/", dir+"/etc/umbra/", "/var/lib/umbra", dir+"/var/lib/umbra")
	for path, content := range files {
		p := move.Replace(path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "umbra.yaml")
	if err := os.WriteFile(path, []byte(move.Replace(text)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("%s does not load:\n%v", name, err)
	}
	if err := gateway.Validate(cfg); err != nil {
		t.Fatalf("%s does not compile:\n%v", name, err)
	}
	return cfg
}
