// Command cpuload drives a fixed request rate at an HTTP/1.1 server and
// reports how much CPU time the server process itself spent per request
// served. It is the measurement behind bench/cpu.sh.
//
// Why CPU time and not requests/s: on the 2-core bench machine anything
// else running (a browser, a build, another benchmark) shares cores with
// the load generator and the upstream, and a requests/s figure at
// saturation moves with them by ±25%. The CPU time the server's own
// threads were on a core, divided by the requests it answered, at a fixed
// rate it can sustain, depends far less on what else runs: other work
// delays the server but is not charged to it.
//
//	cpuload -url http://127.0.0.1:18080/ -pid $(pgrep -n umbra) -rate 5000 -duration 10s
//
// The CPU time is the sum over the server's threads of the first field of
// /proc/PID/task/TID/schedstat (nanoseconds on a core, the scheduler's own
// accounting), read right before and right after the measured window.
// A thread that exits during the window takes its time with it; the
// report says how many did, and gives utime+stime from /proc/PID/stat
// (clock ticks, which include exited threads) as a cross-check.
// With -metrics, go_memstats_mallocs_total is read from the server's
// Prometheus endpoint before and after: allocations per request.
//
// The load: -conns keep-alive connections share one schedule (request k is
// due at start + k/rate); a connection takes the next due request, sleeps
// until it is due, sends it and reads the whole answer. If every
// connection is busy the request goes out late; the share of requests
// sent more than 1 ms late is reported (a server that cannot keep up
// makes the figure a saturation figure). Requests and answers are parsed
// by hand (answers need Content-Length) so the generator stays cheap on
// its shared core. Linux only (/proc).
//
// Output: one line of key=value pairs on stdout (see report), and errors
// on stderr; exit status 1 when the server failed any request.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	target := flag.String("url", "http://127.0.0.1:18080/", "URL to request (GET, HTTP/1.1, keep-alive)")
	pid := flag.Int("pid", 0, "process id of the server whose CPU time is measured (required)")
	rate := flag.Float64("rate", 5000, "requests per second (0: as fast as the connections go)")
	conns := flag.Int("conns", 16, "keep-alive connections")
	warmup := flag.Duration("warmup", 3*time.Second, "load before the measured window, not counted")
	duration := flag.Duration("duration", 10*time.Second, "measured window")
	metrics := flag.String("metrics", "", "the server's Prometheus endpoint, for allocations per request (optional)")
	core := flag.Int("core", 0, "the core the server is pinned to: other load on it is reported")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("cpuload: ")
	if *pid <= 0 || *rate < 0 || *conns <= 0 || *duration <= 0 {
		log.Fatal("-pid, -conns and -duration must be positive, -rate at least 0")
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		log.Fatalf("-url %q: want http://host:port/path", *target)
	}
	req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: umbra-cpuload\r\nAccept: */*\r\n\r\n")
	g := &generator{addr: u.Host, req: req, conns: *conns, rate: *rate}

	if *warmup > 0 {
		if _, err := g.run(*warmup); err != nil {
			log.Fatalf("warm-up: %v", err)
		}
	}
	m0, err := mallocs(*metrics)
	if err != nil {
		log.Fatal(err)
	}
	c0, err := readCPU(*pid)
	if err != nil {
		log.Fatal(err)
	}
	s0, err := readCore(*core)
	if err != nil {
		log.Fatal(err)
	}
	res, runErr := g.run(*duration)
	c1, err := readCPU(*pid)
	if err != nil {
		log.Fatal(err)
	}
	s1, err := readCore(*core)
	if err != nil {
		log.Fatal(err)
	}
	m1, err := mallocs(*metrics)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report(res, c0, c1, s0, s1, m0, m1))
	if runErr != nil {
		log.Fatal(runErr)
	}
}

// report formats one window's figures as key=value pairs.
func report(r result, c0, c1 cpuSample, s0, s1 coreSample, m0, m1 float64) string {
	ns, exited := c1.since(c0)
	ticks := c1.ticks - c0.ticks
	n := float64(max(r.ok, 1))
	secs := r.elapsed.Seconds()
	coreNs := float64(s1.busy-s0.busy) * 1e9 / float64(clockTicks)
	other := math.Max(0, coreNs-float64(ns)) / (secs * 1e9)
	kv := []string{
		fmt.Sprintf("requests=%d", r.ok),
		fmt.Sprintf("errors=%d", r.errors),
		fmt.Sprintf("secs=%.3f", secs),
		fmt.Sprintf("rate=%.1f", float64(r.ok)/secs),
		fmt.Sprintf("late_pct=%.2f", 100*float64(r.late)/n),
		fmt.Sprintf("cpu_ms=%.3f", float64(ns)/1e6),
		fmt.Sprintf("us_per_req=%.4f", float64(ns)/1e3/n),
		fmt.Sprintf("ticks_us_per_req=%.4f", float64(ticks)*1e6/float64(clockTicks)/n),
		fmt.Sprintf("threads_exited=%d", exited),
		fmt.Sprintf("server_core_pct=%.1f", 100*float64(ns)/(secs*1e9)),
		fmt.Sprintf("other_on_core_pct=%.1f", 100*other),
		fmt.Sprintf("steal_pct=%.1f", 100*float64(s1.steal-s0.steal)*1e9/float64(clockTicks)/(secs*1e9)),
		fmt.Sprintf("p50_ms=%.3f", r.quantile(0.50)),
		fmt.Sprintf("p99_ms=%.3f", r.quantile(0.99)),
	}
	if !math.IsNaN(m0) {
		kv = append(kv, fmt.Sprintf("allocs_per_req=%.2f", (m1-m0)/n))
	}
	return strings.Join(kv, " ")
}

// ---------------------------------------------------------------------------
// Load

type generator struct {
	addr  string
	req   []byte
	conns int
	rate  float64
	pool  []*conn // kept across runs: the warm-up's connections are reused
}

type result struct {
	ok, errors, late int64
	elapsed          time.Duration
	hist             *histogram
}

func (r result) quantile(q float64) float64 { return r.hist.quantile(q) }

// run sends rate*d requests on the shared schedule and waits for every
// answer.
func (g *generator) run(d time.Duration) (result, error) {
	for len(g.pool) < g.conns {
		c, err := dial(g.addr)
		if err != nil {
			return result{}, err
		}
		g.pool = append(g.pool, c)
	}
	// With no rate, each connection sends its next request as soon as the
	// answer is in, until the window ends: a saturation figure.
	total, interval := int64(math.MaxInt64), 0.0
	if g.rate > 0 {
		total, interval = int64(g.rate*d.Seconds()), float64(time.Second)/g.rate
	}
	var next, ok, failed, late atomic.Int64
	hists := make([]*histogram, g.conns)
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range g.pool {
		hists[i] = newHistogram()
		wg.Go(func() {
			for {
				k := next.Add(1) - 1
				if k >= total || g.rate == 0 && time.Since(start) >= d {
					return
				}
				due := start.Add(time.Duration(float64(k) * interval))
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				} else if wait < -time.Millisecond {
					late.Add(1)
				}
				t0 := time.Now()
				if err := c.roundTrip(g.req); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					if c.redial() != nil {
						return
					}
					continue
				}
				hists[i].add(time.Since(t0))
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	r := result{ok: ok.Load(), errors: failed.Load(), late: late.Load(), elapsed: time.Since(start), hist: newHistogram()}
	for _, h := range hists {
		r.hist.merge(h)
	}
	if firstErr != nil {
		return r, fmt.Errorf("%d requests failed, the first: %w", r.errors, firstErr)
	}
	return r, nil
}

type conn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c := &conn{addr: addr}
	return c, c.redial()
}

func (c *conn) redial() error {
	if c.c != nil {
		c.c.Close()
	}
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	c.c, c.br = nc, bufio.NewReaderSize(nc, 16<<10)
	return nil
}

// roundTrip writes the request and reads one answer: a 2xx status and a
// Content-Length body.
func (c *conn) roundTrip(req []byte) error {
	if err := c.c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := c.c.Write(req); err != nil {
		return err
	}
	return readAnswer(c.br)
}

var contentLength = []byte("content-length:")

func readAnswer(br *bufio.Reader) error {
	length := -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[9] != '2' {
				return fmt.Errorf("answer %q, want 2xx", bytes.TrimSpace(line))
			}
			continue
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > len(contentLength) && bytes.EqualFold(line[:len(contentLength)], contentLength) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(line[len(contentLength):])))
			if err != nil || n < 0 {
				return fmt.Errorf("bad Content-Length %q", bytes.TrimSpace(line))
			}
			length = n
		}
	}
	if length < 0 {
		return errors.New("answer without Content-Length (cpuload reads only those)")
	}
	_, err := br.Discard(length)
	return err
}

// histogram counts latencies in buckets 1% wide (log scale) from 1 µs.
type histogram struct{ counts []int64 }

const histBase = 1.01

func newHistogram() *histogram { return &histogram{counts: make([]int64, 2100)} }

func (h *histogram) add(d time.Duration) {
	us := max(float64(d)/1e3, 1)
	i := min(int(math.Log(us)/math.Log(histBase)), len(h.counts)-1)
	h.counts[i]++
}

func (h *histogram) merge(o *histogram) {
	for i, n := range o.counts {
		h.counts[i] += n
	}
}

// quantile returns the q-quantile in milliseconds (the bucket's upper edge).
func (h *histogram) quantile(q float64) float64 {
	var total int64
	for _, n := range h.counts {
		total += n
	}
	if total == 0 {
		return math.NaN()
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, n := range h.counts {
		seen += n
		if seen >= rank {
			return math.Pow(histBase, float64(i+1)) / 1e3
		}
	}
	return math.NaN()
}

// ---------------------------------------------------------------------------
// CPU accounting (/proc)

// clockTicks is USER_HZ, the unit of /proc/PID/stat and /proc/stat; 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuSample is one reading of a process's CPU time.
type cpuSample struct {
	threads map[string]int64 // tid -> ns on a core (schedstat)
	ticks   int64            // utime + stime of the whole process
}

func readCPU(pid int) (cpuSample, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	s := cpuSample{threads: map[string]int64{}}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, fmt.Errorf("server process %d: %w", pid, err)
	}
	// Fields after the command, which is in parentheses and may hold spaces.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("%s/stat: too few fields", dir)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return s, fmt.Errorf("%s/stat: %w", dir, err)
	}
	s.ticks = utime + stime
	tasks, err := filepath.Glob(dir + "/task/*/schedstat")
	if err != nil || len(tasks) == 0 {
		return s, fmt.Errorf("%s/task/*/schedstat: not readable (kernel without CONFIG_SCHEDSTATS?)", dir)
	}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited meanwhile
		}
		ns, err := strconv.ParseInt(string(bytes.Fields(b)[0]), 10, 64)
		if err != nil {
			return s, fmt.Errorf("%s: %w", p, err)
		}
		s.threads[filepath.Base(filepath.Dir(p))] = ns
	}
	return s, nil
}

