package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testVersion is stamped into the binary, to check `umbra version`.
const testVersion = "v0.0.0-itest"

var (
	umbraBin string // the umbra binary built by TestMain
	buildErr error
)

// TestMain builds cmd/umbra once (with the race detector, so the CLI
// tests check the binary's own goroutines too) for the CLI tests.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "umbra-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	umbraBin = filepath.Join(dir, "umbra")
	buildErr = build(umbraBin)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(out string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.Command("go", "build", "-race", "-ldflags", "-X main.version="+testVersion, "-o", out, "./cmd/umbra")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/umbra: %w\n%s", err, b)
	}
	return nil
}

// umbraPath returns the umbra binary's path, failing the test if it did not build.
func umbraPath(t *testing.T) string {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return umbraBin
}
