package h1server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/h1server"
)

// hijackResult is what an upgrading handler saw.
type hijackResult struct {
	buffered  int   // input already buffered when Hijack returned
	writeErr  error // Write after Hijack
	hijackErr error // a second Hijack
}

// echoUpgrade hijacks the connection, answers 101 and then echoes each
// line with an "echo: " prefix until "bye". Before echoing it waits for
// release, if not nil.
func echoUpgrade(results chan<- hijackResult, release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer conn.Close()
		var res hijackResult
		res.buffered = brw.Reader.Buffered()
		_, res.writeErr = w.Write([]byte("x"))
		_, _, res.hijackErr = http.NewResponseController(w).Hijack()
		w.WriteHeader(http.StatusTeapot) // ignored: the client must see the 101 first
		results <- res
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		if brw.Flush() != nil {
			return
		}
		if release != nil && !handlerWait(release) {
			return
		}
		for {
			line, err := brw.ReadString('\n')
			if err != nil || line == "bye\n" {
				return
			}
			brw.WriteString("echo: " + line)
			if brw.Flush() != nil {
				return
			}
		}
	}
}

// upgrade sends an upgrade request and extra, in one write, and reads the
// 101.
func upgrade(t *testing.T, c *rawConn, extra string) {
	t.Helper()
	c.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n" + extra)
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, http.StatusSwitchingProtocols)
	wantHeader(t, resp.Header, "Upgrade", "echo")
}

// echo sends a line on an upgraded connection and wants it echoed.
func (c *rawConn) echo(line string) {
	c.t.Helper()
	c.send(line + "\n")
	c.wantLine("echo: " + line)
}

// wantLine reads one line and wants it to be want.
func (c *rawConn) wantLine(want string) {
	c.t.Helper()
	got, err := c.br.ReadString('\n')
	if err != nil || got != want+"\n" {
		c.t.Fatalf("read %q, %v; want %q", got, err, want+"\n")
	}
}

// TestHijack proves that a handler can take over the connection for an
// upgraded protocol: bytes the client sent right behind the request are
// in the returned reader, the ResponseWriter refuses writes
// (http.ErrHijacked) and a second Hijack, and the protocol then runs over
// the raw connection, with no limit left from the server's IdleTimeout.
func TestHijack(t *testing.T) {
	const idle = 100 * time.Millisecond
	results := make(chan hijackResult, 1)
	ts := start(t, &h1server.Server{Handler: echoUpgrade(results, nil), IdleTimeout: idle})
	c := dial(t, ts)
	upgrade(t, c, "early\n")
	res := recv(t, results, "hijack")
	if res.buffered != len("early\n") {
		t.Fatalf("%d bytes buffered at Hijack, want %d", res.buffered, len("early\n"))
	}
	if !errors.Is(res.writeErr, http.ErrHijacked) || !errors.Is(res.hijackErr, http.ErrHijacked) {
		t.Fatalf("after Hijack: Write %v, Hijack %v; want http.ErrHijacked", res.writeErr, res.hijackErr)
	}
	c.wantLine("echo: early")
	time.Sleep(3 * idle) // past the idle limit of the request wait
	c.echo("later")
	c.send("bye\n")
	c.expectClosed()
}

// TestHijackNotWaitedFor proves that Shutdown neither waits for nor
// closes a hijacked connection whose handler still runs, and Close does
// not close it either, as with net/http.
func TestHijackNotWaitedFor(t *testing.T) {
	results := make(chan hijackResult, 1)
	release := make(chan struct{})
	defer close(release)
	ts := serve(t, echoUpgrade(results, release))
	c := dial(t, ts)
	upgrade(t, c, "")
	recv(t, results, "hijack")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a hijacked connection: %v", err)
	}
	if err := ts.wait(); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	ts.Close()
	release <- struct{}{}
	c.echo("still here")
	c.send("bye\n")
	c.expectClosed()
}

// TestHijackByteReadByWatch proves that a byte the client-hang-up watch
// read before the handler hijacked the connection is not lost: it is in
// the returned reader's buffer, so a hijacker that takes what is buffered
// and then reads the net.Conn (as WebSocket libraries do) gets every byte.
func TestHijackByteReadByWatch(t *testing.T) {
	watching := make(chan struct{})
	sent := make(chan struct{})
	got := make(chan string, 1)
	ts := start(t, &h1server.Server{WatchAfter: -1, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(got)
		if !waitCond(func() bool { return h1server.WatchOn(w) }) {
			return
		}
		close(watching)
		if !handlerWait(sent) || !waitCond(func() bool { return h1server.WatchHasByte(w) }) {
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(timeout))
		buf := make([]byte, brw.Reader.Buffered())
		io.ReadFull(brw.Reader, buf)
		rest, _ := bufio.NewReader(conn).ReadString('!')
		got <- string(buf) + rest
	})})
	c := dial(t, ts)
	c.send("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: raw\r\nConnection: Upgrade\r\n\r\n")
	recv(t, watching, "the watch")
	c.send("ping!")
	close(sent)
	if s := recv(t, got, "the hijacker's read"); s != "ping!" {
		t.Fatalf("hijacker read %q, want %q", s, "ping!")
	}
}

// TestHijackAfterResponseStarted proves that Hijack fails once the
// response header was sent, and that the response then ends normally and
// the connection is kept.
func TestHijackAfterResponseStarted(t *testing.T) {
	errs := make(chan error, 1)
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/next" {
			io.WriteString(w, "next")
			return
		}
		io.WriteString(w, "started ")
		w.(http.Flusher).Flush()
		_, _, err := http.NewResponseController(w).Hijack()
		errs <- err
		io.WriteString(w, "done")
	})
	c := dial(t, ts)
	resp, body := c.roundTrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "started done")
	if err := recv(t, errs, "Hijack"); err == nil {
		t.Fatal("Hijack after the response started succeeded")
	}
	resp, body = c.roundTrip("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	wantStatus(t, resp, 200)
	wantBody(t, body, "next")
}
