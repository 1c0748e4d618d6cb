package egress

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/umbragw/umbra/internal/h1server"
)

// The listener benchmarks measure a call through the egress listener as
// a service makes it: a real socket into umbra's plain HTTP/1.x server,
// the sandbox, and a real socket to the third party. The client and the
// third party are raw sockets that read and write canned bytes, so that
// allocs/op are umbra's own (an httptest upstream would add net/http's
// server allocations to every call).
//
//	GOMAXPROCS=1 go test -run - -bench 'EgressListener' -benchmem -count 10 ./internal/egress/

// cannedUpstream answers every request with the same JSON answer. It
// reads each request's head and Content-Length body without allocating
// per request.
func cannedUpstream(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	body := `{"id":"ch_live","status":"succeeded","amount":1999,"card":{"number":"4242424242424242"}}`
	answer := []byte("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nDate: Sun, 06 Dec 2026 05:00:00 GMT\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				br := bufio.NewReader(c)
				for {
					if _, err := readMessage(br); err != nil {
						return
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// readMessage reads one HTTP/1.1 message (a head and a Content-Length
// body) and returns its status code for an answer, 0 for a request.
func readMessage(br *bufio.Reader) (int, error) {
	length, status := 0, 0
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if first {
			first = false
			if bytes.HasPrefix(line, []byte("HTTP/1.1 ")) && len(line) >= 12 {
				status, _ = strconv.Atoi(string(line[9:12]))
			}
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
	_, err := br.Discard(length)
	return status, err
}

// egressListener serves s on a real loopback listener with umbra's plain
// HTTP/1.x server, as the gateway does.
func egressListener(tb testing.TB, s *Sandbox) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &h1server.Server{Handler: s, BaseContext: context.Background(), Log: discard}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// callClient is a service's keep-alive connection to the egress listener.
type callClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialCall(tb testing.TB, addr string) *callClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &callClient{c: c, br: bufio.NewReader(c)}
}

// do writes one canned call and reads its answer's status.
func (cc *callClient) do(req []byte) (int, error) {
	if _, err := cc.c.Write(req); err != nil {
		return 0, err
	}
	return readMessage(cc.br)
}

// chargeCall is a service's charge call with the given traceparent.
func chargeCall(traceparent string) []byte {
	return []byte("POST /provider/v1/charges HTTP/1.1\r\nHost: egress\r\nUser-Agent: checkout/1\r\n" +
		"Content-Type: application/json\r\nAuthorization: Bearer sk_live_secret\r\nTraceparent: " + traceparent + "\r\n" +
		"Content-Length: " + strconv.Itoa(len(chargeBody)) + "\r\n\r\n" + chargeBody)
}

// BenchmarkEgressListenerLive: a live request's charge call through the
// egress listener, forwarded to the third party and recorded (redaction
// of a JSON field configured). Each iteration registers a live request
// (BeginLive, as the main listener does for every request), makes its
// call and ends it. The recorder (redaction, store writes) is held back
// while the timer runs: the figures are the call's path. See
// BenchmarkEgressListenerLiveAndRecorder for both.
func BenchmarkEgressListenerLive(b *testing.B) { benchListenerLive(b, false) }

// BenchmarkEgressListenerLiveAndRecorder: as BenchmarkEgressListenerLive,
// with the recorder's work for those calls (redaction) inside the timer.
func BenchmarkEgressListenerLiveAndRecorder(b *testing.B) { benchListenerLive(b, true) }

func benchListenerLive(b *testing.B, recorder bool) {
	s := newSandbox(b, cannedUpstream(b), "  record: {redact: {json: [\"$.card.number\"]}}\n")
	holdBackground(s)
	cc := dialCall(b, egressListener(b, s))
	// One incoming request and one call buffer, reused: the loop's own
	// allocations stay out of the figures. The traceparent BeginLive
	// gives the request is copied into the call in place.
	r := &http.Request{Method: "POST", URL: &url.URL{Path: "/checkout"}, Host: "shop", Header: http.Header{}}
	const blank = "00-00000000000000000000000000000000-0000000000000000-01"
	req := chargeCall(blank)
	at := bytes.Index(req, []byte(blank))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		delete(r.Header, "Traceparent")
		l := s.BeginLive(r, "r", false, true)
		copy(req[at:], r.Header.Get("Traceparent"))
		if code, err := cc.do(req); err != nil || code != 201 {
			b.Fatalf("live call: %d %v", code, err)
		}
		l.End()
	}
	if !recorder {
		b.StopTimer()
	}
	s.rec.flush(false)
}

// holdBackground stops s's sweeper and recorder; the benchmark runs the
// recorder itself. Close still works.
func holdBackground(s *Sandbox) {
	close(s.stop)
	s.wg.Wait()
	s.stop = make(chan struct{})
}

// BenchmarkEgressListenerUnknown: a call of unknown origin forwarded
// without recording (bench/egress.sh's umbra-egress row, with a body).
func BenchmarkEgressListenerUnknown(b *testing.B) {
	s := newSandbox(b, cannedUpstream(b), "")
	cc := dialCall(b, egressListener(b, s))
	req := chargeCall("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if code, err := cc.do(req); err != nil || code != 201 {
			b.Fatalf("call: %d %v", code, err)
		}
	}
}
