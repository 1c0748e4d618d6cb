package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/gateway"
)

// provider is the demo's stand-in payment provider. It counts the charges
// it really receives per checkout: with v2 shadowed, each live checkout
// must be charged exactly once.
type provider struct {
	ln      net.Listener
	srv     *http.Server
	mu      sync.Mutex
	charges map[string]int // by checkout id
	calls   atomic.Int64
}

func startProvider() (*provider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &provider{ln: ln, charges: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/charges", func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		var in struct {
			Checkout string `json:"checkout_id"`
			Amount   int    `json:"amount"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		p.mu.Lock()
		p.charges[in.Checkout]++
		p.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{"id": fmt.Sprintf("ch_%012x", rand.Uint64()>>16), "amount": in.Amount, "status": "succeeded"})
	})
	mux.HandleFunc("POST /v1/risk", func(w http.ResponseWriter, _ *http.Request) {
		p.calls.Add(1)
		writeJSON(w, http.StatusOK, map[string]any{"risk": "low"})
	})
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *provider) URL() string { return "http://" + p.ln.Addr().String() }
func (p *provider) Close()      { _ = p.srv.Close() }

// charged returns how many checkouts were charged once, and more than once.
func (p *provider) charged() (once, twice int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.charges {
		if n == 1 {
			once++
		} else {
			twice++
		}
	}
	return once, twice
}

// checkout charges the order through the egress listener, passing the
// traceparent on as an OpenTelemetry-instrumented service does. v2 asks
// for a risk score first (a call v1 never makes) and writes the currency
// in upper case (a changed field); both versions stamp the charge with the
// time (noise).
func (s *service) checkout(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ID     string `json:"checkout_id"`
		Amount int    `json:"amount"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || in.ID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "want {\"checkout_id\": ..., \"amount\": ...}"})
		return
	}
	currency := "usd"
	if s.version == "v2" {
		currency = "USD"
		_, _ = s.pay(r, "/v1/risk", map[string]any{"checkout_id": in.ID})
	}
	out, err := s.pay(r, "/v1/charges", map[string]any{"checkout_id": in.ID, "amount": in.Amount, "currency": currency, "created": time.Now().UnixNano()})
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]any{"checkout_id": in.ID, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"checkout_id": in.ID, "charge": out["id"], "status": "paid"})
}

func (s *service) pay(r *http.Request, path string, body map[string]any) (map[string]any, error) {
	base := s.egress.Load()
	if base == nil {
		return nil, fmt.Errorf("no egress listener")
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, *base+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk_demo_secret")
	if tp := r.Header.Get("Traceparent"); tp != "" {
		req.Header.Set("Traceparent", tp)
	}
	resp, err := payClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("payments: %s", strings.TrimSpace(string(data)))
	}
	_ = json.Unmarshal(data, &out)
	return out, nil
}

var payClient = &http.Client{Timeout: 10 * time.Second}

// driveCheckouts sends n checkouts, 8 at a time.
func driveCheckouts(ctx context.Context, base string, n int) error {
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n) && ctx.Err() == nil; i = next.Add(1) {
				body := fmt.Sprintf(`{"checkout_id":"order-%04d","amount":%d}`, i, 1000+i)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/checkout", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("X-User-ID", fmt.Sprintf("user-%d", i%50))
				resp, err := payClient.Do(req)
				if err != nil {
					errs <- fmt.Errorf("demo checkout: %w", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// printCheckoutReport says what the provider saw while v2 was shadowed,
// and how v2's outbound calls differ from v1's.
func printCheckoutReport(ctx context.Context, w io.Writer, g *gateway.Gateway, p *provider, n int, v2 *service) {
	var rep diffs.Report
	for i := 0; i < 40 && ctx.Err() == nil; i++ {
		rep = g.Diffs().Report("checkout")
		if done := egressEndpoints(rep); len(done) == 2 && done[0].Compared >= int64(n) && done[1].Compared >= int64(n) {
			break // both endpoints (charges, risk) compared for every checkout
		}
		time.Sleep(100 * time.Millisecond)
	}
	once, twice := p.charged()
	fmt.Fprintf(w, "Checkout through the egress sandbox: %d live checkouts, shadowed 100%% to v2 (writes allowed).\n", n)
	fmt.Fprintf(w, "The payment provider received %d calls: %d checkouts charged exactly once, %d charged more than once.\n", p.calls.Load(), once, twice)
	fmt.Fprintf(w, "v2 handled %d copies; its payment calls were answered with v1's recorded answers, none forwarded.\n\n", v2.checkouts.Load())
	fmt.Fprintln(w, "How v2's outbound calls differ from v1's (noise measured against a second v1):")
	fmt.Fprintln(w)
	for _, e := range egressEndpoints(rep) {
		fmt.Fprintf(w, "  %s: %d compared, %d differ\n", e.Endpoint, e.Compared, e.Differing)
		for _, f := range e.Regressions {
			fmt.Fprintf(w, "    REGRESSION  %-12s differs in %.0f%% of calls (%.0f%% between the two v1s) %v\n", f.Field, 100*f.RawRate, 100*f.NoiseRate, f.Kinds)
		}
		for _, f := range e.Noise {
			fmt.Fprintf(w, "    noise       %-12s differs in %.0f%% of calls (%.0f%% between the two v1s)\n", f.Field, 100*f.RawRate, 100*f.NoiseRate)
		}
	}
	fmt.Fprintln(w)
}

func egressEndpoints(rep diffs.Report) []diffs.EndpointReport {
	var out []diffs.EndpointReport
	for _, r := range rep.Routes {
		for _, e := range r.Endpoints {
			if strings.HasPrefix(e.Endpoint, diffs.EgressEndpointPrefix) {
				out = append(out, e)
			}
		}
	}
	return out
}
