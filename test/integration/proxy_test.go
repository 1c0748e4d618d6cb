package integration

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// TestHopByHopHeaders sends, on a raw connection, a request carrying every
// hop-by-hop header (and one named by Connection) to a raw upstream that
// records the exact bytes it receives and answers with hop-by-hop headers
// of its own.
func TestHopByHopHeaders(t *testing.T) {
	t.Parallel()
	// A request with a body goes through httputil.ReverseProxy, one
	// without through umbra's direct path: both must apply the same rules.
	for _, tc := range []struct {
		name, method, extra, body, want string
	}{
		{"with body", "POST", "Upgrade: websocket\r\nTransfer-Encoding: chunked\r\n",
			"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
		{"without body", "GET", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testHopByHop(t, tc.method, tc.extra, tc.body, tc.want)
		})
	}
}

func testHopByHop(t *testing.T, method, extra, reqBody, wantBody string) {
	type seen struct {
		head, body string
		err        error
	}
	got := make(chan seen, 1)
	up := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		head, err := readHead(br)
		if err != nil {
			got <- seen{err: err}
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(head), br)))
		if err != nil {
			got <- seen{head: head, err: err}
			return
		}
		body, err := io.ReadAll(req.Body)
		got <- seen{head: head, body: string(body), err: err}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
			"Content-Type: text/plain\r\n"+
			"Content-Length: 2\r\n"+
			"Connection: X-Bar\r\n"+
			"X-Bar: secret\r\n"+
			"Keep-Alive: timeout=5\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Proxy-Authenticate: Basic\r\n"+
			"Upgrade: foo\r\n"+
			"X-End: ok\r\n"+
			"\r\nok")
	})
	g := startGW(t, base+fmt.Sprintf(`
backends:
  raw: {endpoints: [%q]}
routes:
  - {name: hop, backend: raw}
`, up))

	c := dial(t, g.Addr())
	io.WriteString(c, method+" /hop HTTP/1.1\r\n"+
		"Host: app.test\r\n"+
		"Connection: keep-alive, X-Foo\r\n"+
		"X-Foo: drop-me\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"+
		"TE: gzip, trailers\r\n"+
		"X-Keep: yes\r\n"+
		extra+
		"\r\n"+
		reqBody)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	s := testkit.Recv(t, got, "the upstream request")
	if s.err != nil {
		t.Fatalf("upstream: %v\n%s", s.err, s.head)
	}
	h := headLines(s.head)
	for _, name := range []string{"connection", "keep-alive", "proxy-connection", "proxy-authorization", "upgrade", "x-foo"} {
		if v, ok := h[name]; ok {
			t.Errorf("upstream received hop-by-hop header %s: %q", name, v)
		}
	}
	if v := h["te"]; !slices.Equal(v, []string{"trailers"}) {
		t.Errorf("upstream TE = %q, want only [trailers] (the one TE value a proxy forwards)", v)
	}
	if v := h["x-keep"]; !slices.Equal(v, []string{"yes"}) {
		t.Errorf("upstream X-Keep = %q, want [yes]", v)
	}
	if v, ok := h["user-agent"]; ok {
		t.Errorf("upstream got User-Agent %q the client never sent", v)
	}
	// The client's chunking is a property of its hop; upstream gets the
	// transport's own framing, exactly one of Transfer-Encoding/Content-Length.
	te, cl := h["transfer-encoding"], h["content-length"]
	if wantBody == "" {
		if te != nil || cl != nil {
			t.Errorf("bodyless request framed upstream: Transfer-Encoding %q, Content-Length %q", te, cl)
		}
	} else if !(slices.Equal(te, []string{"chunked"}) && cl == nil || te == nil && slices.Equal(cl, []string{strconv.Itoa(len(wantBody))})) {
		t.Errorf("upstream framing: Transfer-Encoding %q, Content-Length %q", te, cl)
	}
	if s.body != wantBody {
		t.Errorf("upstream body %q, want %q", s.body, wantBody)
	}

	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("client got %d %q", resp.StatusCode, body)
	}
	for _, name := range []string{"X-Bar", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Upgrade"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("client received hop-by-hop response header %s: %q", name, v)
		}
	}
	if v := resp.Header.Values("Connection"); slices.ContainsFunc(v, func(s string) bool { return strings.Contains(strings.ToLower(s), "x-bar") }) {
		t.Errorf("client received upstream's Connection header %q", v)
	}
	if resp.Header.Get("X-End") != "ok" {
		t.Errorf("end-to-end response header X-End lost: %v", resp.Header)
	}
}

