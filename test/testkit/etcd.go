package testkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Etcd is a real etcd server (Debian's etcd-server package, installed by
// .ci/run) on loopback ports with its data in a temp dir. It can be
// stopped and started again on the same ports and data.
type Etcd struct {
	URL  string // client URL, http://127.0.0.1:PORT
	Dir  string
	t    testing.TB
	peer string
	cmd  *exec.Cmd
	exit chan struct{}
	log  *LogBuffer
}

// EtcdBinary is the etcd server binary tests start, or "" when absent.
func EtcdBinary() string {
	if p := os.Getenv("UMBRA_TEST_ETCD"); p != "" {
		return p
	}
	for _, p := range []string{"etcd", "/usr/bin/etcd", "/usr/local/bin/etcd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// StartEtcd starts an etcd server for the test, or skips the test when no
// etcd binary is installed (CI installs one).
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	if EtcdBinary() == "" {
		if os.Getenv("UMBRA_REQUIRE_ETCD") != "" {
			t.Fatal("UMBRA_REQUIRE_ETCD is set but no etcd binary is installed (Debian: etcd-server)")
		}
		t.Skip("no etcd binary: install Debian's etcd-server (as .ci/run does) or set UMBRA_TEST_ETCD")
	}
	e := &Etcd{Dir: filepath.Join(t.TempDir(), "etcd"), t: t, log: &LogBuffer{}}
	// A port FreeAddr found free may be taken by another process before
	// etcd binds it: try fresh ports a few times.
	for attempt := 1; ; attempt++ {
		e.URL, e.peer = "http://"+FreeAddr(t), "http://"+FreeAddr(t)
		err := e.start()
		if err == nil {
			break
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		e.log = &LogBuffer{}
	}
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() {
			t.Logf("etcd log (last lines):\n%s", Tail(e.log.String(), 30))
		}
	})
	return e
}

// FreeAddr returns a loopback address with a port free at the time of the call.
func FreeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs the server (again) and waits until it answers /health.
func (e *Etcd) Start() {
	e.t.Helper()
	if err := e.start(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *Etcd) start() error {
	e.cmd = exec.Command(EtcdBinary(),
		"--name", "test", "--data-dir", e.Dir,
		"--listen-client-urls", e.URL, "--advertise-client-urls", e.URL,
		"--listen-peer-urls", e.peer, "--initial-advertise-peer-urls", e.peer,
		"--initial-cluster", "test="+e.peer,
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--logger", "zap", "--log-level", "warn")
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("starting etcd: %v", err)
	}
	e.exit = make(chan struct{})
	go func(cmd *exec.Cmd, exit chan struct{}) {
		_ = cmd.Wait()
		close(exit)
	}(e.cmd, e.exit)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(e.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-e.exit:
			return fmt.Errorf("etcd exited at start:\n%s", Tail(e.log.String(), 30))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd did not become healthy: %v\n%s", err, Tail(e.log.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the server (SIGTERM, then SIGKILL) and waits for it.
func (e *Etcd) Stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	select {
	case <-e.exit:
		return
	default:
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exit:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exit
	}
}

// Metric returns the sum of a counter of the server's /metrics over the
// series whose labels contain every given name="value" pair.
func (e *Etcd) Metric(name string, labels ...string) float64 {
	e.t.Helper()
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		e.t.Fatalf("etcd metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	sum := 0.0
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(l, fmt.Sprintf("%s=%q", labels[i], labels[i+1])) {
				match = false
			}
		}
		if !match {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
