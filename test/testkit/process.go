package testkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build names a flavour of the umbra binary.
type Build struct {
	Race    bool   // built with -race, so tests check the binary's goroutines too
	Version string // stamped as main.version, "" for the default
}

var builds struct {
	sync.Mutex
	dir  string
	bins map[Build]*built
}

type built struct {
	once sync.Once
	path string
	err  error
}

// Umbra builds cmd/umbra once per test binary and flavour and returns its
// path, failing the test if it does not build. Main removes the builds.
func Umbra(t testing.TB, b Build) string {
	t.Helper()
	builds.Lock()
	if builds.bins == nil {
		builds.bins = map[Build]*built{}
	}
	bb := builds.bins[b]
	if bb == nil {
		bb = &built{}
		builds.bins[b] = bb
	}
	builds.Unlock()
	bb.once.Do(func() { bb.path, bb.err = build(b) })
	if bb.err != nil {
		t.Fatal(bb.err)
	}
	return bb.path
}

func build(b Build) (string, error) {
	builds.Lock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "umbra-test-bin-")
		if err != nil {
			builds.Unlock()
			return "", err
		}
		builds.dir = dir
	}
	out := filepath.Join(builds.dir, fmt.Sprintf("umbra-%d", len(builds.bins)))
	builds.Unlock()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	args := []string{"build", "-o", out}
	if b.Race {
		args = append(args, "-race")
	}
	if b.Version != "" {
		args = append(args, "-ldflags", "-X main.version="+b.Version)
	}
	cmd := exec.Command("go", append(args, "./cmd/umbra")...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/umbra: %w\n%s", err, msg)
	}
	return out, nil
}

// Main runs the tests and then removes the binaries Umbra built; a
// suite's TestMain calls it.
func Main(m *testing.M) {
	code := m.Run()
	builds.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.Unlock()
	os.Exit(code)
}

// Run runs bin to completion in a new temp dir, bounded by Wait.Timeout,
// and returns its stdout, stderr and exit code.
func Run(t testing.TB, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", filepath.Base(bin), args, err)
	}
	return o.String(), e.String(), code
}

// Proc is a running process whose output (stdout and stderr interleaved)
// is collected line by line.
type Proc struct {
	Cmd  *exec.Cmd
	done chan error

	mu    sync.Mutex
	lines []string
	next  int // WaitLine's cursor
}

// StartProc starts bin in a new temp dir. Cleanup kills it if it still
// runs and, if the test failed, prints the tail of its output.
func StartProc(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &Proc{Cmd: cmd, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.collect(pr)
	go func() {
		err := cmd.Wait()
		pw.Close()
		p.done <- err
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s output (last lines):\n%s", filepath.Base(bin), Tail(p.Output(), 40))
		}
	})
	return p
}

func (p *Proc) collect(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

// Output is everything the process wrote so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// WaitLine waits up to timeout for an output line after the previous
// match that matches re and returns its submatches.
func (p *Proc) WaitLine(t testing.TB, timeout time.Duration, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	Poll{Timeout: timeout, Interval: 10 * time.Millisecond}.Until(t, "an output line matching "+re.String(), func() (bool, string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		for ; p.next < len(p.lines); p.next++ {
			if m = re.FindStringSubmatch(p.lines[p.next]); m != nil {
				p.next++
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d lines", len(p.lines))
	})
	return m
}

// exited reports whether the process has ended.
func (p *Proc) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err // for the next caller
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and returns the exit code, failing the test if the
// process does not exit within Wait.Timeout.
func (p *Proc) Stop(t testing.TB) int {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(Wait.Timeout):
		t.Fatal("the process did not exit after SIGTERM")
		return -1
	}
}

// Kill kills the process if it still runs and waits for it.
func (p *Proc) Kill() {
	if p.exited() {
		return
	}
	_ = p.Cmd.Process.Kill()
	err := <-p.done
	p.done <- err
}
