package testkit

import (
	"cmp"
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
	Listen  string        // listen; "127.0.0.1:0" when empty
	AdminAt string        // admin.listen; "127.0.0.1:0" when empty
	DataDir string        // data_dir; Launch fills in DIR/data when empty
	Access  bool          // log.access: on where the race detector should see the access log
	Level   string        // log.level; "info" when empty
	NoLog   bool          // no log line: the body has a log block of its own
	Grace   time.Duration // server.shutdown_grace; 5s when zero
	Admin   string        // extra keys of the admin block ("token_file: ..."), or ""
}

// YAML renders the top. A DataDir of "" leaves data_dir out.
func (tp Top) YAML() string {
	level, grace := cmp.Or(tp.Level, "info"), cmp.Or(tp.Grace, 5*time.Second)
	listen, adminAt := cmp.Or(tp.Listen, "127.0.0.1:0"), cmp.Or(tp.AdminAt, "127.0.0.1:0")
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\n", listen)
	if tp.Admin != "" {
		fmt.Fprintf(&b, "admin: {listen: %s, %s}\n", adminAt, tp.Admin)
	} else {
		fmt.Fprintf(&b, "admin: {listen: %s}\n", adminAt)
	}
	if tp.DataDir != "" {
		b.WriteString("data_dir: " + strconv.Quote(tp.DataDir) + "\n")
	}
	if !tp.NoLog {
		fmt.Fprintf(&b, "log: {level: %s, access: %t}\n", level, tp.Access)
	}
	fmt.Fprintf(&b, "server: {shutdown_grace: %s}\n", grace)
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