// TestForwardedHeaders checks X-Forwarded-For is appended to (not replaced),
// X-Forwarded-Proto/-Host are set by the gateway whatever the client sent,
// and a client's Forwarded header is not passed on.
func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	up := testkit.NewUpstream(t, "fwd", nil)
	g := startGW(t, base+testkit.Backends("fwd", up.URL)+`
routes:
  - {name: fwd, backend: fwd}
`)
	c := newClient(t)

	e := echoOf(t, do(t, c, "GET", g.URL+"/x", nil, "Host", "shop.test",
		"X-Forwarded-For", "203.0.113.7", "X-Forwarded-For", "198.51.100.2",
		"X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.test",
		"Forwarded", "for=192.0.2.60;proto=https"))
	if got, want := strings.Join(e.Header.Values("X-Forwarded-For"), ", "), "203.0.113.7, 198.51.100.2, 127.0.0.1"; got != want {
		t.Errorf("X-Forwarded-For = %q, want %q", got, want)
	}
	if got := e.Header.Values("X-Forwarded-Proto"); !slices.Equal(got, []string{"http"}) {
		t.Errorf("X-Forwarded-Proto = %q, want [http]", got)
	}
	if got := e.Header.Values("X-Forwarded-Host"); !slices.Equal(got, []string{"shop.test"}) {
		t.Errorf("X-Forwarded-Host = %q, want [shop.test]", got)
	}
	if got := e.Header.Values("Forwarded"); got != nil {
		t.Errorf("client's Forwarded header passed on: %q", got)
	}

	e = echoOf(t, do(t, c, "GET", g.URL+"/x", nil, "Host", "shop.test"))
	if got := e.Header.Values("X-Forwarded-For"); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("X-Forwarded-For without a prior one = %q, want [127.0.0.1]", got)
	}
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestRequestID checks X-Request-Id is propagated, generated when absent
// or unusable, echoed to the client, and the same id appears in error
// bodies.
func TestRequestID(t *testing.T) {
	t.Parallel()
	up := testkit.NewStreamUpstream(t, "rid", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Request-Id", r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Request-Id", "upstream-made-this-up")
	})
	g := startGW(t, base+fmt.Sprintf(`
backends:
  rid: {endpoints: [%q]}
  dead: {endpoints: ["http://%s"]}
routes:
  - {name: rid, match: {path_prefix: /ok}, backend: rid}
  - {name: dead, match: {path_prefix: /dead}, backend: dead}
`, up.URL, testkit.DeadAddr(t)))
	c := newClient(t)

	t.Run("propagated", func(t *testing.T) {
		r := do(t, c, "GET", g.URL+"/ok", nil, "X-Request-Id", "req-abc-123")
		if got := r.Header.Get("X-Seen-Request-Id"); got != "req-abc-123" {
			t.Errorf("upstream saw X-Request-Id %q, want req-abc-123", got)
		}
		if got := r.Header.Values("X-Request-Id"); !slices.Equal(got, []string{"req-abc-123"}) {
			t.Errorf("response X-Request-Id = %q, want [req-abc-123]", got)
		}
	})
	t.Run("generated", func(t *testing.T) {
		r := do(t, c, "GET", g.URL+"/ok", nil)
		seen := r.Header.Get("X-Seen-Request-Id")
		if !hex32.MatchString(seen) {
			t.Fatalf("upstream saw X-Request-Id %q, want 32 lower-case hex digits", seen)
		}
		if got := r.Header.Values("X-Request-Id"); !slices.Equal(got, []string{seen}) {
			t.Errorf("response X-Request-Id = %q, want [%s]", got, seen)
		}
		if again := do(t, c, "GET", g.URL+"/ok", nil).Header.Get("X-Request-Id"); again == seen {
			t.Errorf("two requests got the same generated id %s", seen)
		}
	})
	t.Run("unusable id replaced", func(t *testing.T) {
		r := do(t, c, "GET", g.URL+"/ok", nil, "X-Request-Id", strings.Repeat("x", 200))
		if seen := r.Header.Get("X-Seen-Request-Id"); !hex32.MatchString(seen) {
			t.Errorf("200-byte id: upstream saw %q, want a generated id", seen)
		}
	})
	t.Run("in error bodies", func(t *testing.T) {
		for _, tc := range []struct {
			path   string
			status int
		}{{"/nowhere", 404}, {"/dead", 502}} {
			r := do(t, c, "GET", g.URL+tc.path, nil, "X-Request-Id", "err-id-42")
			e := wantJSONError(t, r, tc.status, "")
			if e.RequestID != "err-id-42" {
				t.Errorf("%s: request_id %q, want err-id-42", tc.path, e.RequestID)
			}
			r = do(t, c, "GET", g.URL+tc.path, nil)
			if e := wantJSONError(t, r, tc.status, ""); !hex32.MatchString(e.RequestID) {
				t.Errorf("%s: generated request_id %q is not 32 hex", tc.path, e.RequestID)
			}
		}
	})
	t.Run("echoed on error responses", func(t *testing.T) {
		for _, path := range []string{"/nowhere", "/dead"} {
			r := do(t, c, "GET", g.URL+path, nil, "X-Request-Id", "err-id-43")
			if got := r.Header.Get("X-Request-Id"); got != "err-id-43" {
				t.Errorf("%s (%d): response X-Request-Id = %q, want err-id-43 (it is echoed on proxied answers but not on the gateway's own errors)", path, r.Status, got)
			}
		}
	})
}

