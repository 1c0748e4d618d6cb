package comparetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/umbragw/umbra/internal/diffs"
)

var (
	buildOnce sync.Once
	umbraBin  string
	buildErr  error
)

// umbra builds cmd/umbra once per test binary (plain build: the CLI is a
// client of the gateway under test, not the code under test for races).
func umbra(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "umbra-comparetest-")
		if err != nil {
			buildErr = err
			return
		}
		umbraBin = filepath.Join(dir, "umbra")
		cmd := exec.Command("go", "build", "-o", umbraBin, "./cmd/umbra")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build ./cmd/umbra: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return umbraBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if umbraBin != "" {
		os.RemoveAll(filepath.Dir(umbraBin))
	}
	os.Exit(code)
}

// run runs the CLI and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cmd := exec.CommandContext(ctx, umbra(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return o.String(), e.String(), 0
	case errors.As(err, &ee):
		return o.String(), e.String(), ee.ExitCode()
	}
	t.Fatalf("umbra %v: %v", args, err)
	return "", "", 0
}

// 13. `umbra diff` prints the report as a table or JSON, and says clearly
// when the admin API cannot be reached.
func TestDiffCLI(t *testing.T) {
	t.Parallel()
	umbra(t) // build while nothing else is measured
	tr := newTrio(t, item("10"), item("12"))
	g := start(t, "", tr.expand(itemsRoute))
	sendItems(t, g, 0, 4)
	g.wait(t, "items", getEP, 4)

	out, stderr, code := run(t, "diff", "--admin", g.AdminURL)
	if code != 0 {
		t.Fatalf("umbra diff: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"route items", "candidate v2", "secondary v1b", getEP, "REGRESSION $.price", "value:4"} {
		if !strings.Contains(out, want) {
			t.Errorf("umbra diff output lacks %q:\n%s", want, out)
		}
	}
	// The address may be given without a scheme.
	if out2, _, code := run(t, "diff", "--admin", strings.TrimPrefix(g.AdminURL, "http://"), "--route", "items"); code != 0 || !strings.Contains(out2, "REGRESSION $.price") {
		t.Errorf("umbra diff --admin host:port --route items: exit %d\n%s", code, out2)
	}

	out, stderr, code = run(t, "diff", "--admin", g.AdminURL, "--json")
	if code != 0 {
		t.Fatalf("umbra diff --json: exit %d\n%s", code, stderr)
	}
	var rep diffs.Report
	if !json.Valid([]byte(out)) || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("umbra diff --json printed invalid JSON:\n%s", out)
	}
	if len(rep.Routes) != 1 || rep.Routes[0].Route != "items" || len(rep.Routes[0].Endpoints) != 1 ||
		len(rep.Routes[0].Endpoints[0].Regressions) != 1 || rep.Routes[0].Endpoints[0].Regressions[0].Field != "$.price" {
		t.Errorf("umbra diff --json: %+v", rep)
	}

	// Nothing listens on a port we just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	out, stderr, code = run(t, "diff", "--admin", "http://"+dead)
	if code == 0 {
		t.Errorf("umbra diff against a dead admin address exited 0:\n%s", out)
	}
	if !strings.Contains(stderr, dead) || !strings.Contains(stderr, "is umbra running") {
		t.Errorf("umbra diff against a dead admin address: stderr %q, want the address and a hint", stderr)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("umbra diff printed a report for a dead address:\n%s", out)
	}
}
