package h1server

import (
	"bufio"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// writeStatusLine writes "HTTP/1.1 200 OK\r\n". An HTTP/1.0 request gets
// an HTTP/1.0 answer, as from net/http.
func writeStatusLine(bw *bufio.Writer, is11 bool, code int) {
	if is11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	if code < len(statusLines) {
		bw.WriteString(statusLines[code])
		return
	}
	bw.WriteString(statusLine(code))
}

// statusLines holds "200 OK\r\n" and the like for every three-digit code
// below 600, built once: formatting them allocated on every response.
var statusLines = func() []string {
	lines := make([]string, 600)
	for code := 100; code < len(lines); code++ {
		lines[code] = statusLine(code)
	}
	return lines
}()

func statusLine(code int) string {
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	return strconv.Itoa(code) + " " + text + "\r\n"
}

// dateCache holds the Date value of the current second: formatting it for
// every response would cost more than the rest of the header.
type dateCache struct {
	unix  int64
	value []string // shared by the responses of one second; never modified
}

var cachedDate atomic.Pointer[dateCache]

// date is the current time in the HTTP date format, as a header value.
func date() []string {
	now := time.Now()
	if d := cachedDate.Load(); d != nil && d.unix == now.Unix() {
		return d.value
	}
	d := &dateCache{unix: now.Unix(), value: []string{now.UTC().Format(http.TimeFormat)}}
	cachedDate.Store(d)
	return d.value
}