// TestHostHeader checks the three host policies: keep (default), endpoint
// and a literal.
func TestHostHeader(t *testing.T) {
	t.Parallel()
	up := testkit.NewUpstream(t, "host", nil)
	g := startGW(t, base+fmt.Sprintf(`
backends:
  keep: {endpoints: [%[1]q]}
  endpoint: {endpoints: [%[1]q], host: endpoint}
  literal: {endpoints: [%[1]q], host: internal.example}
routes:
  - {name: keep, match: {path_prefix: /keep}, backend: keep}
  - {name: endpoint, match: {path_prefix: /endpoint}, backend: endpoint}
  - {name: literal, match: {path_prefix: /literal}, backend: literal}
`, up.URL))
	c := newClient(t)
	upHost := strings.TrimPrefix(up.URL, "http://")
	for path, want := range map[string]string{"/keep": "app.test:8443", "/endpoint": upHost, "/literal": "internal.example"} {
		e := echoOf(t, do(t, c, "GET", g.URL+path, nil, "Host", "app.test:8443"))
		if e.Host != want {
			t.Errorf("%s: upstream Host %q, want %q", path, e.Host, want)
		}
		if got := e.Header.Get("X-Forwarded-Host"); got != "app.test:8443" {
			t.Errorf("%s: X-Forwarded-Host %q, want the client's app.test:8443", path, got)
		}
	}
}

