// Command idlerss measures what an idle keep-alive client connection costs
// umbra in resident memory: it starts an upstream and `umbra serve` (a
// separate process, so the clients' own memory is not counted), opens
// -n connections that each send one request and then stay open and idle,
// and reports the growth of umbra's VmRSS (/proc/PID/status) divided by
// the connection count. Both readings follow two garbage collections
// (-gc) and the wait for the runtime to return the heap they freed to the
// system (-release), so what is counted is what the connections hold, not
// memory freed and not yet reused or returned to the system; the figure
// is split into Go heap in use, goroutine stacks and freed heap still
// kept.
//
//	go build -o /tmp/umbra ./cmd/umbra
//	go run ./bench/idlerss -umbra /tmp/umbra -n 10000
//
// It raises its open-file limit to the hard limit (umbra inherits it); the
// hard limit must exceed -n plus a few hundred. Linux only (/proc).
// Memory, not timing: the figure does not depend on the machine's load.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	umbra := flag.String("umbra", "", "umbra binary (required)")
	n := flag.Int("n", 10000, "idle keep-alive connections to open")
	settle := flag.Duration("settle", 5*time.Second, "wait before each RSS reading")
	gc := flag.Bool("gc", true, "collect garbage in umbra (admin /debug/pprof/heap?gc=1, twice) before each reading, so memory freed but not yet reused or returned is not counted")
	extra := flag.String("config", "", "YAML appended to the generated config (e.g. server limits)")
	verbose := flag.Bool("v", false, "print umbra's Go memory figures (go_memstats_*) with each reading")
	release := flag.Duration("release", 60*time.Second, "after the collections, wait up to this long for the runtime to return the heap freed by the collections to the system (0: do not wait)")
	profile := flag.String("heapprofile", "", "save umbra's heap profile with the connections open to this file")
	flag.Parse()
	if *umbra == "" {
		log.Fatal("-umbra is required")
	}
	if err := raiseFileLimit(*n + 512); err != nil {
		log.Fatal(err)
	}
	upstream := startUpstream()
	addr, admin := freeAddr(), freeAddr()
	dir, err := os.MkdirTemp("", "idlerss")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := fmt.Sprintf(`listen: %s
admin: {listen: %s}
data_dir: %s
log: {level: warn, access: false}
server: {idle_timeout: 10m}
backends:
  up: {endpoints: ["http://%s"]}
routes:
  - {name: all, backend: up}
%s`, addr, admin, filepath.Join(dir, "data"), upstream, *extra)
	cfgPath := filepath.Join(dir, "umbra.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(*umbra, "serve", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	waitReady(addr)

	// Warm up: the first connections pay for pools, caches and code pages.
	warm := openIdle(addr, 200)
	closeAll(warm)
	reading := func() (int64, map[string]float64) {
		time.Sleep(*settle)
		if *gc {
			collect(admin)
			collect(admin)
			time.Sleep(*settle) // the scavenger returns freed pages
			waitReleased(admin, *release, *verbose)
		}
		m := goMemory(admin)
		if *verbose {
			for _, k := range []string{"go_goroutines", "go_memstats_stack_inuse_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes"} {
				fmt.Fprintf(os.Stderr, "%s %.0f\n", k, m[k])
			}
		}
		return rss(cmd.Process.Pid), m
	}
	before, mBefore := reading()

	conns := openIdle(addr, *n)
	after, mAfter := reading()
	if *profile != "" {
		saveHeapProfile(admin, *profile)
	}
	alive := checkAlive(conns, 100)
	closeAll(conns)

	per := float64(after-before) / float64(*n)
	fmt.Printf("umbra VmRSS: %d KiB before, %d KiB with %d idle keep-alive connections\n", before>>10, after>>10, *n)
	fmt.Printf("per idle connection: %.0f bytes (%.1f KiB); %d of 100 sampled connections still served a request\n",
		per, per/1024, alive)
	perConn := func(k string) float64 { return (mAfter[k] - mBefore[k]) / float64(*n) }
	fmt.Printf("of which, per connection: Go heap in use %.0f B, goroutine stacks %.0f B, freed heap not yet returned to the system %.0f B\n",
		perConn("go_memstats_heap_inuse_bytes"), perConn("go_memstats_stack_inuse_bytes"), perConn("unreturned"))
}

