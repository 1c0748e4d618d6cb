package egresstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// ---- the stand-in payment provider ----

// provider is a payment provider that counts every request it receives.
type provider struct {
	*httptest.Server
	delay   atomic.Int64 // nanoseconds to wait before answering
	mu      sync.Mutex
	charges map[string]int // by checkout id + "/" + kind
	gets    map[string]int // by charge id
	fraud   map[string]int // by checkout id
	bodies  []map[string]any
	total   atomic.Int64
}

func newProvider(t *testing.T) *provider {
	p := &provider{charges: map[string]int{}, gets: map[string]int{}, fraud: map[string]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *provider) serve(w http.ResponseWriter, r *http.Request) {
	p.total.Add(1)
	if d := p.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	_ = json.Unmarshal(body, &in)
	checkout, _ := in["checkout_id"].(string)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/charges":
		kind, _ := in["kind"].(string)
		id := fmt.Sprintf("ch_%016x", rand.Uint64())
		p.mu.Lock()
		p.charges[checkout+"/"+kind]++
		p.bodies = append(p.bodies, in)
		p.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": id, "checkout_id": checkout, "kind": kind, "amount": in["amount"], "status": "succeeded"})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/charges/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/charges/")
		p.mu.Lock()
		p.gets[id]++
		p.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"id": id, "status": "captured"})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/fraud-check":
		p.mu.Lock()
		p.fraud[checkout]++
		p.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"risk": "low"})
	default:
		http.NotFound(w, r)
	}
}