// TestRequestBodyStreamed proves the gateway does not buffer uploads: the
// upstream receives the first part of the body while the client has not
// written the second yet.
func TestRequestBodyStreamed(t *testing.T) {
	t.Parallel()
	firstSeen := make(chan string, 1)
	up := testkit.NewStreamUpstream(t, "sink", func(w http.ResponseWriter, r *http.Request) {
		first := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			firstSeen <- "error: " + err.Error()
			return
		}
		firstSeen <- string(first)
		rest, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s|%s", first, rest)
	})
	g := startGW(t, base+testkit.Backends("sink", up.URL)+`
routes:
  - {name: upload, backend: sink}
`)

	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	type res struct {
		r   result
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := try(newClient(t), "POST", g.URL+"/upload", pr)
		done <- res{r, err}
	}()
	if _, err := pw.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if got := testkit.Recv(t, firstSeen, "upstream to receive the first chunk before the client sends the second"); got != "first" {
		t.Fatalf("upstream read %q", got)
	}
	if _, err := pw.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := testkit.Recv(t, done, "the response")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.r.Status != 200 || r.r.Body != "first|second" {
		t.Fatalf("got %d %q", r.r.Status, r.r.Body)
	}
}

// TestResponseStreamed proves a chunked response is flushed as it comes:
// the client reads the first part while the upstream holds back the second.
func TestResponseStreamed(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	up := testkit.NewStreamUpstream(t, "stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part1")
		http.NewResponseController(w).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "part2")
	})
	g := startGW(t, base+testkit.Backends("stream", up.URL)+`
routes:
  - {name: stream, backend: stream}
`)
	req, _ := http.NewRequestWithContext(ctxTimeout(t), "GET", g.URL+"/s", nil)
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) || resp.ContentLength != -1 {
		t.Errorf("TransferEncoding %q ContentLength %d, want chunked with unknown length", resp.TransferEncoding, resp.ContentLength)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part1" {
		t.Fatalf("first part: %q %v (was it flushed?)", buf, err)
	}
	close(next)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "part2" {
		t.Fatalf("second part: %q %v", rest, err)
	}
}