// waitReleased waits, up to limit, until the Go runtime has returned to
// the system the heap freed by the collections (the scavenger does it in
// the background, in steps, over tens of seconds): the figure is meant to
// count what the idle connections hold, not memory freed after the burst
// of their first requests (each connection holds 8 KiB of buffers for a
// second after a request) and not yet returned. It stops once less than
// 1 MiB is left.
func waitReleased(admin string, limit time.Duration, verbose bool) {
	for deadline := time.Now().Add(limit); ; time.Sleep(time.Second) {
		left := goMemory(admin)["unreturned"]
		if verbose {
			fmt.Fprintf(os.Stderr, "freed heap not yet returned: %.0f KiB\n", left/1024)
		}
		if left < 1<<20 || time.Now().After(deadline) {
			return
		}
	}
}

// goMemory reads umbra's Go memory figures (go_memstats_* and
// go_goroutines) from its metrics; "unreturned" is the heap freed but
// not yet returned to the system (heap idle minus heap released).
func goMemory(admin string) map[string]float64 {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !(strings.HasPrefix(name, "go_memstats_") || name == "go_goroutines") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			m[name] = v
		}
	}
	m["unreturned"] = m["go_memstats_heap_idle_bytes"] - m["go_memstats_heap_released_bytes"]
	return m
}

// saveHeapProfile writes umbra's heap profile to path.
func saveHeapProfile(admin, path string) {
	resp, err := http.Get("http://" + admin + "/debug/pprof/heap")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

// collect makes umbra run a garbage collection.
func collect(admin string) {
	resp, err := http.Get("http://" + admin + "/debug/pprof/heap?gc=1")
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// raiseFileLimit sets the soft open-file limit to the hard one.
func raiseFileLimit(need int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur < uint64(need) {
		return fmt.Errorf("open-file hard limit %d < %d: raise it (ulimit -Hn) or lower -n", l.Cur, need)
	}
	return nil
}

// startUpstream serves a small JSON answer; it returns its address.
func startUpstream() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	return ln.Addr().String()
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(addr string) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Fatal("umbra did not answer 200 within 15s")
}

// idleConn is a client connection that has had one answer.
type idleConn struct {
	nc net.Conn
	br *bufio.Reader
}

// exchange sends one GET and reads its whole answer.
func (c *idleConn) exchange() error {
	if _, err := io.WriteString(c.nc, "GET /idle HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != 200 {
		err = errors.New(resp.Status)
	}
	return err
}

// openIdle opens n connections, 64 at a time, each with one exchange.
func openIdle(addr string, n int) []*idleConn {
	conns := make([]*idleConn, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range next {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					log.Fatalf("connection %d: %v", i, err)
				}
				c := &idleConn{nc: nc, br: bufio.NewReader(nc)}
				if err := c.exchange(); err != nil {
					log.Fatalf("connection %d: %v", i, err)
				}
				conns[i] = c
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return conns
}

// checkAlive sends one more request on up to k of the connections.
func checkAlive(conns []*idleConn, k int) int {
	ok := 0
	for i := 0; i < k && i < len(conns); i++ {
		if conns[i*len(conns)/k].exchange() == nil {
			ok++
		}
	}
	return ok
}

func closeAll(conns []*idleConn) {
	for _, c := range conns {
		c.nc.Close()
	}
}

// rss is the process's VmRSS in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				log.Fatal(err)
			}
			return kb << 10
		}
	}
	log.Fatal("no VmRSS")
	return 0
}
