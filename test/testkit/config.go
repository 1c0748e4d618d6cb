package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Top is the standard top of a test config: the main and admin listeners
// on ephemeral loopback ports, a data_dir of the test's own (the default
// ./umbra-data would be shared, and locked, by every gateway of the run),
// the log and a shutdown grace short enough that a test bug cannot hang
// cleanup.
type Top struct {
	DataDir string        // data_dir; Launch fills in DIR/data when empty
	Access  bool          // log.access: on where the race detector should see the access log
	Level   string        // log.level; "info" when empty
	Grace   time.Duration // server.shutdown_grace; 5s when zero
	Admin   string        // extra keys of the admin block ("token_file: ..."), or ""
}

// YAML renders the top. A DataDir of "" leaves data_dir out.
func (tp Top) YAML() string {
	level, grace := tp.Level, tp.Grace
	if level == "" {
		level = "info"
	}
	if grace == 0 {
		grace = 5 * time.Second
	}
	admin := "admin: {listen: 127.0.0.1:0}\n"
	if tp.Admin != "" {
		admin = "admin: {listen: 127.0.0.1:0, " + tp.Admin + "}\n"
	}
	var b strings.Builder
	b.WriteString("listen: 127.0.0.1:0\n" + admin)
	if tp.DataDir != "" {
		b.WriteString("data_dir: " + strconv.Quote(tp.DataDir) + "\n")
	}
	fmt.Fprintf(&b, "log: {level: %s, access: %t}\nserver: {shutdown_grace: %s}\n", level, tp.Access, grace)
	return b.String()
}

// Backends renders a backends block from name/URL pairs, one endpoint each.
func Backends(nameURL ...string) string {
	var b strings.Builder
	b.WriteString("backends:\n")
	for i := 0; i+1 < len(nameURL); i += 2 {
		fmt.Fprintf(&b, "  %s: {endpoints: [%q]}\n", nameURL[i], nameURL[i+1])
	}
	return b.String()
}

// WriteFile writes text to path, failing the test on error.
func WriteFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// WriteAtomic replaces path by renaming a new file over it, as editors and
// config-management tools do, so a watcher never reads half a file.
func WriteAtomic(t testing.TB, path, text string) {
	t.Helper()
	if err := writeAtomic(path, text); err != nil {
		t.Fatal(err)
	}
}

func writeAtomic(path, text string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