// TestServerSentEvents: each event reaches the client before the upstream
// produces the next (the upstream waits for the client's acknowledgement).
func TestServerSentEvents(t *testing.T) {
	t.Parallel()
	ack := make(chan struct{})
	up := testkit.NewStreamUpstream(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			rc.Flush()
			select {
			case <-ack:
			case <-r.Context().Done():
				return
			}
		}
	})
	g := startGW(t, base+testkit.Backends("sse", up.URL)+`
routes:
  - {name: events, backend: sse}
`)
	req, _ := http.NewRequestWithContext(ctxTimeout(t), "GET", g.URL+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	for i := 1; i <= 3; i++ {
		var ev []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("event %d: %v after %q", i, err, ev)
			}
			if line == "\n" {
				break
			}
			ev = append(ev, strings.TrimSuffix(line, "\n"))
		}
		if want := []string{fmt.Sprintf("id: %d", i), fmt.Sprintf("data: event %d", i)}; !slices.Equal(ev, want) {
			t.Fatalf("event %d = %q, want %q", i, ev, want)
		}
		ack <- struct{}{}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the events: %q %v", rest, err)
	}
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsWrite writes one final frame; a non-nil mask masks it (client side).
func wsWrite(w io.Writer, op byte, payload []byte, mask []byte) error {
	hdr := []byte{0x80 | op}
	var mbit byte
	if mask != nil {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, mbit|byte(n))
	case n < 1<<16:
		hdr = append(hdr, mbit|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, mbit|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	data := slices.Clone(payload)
	if mask != nil {
		hdr = append(hdr, mask...)
		for i := range data {
			data[i] ^= mask[i%4]
		}
	}
	_, err := w.Write(append(hdr, data...))
	return err
}

// wsRead reads one frame and unmasks it.
func wsRead(r io.Reader) (op byte, payload []byte, masked bool, err error) {
	var h [2]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	op, masked = h[0]&0x0f, h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var mask [4]byte
	if masked {
		if _, err = io.ReadFull(r, mask[:]); err != nil {
			return
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return
}

// TestWebSocket runs an RFC 6455 handshake and a frame echo through the
// gateway, with raw connections on both sides.
func TestWebSocket(t *testing.T) {
	t.Parallel()
	upErr := make(chan error, 1)
	up := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		fail := func(err error) { upErr <- err }
		head, err := readHead(br)
		if err != nil {
			fail(err)
			return
		}
		h := headLines(head)
		if !slices.Equal(h["upgrade"], []string{"websocket"}) || len(h["connection"]) == 0 ||
			!strings.Contains(strings.ToLower(h["connection"][0]), "upgrade") || len(h["sec-websocket-key"]) != 1 {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			fail(fmt.Errorf("upstream got no websocket upgrade:\n%s", head))
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			wsAccept(h["sec-websocket-key"][0]))
		for {
			op, payload, masked, err := wsRead(br)
			if err != nil {
				fail(fmt.Errorf("upstream reading frame: %w", err))
				return
			}
			if !masked {
				fail(errors.New("client frame arrived unmasked"))
				return
			}
			if op == 0x8 { // close: answer and stop
				wsWrite(c, 0x8, payload, nil)
				fail(nil)
				return
			}
			wsWrite(c, op, append([]byte("echo: "), payload...), nil)
		}
	})
	g := startGW(t, base+fmt.Sprintf(`
backends:
  ws: {endpoints: [%q]}
routes:
  - {name: ws, match: {path: /ws}, backend: ws}
`, up))

	c := dial(t, g.Addr())
	const key = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 section 1.3
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\nX-Request-Id: ws-1\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("handshake: %d %s", resp.StatusCode, b)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("Sec-WebSocket-Accept %q", got)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Errorf("Upgrade %q", resp.Header.Get("Upgrade"))
	}
	mask := []byte{1, 2, 3, 4}
	for _, msg := range []string{"hello umbra", strings.Repeat("long ", 40)} {
		if err := wsWrite(c, 0x1, []byte(msg), mask); err != nil {
			t.Fatal(err)
		}
		op, payload, masked, err := wsRead(br)
		if err != nil {
			t.Fatal(err)
		}
		if op != 0x1 || masked || string(payload) != "echo: "+msg {
			t.Fatalf("echo frame: op %d masked %v payload %q", op, masked, payload)
		}
	}
	if err := wsWrite(c, 0x8, []byte{0x03, 0xe8}, mask); err != nil {
		t.Fatal(err)
	}
	if op, _, _, err := wsRead(br); err != nil || op != 0x8 {
		t.Fatalf("close frame: op %d %v", op, err)
	}
	if err := testkit.Recv(t, upErr, "the upstream to finish"); err != nil {
		t.Fatal(err)
	}
	// The proxied exchange ends when both sides have closed (ReverseProxy
	// waits for both copy directions), and only then is it counted.
	c.Close()
	g.WaitMetric(t, "umbra_requests_total", testkit.Labels("route", "ws", "code", "101"), 1)
}

