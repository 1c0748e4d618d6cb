package h1client

import (
	"bufio"
	"errors"
	"net/http"
	"net/http/httptrace"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/umbragw/umbra/internal/headers"
)

// writeRequest writes the head of a bodyless request as Request.Write
// would, without its sorting of header fields and its per-request
// transfer-writer: HTTP gives distinct field names no order, and both
// showed in the gateway's profile. Requests it does not cover in the same
// way (a declared length, traces of written fields) go to Request.Write.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	if req.ContentLength != 0 || tracesWrites(req) {
		return req.Write(bw)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	host, err := httpguts.PunycodeHostPort(host)
	if err != nil {
		return err
	}
	if !httpguts.ValidHostHeader(host) {
		return errors.New("h1client: invalid Host header")
	}
	host = removeZone(host)
	uri := req.URL.RequestURI()
	for i := 0; i < len(uri); i++ {
		if b := uri[i]; b < ' ' || b == 0x7f {
			return errors.New("h1client: control character in the request target")
		}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	// Request.Write sends its own User-Agent unless the header has one,
	// even an empty one (which ReverseProxy sets to send none).
	if ua, ok := req.Header["User-Agent"]; !ok {
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n")
	} else if len(ua) > 0 && ua[0] != "" {
		headers.WriteField(bw, "User-Agent", ua[0])
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n") // many servers expect one
	}
	if req.Close {
		bw.WriteString("Connection: close\r\n")
	}
	headers.WriteFields(bw, req.Header, excluded)
	_, err = bw.WriteString("\r\n")
	return err
}

// excluded are the fields Request.Write writes itself, or not at all.
func excluded(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// tracesWrites: the request's httptrace wants to hear of written fields,
// which Request.Write reports.
func tracesWrites(req *http.Request) bool {
	t := httptrace.ContextClientTrace(req.Context())
	return t != nil && (t.WroteHeaderField != nil || t.WroteHeaders != nil)
}

// removeZone drops the zone from an IPv6 literal ("[fe80::1%en0]:80"),
// which means nothing to the server, as Request.Write does.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}
