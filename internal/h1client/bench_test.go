package h1client

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// BenchmarkReuseCheck is what taking a pooled connection costs beyond
// the pool's lock: the check that nothing unread waits on it (buffer and
// socket) when it runs on its own (a request larger than the write
// buffer); the common request gets the same peek inside sendLast.
func BenchmarkReuseCheck(b *testing.B) {
	srv := newCountingHTTPServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	p := New(srv.addr(), Options{})
	b.Cleanup(p.Close)
	c, err := p.get(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer c.nc.Close()
	b.ReportAllocs()
	for b.Loop() {
		if !c.quiet() {
			b.Fatal("an idle healthy connection failed the check")
		}
	}
}

// BenchmarkExchange is one bodyless request and its small answer on a
// pooled connection, reuse check included.
func BenchmarkExchange(b *testing.B) {
	srv := newCountingHTTPServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	p := New(srv.addr(), Options{})
	b.Cleanup(p.Close)
	req, err := http.NewRequest(http.MethodGet, "http://"+srv.addr()+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := p.Exchange(context.Background(), req, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if srv.opened.Load() != 1 {
		b.Errorf("%d connections opened, want 1", srv.opened.Load())
	}
}
