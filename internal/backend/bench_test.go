package backend

import (
	"io"
	"net/http"
	"testing"

	"github.com/umbragw/umbra/internal/config"
)

func BenchmarkPick(b *testing.B) {
	eps := []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3", "http://127.0.0.1:4"}
	for _, balance := range []string{BalanceRoundRobin, BalanceLeastRequest} {
		be := newBackend(b, config.Backend{Balance: balance}, eps...)
		b.Run(balance, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				be.pick(nil)
			}
		})
		b.Run(balance+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					be.pick(nil)
				}
			})
		})
	}
}

// BenchmarkRoundTrip compares a request through the Backend with the same
// request on a bare transport with identical settings: the difference is
// the Backend's overhead (pick, host policy, health bookkeeping).
func BenchmarkRoundTrip(b *testing.B) {
	srv := echoServer(b, "a")
	be := newBackend(b, config.Backend{}, srv.URL)
	lr := newBackend(b, config.Backend{Balance: BalanceLeastRequest}, srv.URL)
	bare, _ := newTransport(be.s, 1, false, nil)
	b.Cleanup(bare.CloseIdleConnections)
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"transport", bare},
		{"backend/round_robin", be},
		{"backend/least_request", lr},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/path", nil)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := tc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
