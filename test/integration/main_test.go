package integration

import (
	"testing"

	"github.com/umbragw/umbra/test/testkit"
)

// testVersion is stamped into the binary, to check `umbra version`.
const testVersion = "v0.0.0-itest"

func TestMain(m *testing.M) { testkit.Main(m) }

// umbraPath returns the umbra binary's path, built with the race detector
// so the CLI tests check the binary's own goroutines too.
func umbraPath(t *testing.T) string {
	t.Helper()
	return testkit.Umbra(t, testkit.Build{Race: true, Version: testVersion})
}
