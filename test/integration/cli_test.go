package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// run runs the binary to completion and returns stdout, stderr and the
// exit code.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return testkit.Run(t, umbraPath(t), args...)
}

func TestCLIValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	bad := filepath.Join(dir, "bad.yaml")
	testkit.WriteFile(t, bad, `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
bogus_key: 1
backends:
  a: {endpoints: ["http://127.0.0.1:1"], timeout: 5}
routes:
  - {name: r, backend: nope}
`)
	_, stderr, code := run(t, "validate", "-c", bad)
	if code != 2 {
		t.Errorf("validate bad.yaml: exit %d, want 2\n%s", code, stderr)
	}
	lineRe := regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:(\d+):(\d+): \S`)
	lines := map[int]bool{}
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		m := lineRe.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("stderr line %q is not FILE:LINE:COL: reason", l)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		lines[n] = true
	}
	for _, want := range []int{3, 5, 7} { // unknown key, bare-number duration, undefined backend
		if !lines[want] {
			t.Errorf("no error reported at line %d:\n%s", want, stderr)
		}
	}

	syntax := filepath.Join(dir, "syntax.yaml")
	testkit.WriteFile(t, syntax, "listen: 127.0.0.1:0\nroutes: [\n  {name: a\n")
	_, stderr, code = run(t, "validate", "-c", syntax)
	if code != 2 || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(syntax)+`:\d+:\d+: `).MatchString(stderr) {
		t.Errorf("validate syntax.yaml: exit %d, stderr %q; want 2 and FILE:LINE:COL", code, stderr)
	}

	_, stderr, code = run(t, "validate", "-c", filepath.Join(dir, "missing.yaml"))
	if code != 2 || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("validate missing.yaml: exit %d, stderr %q; want 2 naming the file", code, stderr)
	}

	good := filepath.Join(dir, "good.yaml")
	testkit.WriteFile(t, good, `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: `+strconv.Quote(filepath.Join(dir, "data"))+`
backends:
  a: {endpoints: ["http://127.0.0.1:1"]}
  b: {endpoints: ["http://127.0.0.1:2"]}
routes:
  - {name: r, backend: a}
`)
	stdout, stderr, code := run(t, "validate", "-c", good)
	if code != 0 || !strings.Contains(stdout, "ok: 1 routes, 2 backends") {
		t.Errorf("validate good.yaml: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}

	if _, stderr, code := run(t, "validate", "--no-such-flag"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2 (usage error): %s", code, stderr)
	}
}

// umbra validate loads a flag file as flagd does: what flagd only warns
// about (a v-prefixed version) is printed as a warning on stderr and the
// config is valid; what flagd refuses is an error, exit 2.
func TestCLIValidateFlagWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flags := filepath.Join(dir, "flags.json")
	cfg := filepath.Join(dir, "umbra.yaml")
	testkit.WriteFile(t, cfg, `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: `+strconv.Quote(filepath.Join(dir, "data"))+`