// TestTrailers checks response trailers, announced and not, reach the client.
func TestTrailers(t *testing.T) {
	t.Parallel()
	up := testkit.NewStreamUpstream(t, "tr", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		io.WriteString(w, "payload")
		w.Header().Set("X-Checksum", "c0ffee")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	g := startGW(t, base+testkit.Backends("tr", up.URL)+`
routes:
  - {name: tr, backend: tr}
`)
	// GET takes the direct path, POST with a body ReverseProxy.
	for _, body := range []io.Reader{nil, strings.NewReader("x")} {
		method := map[bool]string{true: "GET", false: "POST"}[body == nil]
		req, _ := http.NewRequest(method, g.URL+"/t", body)
		resp, err := newClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != "payload" {
			t.Fatalf("%s: body %q %v", method, got, err)
		}
		if got := resp.Trailer.Get("X-Checksum"); got != "c0ffee" {
			t.Errorf("%s: announced trailer X-Checksum = %q, want c0ffee (trailers %v)", method, got, resp.Trailer)
		}
		if got := resp.Trailer.Get("X-Late"); got != "late" {
			t.Errorf("%s: unannounced trailer X-Late = %q, want late (trailers %v)", method, got, resp.Trailer)
		}
	}
}

// TestEarlyHints checks a 103 Early Hints answer reaches the client before
// the final response, with its own headers only, on both forwarding paths.
func TestEarlyHints(t *testing.T) {
	t.Parallel()
	up := testkit.NewStreamUpstream(t, "hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "final")
	})
	g := startGW(t, base+testkit.Backends("hints", up.URL)+`
routes:
  - {name: hints, backend: hints}
`)
	for _, method := range []string{"GET", "POST"} {
		c := dial(t, g.Addr())
		req := method + " /h HTTP/1.1\r\nHost: app.test\r\n"
		if method == "POST" {
			req += "Content-Length: 1\r\n\r\nx"
		} else {
			req += "\r\n"
		}
		io.WriteString(c, req)
		br := bufio.NewReader(c)
		hints, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hints.StatusCode != http.StatusEarlyHints || hints.Header.Get("Link") != "</style.css>; rel=preload" {
			t.Fatalf("%s: first answer %d %v, want 103 with the Link header", method, hints.StatusCode, hints.Header)
		}
		final, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(final.Body)
		final.Body.Close()
		if final.StatusCode != 200 || string(body) != "final" {
			t.Fatalf("%s: final answer %d %q", method, final.StatusCode, body)
		}
		if v := final.Header.Get("Link"); v != "" {
			t.Errorf("%s: final answer inherited the 103's Link header %q", method, v)
		}
	}
}

// TestUpstreamErrors checks the gateway's own answers when the upstream
// exchange fails: 502 on a refused connection, 504 on a backend timeout,
// each a JSON body with "error" and "request_id".
func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	slow := testkit.NewStreamUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(testkit.Wait.Timeout):
		}
	})
	g := startGW(t, base+fmt.Sprintf(`
backends:
  dead: {endpoints: ["http://%s"]}
  slow: {endpoints: [%q], timeout: 150ms}
routes:
  - {name: dead, match: {path_prefix: /dead}, backend: dead}
  - {name: slow, match: {path_prefix: /slow}, backend: slow}
`, testkit.DeadAddr(t), slow.URL))
	c := newClient(t)

	t.Run("502 connection refused", func(t *testing.T) {
		t.Parallel()
		r := do(t, c, "GET", g.URL+"/dead", nil)
		wantJSONError(t, r, http.StatusBadGateway, "upstream_connect_failed")
	})
	t.Run("503 no endpoint", func(t *testing.T) {
		t.Skip("unreachable: backend.pick never returns nil on a first attempt (all-ejected backends use panic mode) " +
			"and a retry with no endpoint left returns the dial error (502), so ErrNoEndpoint never reaches the proxy")
	})
	t.Run("504 backend timeout", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		r := do(t, c, "GET", g.URL+"/slow", nil)
		wantJSONError(t, r, http.StatusGatewayTimeout, "upstream_timeout")
		if d := time.Since(start); d > testkit.Wait.Timeout/2 {
			t.Errorf("504 after %v; the backend timeout is 150ms", d)
		}
	})
}

