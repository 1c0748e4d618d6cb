// Command openloop is an open-loop HTTP/1.1 load generator: it sends
// requests at a fixed rate, whatever the server's speed, and measures each
// request's latency from the moment it was due, not from when a
// connection was free to send it (wrk2's correction for coordinated
// omission). A closed-loop tool at saturation (wrk) measures queueing:
// its p99 is about connections/throughput, so "latency added by a proxy"
// there is mostly its lower throughput. At a fixed rate below saturation
// the p99 is the proxy's own added time, which is what "adds at most 1 ms
// to a call's p99" means.
//
//	openloop -url http://127.0.0.1:9902/provider/v1/charges -rate 5000 -duration 20s \
//	         -conns 64 -method POST -body '{"amount":1}' -header 'Content-Type: application/json'
//
// It prints one line:
//
//	sent N rate R errors E p50 A p90 B p99 C p999 D max M
//
// with latencies in milliseconds. Plain HTTP only; answers must carry a
// Content-Length (bench/upstream's and umbra's do). Standard library only.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	target := flag.String("url", "", "http://host:port/path")
	rate := flag.Int("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send (after the warm-up)")
	warmup := flag.Duration("warmup", 2*time.Second, "sending at the rate before measuring")
	conns := flag.Int("conns", 64, "keep-alive connections (enough for rate x latency)")
	method := flag.String("method", "GET", "request method")
	body := flag.String("body", "", "request body")
	var hdrs headerList
	flag.Var(&hdrs, "header", "a request header 'Name: value' (repeatable)")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Host == "" || *rate <= 0 || *conns <= 0 {
		fmt.Fprintln(os.Stderr, "openloop: -url must be http://host:port/path; -rate and -conns must be positive")
		os.Exit(2)
	}
	req := buildRequest(*method, u, hdrs, *body)
	res, err := run(u.Host, req, *rate, *warmup, *duration, *conns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openloop:", err)
		os.Exit(1)
	}
	fmt.Println(res)
}

func buildRequest(method string, u *url.URL, hdrs []string, body string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, u.RequestURI(), u.Host)
	for _, h := range hdrs {
		b.WriteString(h + "\r\n")
	}
	if body != "" || method == "POST" || method == "PUT" || method == "PATCH" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return b.Bytes()
}

// result is one run's figures.
type result struct {
	sent, errors int
	elapsed      time.Duration
	lat          []time.Duration // measured requests only, sorted
}

func (r result) String() string {
	q := func(p float64) float64 {
		if len(r.lat) == 0 {
			return 0
		}
		i := min(int(p*float64(len(r.lat))), len(r.lat)-1)
		return float64(r.lat[i]) / 1e6
	}
	rate := float64(len(r.lat)) / r.elapsed.Seconds()
	return fmt.Sprintf("sent %d rate %.0f errors %d p50 %.3f p90 %.3f p99 %.3f p999 %.3f max %.3f",
		r.sent, rate, r.errors, q(0.50), q(0.90), q(0.99), q(0.999), q(1))
}

// run sends at rate for warmup+duration. Each request is due at
// start + i/rate; a connection takes the next due request as soon as it is
// free, and the latency counts from the due time.
func run(addr string, req []byte, rate int, warmup, duration time.Duration, nconns int) (result, error) {
	total := int((warmup + duration).Seconds() * float64(rate))
	skip := int(warmup.Seconds() * float64(rate))
	due := make(chan slot, total)
	lat := make([]time.Duration, total)
	var mu sync.Mutex
	var res result
	var wg sync.WaitGroup
	var dialErr error
	for range nconns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			dialErr = err
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker(c, req, due, func(i int, d time.Duration, ok bool) {
				mu.Lock()
				defer mu.Unlock()
				if !ok {
					res.errors++
					return
				}
				lat[i] = d
			})
		}()
	}
	if dialErr != nil {
		close(due)
		wg.Wait()
		return res, dialErr
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		due <- slot{i, at}
	}
	close(due)
	wg.Wait()
	res.sent = total
	res.elapsed = time.Since(start.Add(warmup))
	for i := skip; i < total; i++ {
		if lat[i] > 0 {
			res.lat = append(res.lat, lat[i])
		}
	}
	slices.Sort(res.lat)
	return res, nil
}

// slot is a request's number and due time.
type slot struct {
	i  int
	at time.Time
}

func worker(c net.Conn, req []byte, due <-chan slot, done func(i int, d time.Duration, ok bool)) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	for s := range due {
		_, err := c.Write(req)
		if err == nil {
			err = readAnswer(br)
		}
		if err != nil {
			done(s.i, 0, false)
			// The connection is gone: leave the rest to the others.
			return
		}
		done(s.i, time.Since(s.at), true)
	}
}

// readAnswer reads one answer (a head and a Content-Length body); a
// status other than 2xx is an error.
func readAnswer(br *bufio.Reader) error {
	length, first, status := 0, true, 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			first = false
			if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
				return errors.New("not an HTTP answer")
			}
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		if len(line) <= 2 {
			break
		}
		const cl = "content-length:"
		if len(line) > len(cl) && bytes.EqualFold(line[:len(cl)], []byte(cl)) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(line[len(cl):])))
		}
	}
	if _, err := br.Discard(length); err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("status %d", status)
	}
	return nil
}