func (p *provider) snapshot() (charges, gets, fraud map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := func(m map[string]int) map[string]int {
		out := make(map[string]int, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return cp(p.charges), cp(p.gets), cp(p.fraud)
}

// ---- checkout services ----

// checkout is a checkout service. Each checkout charges the amount and a
// fee (two calls to one endpoint) and reads the charge back; v2 also asks
// for a fraud check first and writes the currency in upper case. It passes
// traceparent and X-Umbra-Shadow on, as an OpenTelemetry-instrumented
// service does with traceparent.
type checkout struct {
	*httptest.Server
	version  string
	egress   atomic.Pointer[string] // base URL of the service on the egress listener
	client   *http.Client
	preDelay atomic.Int64                  // nanoseconds to wait before the first call
	gate     atomic.Pointer[chan struct{}] // when set, calls wait until it is closed
	served   atomic.Int64
	mu       sync.Mutex
	answers  map[string]string // checkout id -> its answer body
}

func newCheckout(t *testing.T, version string) *checkout {
	c := &checkout{version: version, answers: map[string]string{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.Close)
	return c
}

func (c *checkout) call(r *http.Request, method, path string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, *c.egress.Load()+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk_live_secret")
	for _, h := range []string{"Traceparent", "X-Umbra-Shadow"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out, nil
}

func (c *checkout) serve(w http.ResponseWriter, r *http.Request) {
	c.served.Add(1)
	var in struct {
		CheckoutID string `json:"checkout_id"`
		Amount     int    `json:"amount"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	if d := c.preDelay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if g := c.gate.Load(); g != nil {
		<-*g
	}
	currency := "usd"
	if c.version == "v2" {
		currency = "USD"
		// Advisory: a failed fraud check does not stop the checkout.
		_, _, _ = c.call(r, "POST", "/v1/fraud-check", map[string]any{"checkout_id": in.CheckoutID})
	}
	ids := map[string]string{}
	for _, kind := range []string{"charge", "fee"} {
		amount := in.Amount
		if kind == "fee" {
			amount = in.Amount/10 + 1
		}
		code, out, err := c.call(r, "POST", "/v1/charges", map[string]any{"checkout_id": in.CheckoutID, "kind": kind,
			"amount": amount, "currency": currency, "ts": time.Now().UnixNano()})
		if err != nil || code != http.StatusCreated {
			c.fail(w, in.CheckoutID, code, err)
			return
		}
		ids[kind], _ = out["id"].(string)
	}
	code, got, err := c.call(r, "GET", "/v1/charges/"+ids["charge"], nil)
	if err != nil || code != 200 {
		c.fail(w, in.CheckoutID, code, err)
		return
	}
	state, _ := got["status"].(string)
	c.answer(w, in.CheckoutID, 200, map[string]any{"checkout_id": in.CheckoutID, "charge_id": ids["charge"], "fee_id": ids["fee"], "state": state})
}

func (c *checkout) fail(w http.ResponseWriter, id string, code int, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	c.answer(w, id, http.StatusBadGateway, map[string]any{"checkout_id": id, "state": "payment_failed", "provider_status": code, "error": msg})
}

func (c *checkout) answer(w http.ResponseWriter, id string, code int, v map[string]any) {
	b, _ := json.Marshal(v)
	c.mu.Lock()
	c.answers[id] = string(b)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

func (c *checkout) answerOf(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.answers[id]
	return a, ok
}

func (c *checkout) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.answers)
}

// ---- the setup ----

type setup struct {
	gw          *testkit.Gateway
	prov        *provider
	v1, v1b, v2 *checkout
	client      *http.Client
}

// options vary the config of a setup.
type options struct {
	route  string // the route's shadow/compare/canary block, indented for a route
	egress string // extra keys of egress (indented two spaces), record block included
	svc    string // extra keys of the payments service (indented six spaces)
	// upstream overrides the provider's URL (a dead address).
	upstream string
	// service is the egress service name the checkouts call (a wrong one
	// is a misconfiguration).
	service string
	// v2Service, when set, is the name v2 calls instead.
	v2Service string
	// top is added to the config's top level (a tracing block).
	top string
}

const shadowRoute = `    shadow:
      - {backend: v2, percent: 100, unsafe: allow, queue_size: 20000, max_in_flight: 32, timeout: 30s, breaker: {failures: 1000000}}
    compare: {target: v2, secondary: v1b}
`

func start(t *testing.T, o options) *setup {
	t.Helper()
	s := &setup{prov: newProvider(t), v1: newCheckout(t, "v1"), v1b: newCheckout(t, "v1"), v2: newCheckout(t, "v2"),
		client: testkit.NewClient(t, 128, testkit.Slow.Timeout)}
	upstream := s.prov.URL
	if o.upstream != "" {
		upstream = o.upstream
	}
	if o.route == "" {
		o.route = shadowRoute
	}
	cfg := "comparison: {queue_size: 100000, workers: 2}\n" + o.top +
		testkit.Backends("v1", s.v1.URL, "v1b", s.v1b.URL, "v2", s.v2.URL) +
		"routes:\n" +
		"  - name: checkout\n" +
		"    match: {path_prefix: /checkout}\n" +
		"    backend: v1\n" + o.route +
		"egress:\n" +
		"  listen: 127.0.0.1:0\n" + o.egress +
		"  services:\n" +
		"    payments:\n" +
		"      upstream: " + strconv.Quote(upstream) + "\n" +
		"      endpoints: [\"/v1/charges/{id}\"]\n" + o.svc
	s.gw = testkit.Launch(t, "egresstest", testkit.Top{}, cfg)
	s.gw.Poll = testkit.Slow
	s.aim(o)
	return s
}

// aim points the checkouts at the gateway's egress listener.
func (s *setup) aim(o options) {
	name := "payments"
	if o.service != "" {
		name = o.service
	}
	base := "http://" + s.gw.EgressAddr() + "/" + name
	s.v1.egress.Store(&base)
	s.v1b.egress.Store(&base)
	v2base := base
	if o.v2Service != "" {
		v2base = "http://" + s.gw.EgressAddr() + "/" + o.v2Service
	}
	s.v2.egress.Store(&v2base)
}

// checkout sends one checkout through the gateway and returns the live answer.
func (s *setup) checkout(t testing.TB, id string, hdr ...string) (int, string) {
	body := `{"checkout_id":"` + id + `","amount":` + strconv.Itoa(1000+len(id)) + `}`
	r, err := testkit.Send(s.client, "POST", s.gw.URL+"/checkout", strings.NewReader(body),
		append([]string{"Content-Type", "application/json", "X-User-ID", id}, hdr...)...)
	if err != nil {
		t.Errorf("checkout %s: %v", id, err)
	}
	return r.Status, string(r.Body)
}

// run sends n checkouts with the given concurrency and returns the live
// answers by checkout id.
func (s *setup) run(t *testing.T, prefix string, n, concurrency int, hdr ...string) map[string]string {
	var mu sync.Mutex
	answers := map[string]string{}
	testkit.Parallel(n, concurrency, func(i int) {
		id := fmt.Sprintf("%s-%05d", prefix, i)
		code, body := s.checkout(t, id, hdr...)
		mu.Lock()
		answers[id] = strconv.Itoa(code) + " " + body
		mu.Unlock()
	})
	return answers
}

// movedMetrics is the non-zero egress and shadow series of a scrape, for
// failure messages.
func movedMetrics(t *testing.T, s *setup) string {
	var out []string
	for _, l := range strings.Split(testkit.Filter(s.gw.ScrapeText(t), "umbra_egress", "umbra_shadow_requests"), "\n") {
		if !strings.HasSuffix(l, " 0") && !strings.Contains(l, "_bucket") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