backends: {a: {endpoints: ["http://127.0.0.1:1"]}}
routes: [{name: r, backend: a}]
flags: {file: `+strconv.Quote(flags)+`}
`)
	testkit.WriteFile(t, flags, `{"flags": {"app": {"state": "ENABLED", "variants": {"new": "new", "old": "old"}, "defaultVariant": "old",
  "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "v2"]}, "new", null]}}}}`)
	stdout, stderr, code := run(t, "validate", "-c", cfg)
	want := `warning: ` + flags + `:1:12: flag "app" at /targeting/if/0/sem_ver/2: "v2" does not match the schema's pattern (flagd schema)`
	if code != 0 || !strings.Contains(stdout, "ok: 1 routes") || strings.TrimSpace(stderr) != want {
		t.Errorf("validate with a flagd schema warning: exit %d\nstdout %q\nstderr %q\nwant stderr %q", code, stdout, stderr, want)
	}
	testkit.WriteFile(t, flags, `{"flags": {"app": {"state": "ENABLED", "variants": {"new": "new"}, "defaultVariant": "old"}}}`)
	if _, stderr, code := run(t, "validate", "-c", cfg); code != 2 || !strings.Contains(stderr, `flags.json:1:12: flag "app": defaultVariant "old" is not one of its variants`) {
		t.Errorf("validate with a defaultVariant naming no variant: exit %d, stderr %q; want 2 and the reason", code, stderr)
	}
}

func TestCLIVersion(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := run(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "umbra "+testVersion+"\n") || !strings.Contains(stdout, "  go: "+runtime.Version()+" ") {
		t.Errorf("umbra version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if flag, _, code := run(t, "--version"); code != 0 || flag != stdout {
		t.Errorf("umbra --version: exit %d, %q, want what umbra version prints, %q", code, flag, stdout)
	}
}

// start runs umbra with args, collecting its output.
func start(t *testing.T, args ...string) *testkit.Proc {
	t.Helper()
	return testkit.StartProc(t, umbraPath(t), args...)
}

// umbraStarted is the log line of a started gateway, with its addresses.
var umbraStarted = regexp.MustCompile(`msg="umbra started" listen=(\S+) admin=(\S+)`)

// TestCLIServe runs `umbra serve`, reloads with SIGHUP and by editing the
// file, and stops with SIGTERM (exit 0).
func TestCLIServe(t *testing.T) {
	t.Parallel()
	a, b := testkit.NewUpstream(t, "a", nil), testkit.NewUpstream(t, "b", nil)
	dir := t.TempDir()
	cfgFor := func(u *testkit.Upstream) string {
		return fmt.Sprintf("data_dir: %q\n", filepath.Join(dir, "data")) + oneRoute(u)
	}
	// The config path is a symlink into another directory: the watcher
	// watches the link's directory, so rewriting the target is invisible to
	// it and only SIGHUP can apply it.
	realDir, linkDir := filepath.Join(dir, "real"), filepath.Join(dir, "link")
	for _, d := range []string{realDir, linkDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	target, path := filepath.Join(realDir, "umbra.yaml"), filepath.Join(linkDir, "umbra.yaml")
	testkit.WriteFile(t, target, cfgFor(a))
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}

	p := start(t, "serve", "-c", path)
	m := p.WaitLine(t, time.Minute, umbraStarted)
	g := testkit.Remote(t, "http://"+m[1], "http://"+m[2])
	c := newClient(t)
	if got := servedBy(t, c, g); got != "a" {
		t.Fatalf("served by %s", got)
	}

	testkit.WriteAtomic(t, target, cfgFor(b))
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.Wait.Until(t, "SIGHUP to apply the new config", func() (bool, string) {
		got := servedBy(t, c, g)
		return got == "b", "served by " + got
	})

	testkit.WriteAtomic(t, path, cfgFor(a)) // replaces the link by a file: the watcher sees it
	testkit.Wait.Until(t, "the file watcher to apply the edit", func() (bool, string) {
		got := servedBy(t, c, g)
		return got == "a", "served by " + got
	})

	testkit.WriteAtomic(t, path, "routes: [\n")
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.WaitLine(t, time.Minute, regexp.MustCompile(`config reload rejected`))
	if got := servedBy(t, c, g); got != "a" {
		t.Errorf("after a rejected reload: served by %s", got)
	}

	if code := p.Stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM: %d, want 0", code)
	}
	if !strings.Contains(p.Output(), "draining") {
		t.Errorf("no drain logged on SIGTERM")
	}
	if ok, msg := refused(strings.TrimPrefix(g.URL, "http://")); !ok {
		t.Errorf("gateway still listening after exit: %s", msg)
	}
}

// TestCLIServeBadConfig: serve with an invalid file exits 2 with positions.
func TestCLIServeBadConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bad.yaml")
	testkit.WriteFile(t, path, "listen: 127.0.0.1:0\nroutes:\n  - {name: r, backend: nope}\n")
	_, stderr, code := run(t, "serve", "-c", path)
	if code != 2 || !strings.Contains(stderr, path+":3:") {
		t.Errorf("serve bad.yaml: exit %d, stderr %q; want 2 and %s:3:COL", code, stderr, path)
	}
}

// TestCLIDemo runs `umbra demo` on ephemeral ports, checks its egress
// checkout report, reads the gateway URL from the tour, calls the demo
// route and exports the recorded payment calls with `umbra egress export`.
func TestCLIDemo(t *testing.T) {
	t.Parallel()
	p := start(t, "demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--egress", "127.0.0.1:0")
	// The checkout through the egress sandbox (reported before the tour):
	// the provider charged each live checkout once, and v2's changed
	// currency is reported.
	m := p.WaitLine(t, time.Minute, regexp.MustCompile(`payment provider received (\d+) calls: (\d+) checkouts charged exactly once, (\d+) charged more than once`))
	if m[2] == "0" || m[3] != "0" {
		t.Errorf("demo egress report: %s", m[0])
	}
	p.WaitLine(t, time.Minute, regexp.MustCompile(`REGRESSION\s+\$\.currency`))
	gwURL := p.WaitLine(t, time.Minute, regexp.MustCompile(`^\s*gateway\s+(http://\S+)`))[1]
	admURL := p.WaitLine(t, time.Minute, regexp.MustCompile(`^\s*admin API\s+(http://\S+)`))[1]
	for _, u := range []string{gwURL, admURL} {
		if strings.HasSuffix(u, ":0") {
			t.Fatalf("demo printed %s: the address before port 0 was resolved", u)
		}
	}
	c := newClient(t)
	r := do(t, c, "GET", gwURL+"/v1/shortlinks/gh", nil, "X-User-ID", "alice")
	if r.Status != 200 || r.Header.Get("X-Served-By") != "shortlinks-v1" || !strings.Contains(r.Body, "github.com") {
		t.Errorf("demo route: %d %s", r.Status, r.Body)
	}
	if r := do(t, c, "GET", admURL+"/readyz", nil); r.Status != 200 {
		t.Errorf("demo readyz: %d", r.Status)
	}
	// umbra egress export writes the recorded calls as a Hoverfly v5
	// simulation.
	stdout, stderr, code := run(t, "egress", "export", "payments", "--admin", admURL)
	var sim struct {
		Data struct {
			Pairs []json.RawMessage `json:"pairs"`
		} `json:"data"`
		Meta struct {
			SchemaVersion string `json:"schemaVersion"`
		} `json:"meta"`
	}
	if err := json.Unmarshal([]byte(stdout), &sim); code != 0 || err != nil || sim.Meta.SchemaVersion != "v5" || len(sim.Data.Pairs) == 0 {
		t.Errorf("umbra egress export: exit %d, %v, %d pairs, schema %q; stderr %s", code, err, len(sim.Data.Pairs), sim.Meta.SchemaVersion, stderr)
	}
	if _, _, code := run(t, "egress", "export", "nosuch", "--admin", admURL); code == 0 {
		t.Error("umbra egress export of an unknown service exited 0")
	}
	if code := p.Stop(t); code != 0 {
		t.Errorf("demo exit code after SIGTERM: %d, want 0", code)
	}
}

// TestCLIServeSignalAtStart sends SIGHUP the moment `umbra serve` says it
// started: the signal is caught (a reload), not its default action, which
// would kill the gateway.
func TestCLIServeSignalAtStart(t *testing.T) {
	t.Parallel()
	a := testkit.NewUpstream(t, "a", nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "umbra.yaml")
	testkit.WriteFile(t, path, fmt.Sprintf("data_dir: %q\n", filepath.Join(dir, "data"))+oneRoute(a))
	for i := range 5 {
		p := start(t, "serve", "-c", path)
		m := p.WaitLine(t, time.Minute, umbraStarted)
		if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		g := testkit.Remote(t, "http://"+m[1], "http://"+m[2])
		if got := servedBy(t, newClient(t), g); got != "a" {
			t.Fatalf("start %d: served by %q after an early SIGHUP", i, got)
		}
		if code := p.Stop(t); code != 0 {
			t.Fatalf("start %d: exit code %d after SIGTERM, want 0", i, code)
		}
	}
}