// TestClientGoneCancelsUpstream: when the client goes away, the upstream
// request's context is cancelled, and the request is counted as 499.
func TestClientGoneCancelsUpstream(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	up := testkit.NewStreamUpstream(t, "hang", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(testkit.Wait.Timeout):
		}
	})
	g := startGW(t, base+testkit.Backends("hang", up.URL)+`
routes:
  - {name: hang, backend: hang}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", g.URL+"/hang", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := newClient(t).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	testkit.Recv(t, started, "the upstream to get the request")
	cancel()
	if err := testkit.Recv(t, errc, "the client to give up"); !errors.Is(err, context.Canceled) {
		t.Errorf("client error %v, want context.Canceled", err)
	}
	testkit.Recv(t, cancelled, "the upstream request's context to be cancelled")
	g.WaitMetric(t, "umbra_requests_total", testkit.Labels("route", "hang", "code", "499"), 1)
	g.WaitMetric(t, "umbra_upstream_errors_total", testkit.Labels("route", "hang", "kind", "canceled"), 1)
	g.WaitMetric(t, "umbra_requests_in_flight", testkit.Labels("route", "hang"), 0)
}

// TestNoRoute: a request no route matches gets a 404 JSON error.
func TestNoRoute(t *testing.T) {
	t.Parallel()
	up := testkit.NewUpstream(t, "api", nil)
	g := startGW(t, base+testkit.Backends("api", up.URL)+`
routes:
  - {name: api, match: {path_prefix: /api/}, backend: api}
`)
	c := newClient(t)
	wantJSONError(t, do(t, c, "GET", g.URL+"/nothing/here", nil), http.StatusNotFound, "no_route")
	r := do(t, c, "HEAD", g.URL+"/nothing/here", nil)
	if r.Status != http.StatusNotFound || r.Body != "" {
		t.Errorf("HEAD: %d %q", r.Status, r.Body)
	}
	if up.Hits.Load() != 0 {
		t.Errorf("upstream got %d requests", up.Hits.Load())
	}
	g.WaitMetric(t, "umbra_unmatched_requests_total", testkit.Labels("method", "GET"), 1)
	g.WaitMetric(t, "umbra_unmatched_requests_total", testkit.Labels("method", "HEAD"), 1)
}

// TestHTTP2OverTLS: with tls configured, clients that offer h2 get HTTP/2,
// others HTTP/1.1, and upstream sees X-Forwarded-Proto: https.
func TestHTTP2OverTLS(t *testing.T) {
	t.Parallel()
	up := testkit.NewUpstream(t, "h2", nil)
	cert, key := testkit.SelfSigned(t, t.TempDir())
	g := startGW(t, fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
tls: {cert_file: %q, key_file: %q}
backends:
  h2: {endpoints: [%q]}
routes:
  - {name: h2, backend: h2}
`, cert, key, up.URL))
	if !strings.HasPrefix(g.URL, "https://") {
		t.Fatalf("URL %s", g.URL)
	}
	h2 := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	h1 := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}} // non-nil empty: HTTP/2 off
	t.Cleanup(h2.CloseIdleConnections)
	t.Cleanup(h1.CloseIdleConnections)
	for _, tc := range []struct {
		name  string
		tr    *http.Transport
		major int
	}{{"h2", h2, 2}, {"http/1.1", h1, 1}} {
		c := &http.Client{Transport: tc.tr, Timeout: testkit.Wait.Timeout}
		resp, err := c.Post(g.URL+"/p", "text/plain", strings.NewReader("over tls"))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != tc.major {
			t.Errorf("%s: ProtoMajor %d (%s), want %d", tc.name, resp.ProtoMajor, resp.Proto, tc.major)
		}
		e := echoOf(t, result{Status: resp.StatusCode, Header: resp.Header, Body: string(body)})
		if e.Body != "over tls" || e.Header.Get("X-Forwarded-Proto") != "https" {
			t.Errorf("%s: upstream got body %q X-Forwarded-Proto %q", tc.name, e.Body, e.Header.Get("X-Forwarded-Proto"))
		}
		if !hex32.MatchString(resp.Header.Get("X-Request-Id")) {
			t.Errorf("%s: X-Request-Id %q", tc.name, resp.Header.Get("X-Request-Id"))
		}
	}
}