// since returns the CPU time spent between two readings and how many
// threads of the first reading are gone (their time in between is lost).
func (s cpuSample) since(before cpuSample) (ns int64, exited int) {
	for tid, v := range s.threads {
		ns += v - before.threads[tid] // a new thread's whole time is in the window
	}
	for tid := range before.threads {
		if _, ok := s.threads[tid]; !ok {
			exited++
		}
	}
	return ns, exited
}

// coreSample is one core's busy and stolen time from /proc/stat.
type coreSample struct{ busy, steal int64 }

func readCore(core int) (coreSample, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return coreSample{}, err
	}
	prefix := fmt.Sprintf("cpu%d ", core)
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)[1:]
		if len(f) < 8 {
			break
		}
		v := make([]int64, 8)
		for i := range v {
			v[i], _ = strconv.ParseInt(f[i], 10, 64)
		}
		// user nice system idle iowait irq softirq steal
		return coreSample{busy: v[0] + v[1] + v[2] + v[5] + v[6], steal: v[7]}, nil
	}
	return coreSample{}, fmt.Errorf("/proc/stat: no line for core %d", core)
}

// mallocs reads go_memstats_mallocs_total from a Prometheus endpoint (NaN
// without one).
func mallocs(endpoint string) (float64, error) {
	if endpoint == "" {
		return math.NaN(), nil
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(endpoint)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics %s: %s %v", endpoint, resp.Status, err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "go_memstats_mallocs_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metrics %s: no go_memstats_mallocs_total", endpoint)
}
