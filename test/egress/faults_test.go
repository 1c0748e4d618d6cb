package egresstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// Faults never leak a shadow call and never change live answers: whatever
// breaks, the live checkout answers as v1 alone would, the provider sees
// each live call once, and no copy's call is forwarded.
func TestFaultsNeverLeak(t *testing.T) {
	const n = 60
	for _, tc := range []struct {
		name     string
		o        options
		prepare  func(*setup)
		live     string // the live answers' state
		provider string // the provider status a failed live checkout reports
		kinds    []string
		outcome  string // the shadow calls' outcome
	}{
		{name: "provider down", o: options{upstream: "http://" + testkit.DeadAddr(t)},
			live: "payment_failed", provider: "502", outcome: "replayed"},
		{name: "provider slow", o: options{svc: "      timeout: 150ms\n"},
			prepare: func(s *setup) { s.prov.delay.Store(int64(600 * time.Millisecond)) },
			live:    "payment_failed", provider: "504", kinds: []string{"charge"}, outcome: "replayed"},
		{name: "recording expired", o: options{egress: "  record: {ttl: 150ms}\n"},
			prepare: func(s *setup) { s.v2.preDelay.Store(int64(500 * time.Millisecond)) },
			live:    "captured", kinds: []string{"charge", "fee"}, outcome: "unmatched"},
		{name: "store full", o: options{egress: "  record: {max_bytes: 1KiB}\n"},
			live: "captured", kinds: []string{"charge", "fee"}, outcome: "unmatched"},
		{name: "egress misconfigured", o: options{v2Service: "payment"},
			live: "captured", kinds: []string{"charge", "fee"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.o)
			if tc.prepare != nil {
				tc.prepare(s)
			}
			answers := s.run(t, "f", n, 16)
			testkit.Slow.Until(t, "every copy answered", func() (bool, string) {
				return s.v2.count() == n && s.v1b.count() == n, fmt.Sprintf("v2 %d v1b %d", s.v2.count(), s.v1b.count())
			})
			// A slow provider counts a charge once it has answered it.
			testkit.Slow.Until(t, "the provider answered", func() (bool, string) {
				c, _, _ := s.prov.snapshot()
				return len(c) >= n*len(tc.kinds), fmt.Sprint(len(c))
			})
			charges, _, fraud := s.prov.snapshot()
			for id, a := range answers {
				code, body, _ := strings.Cut(a, " ")
				var live map[string]any
				json.Unmarshal([]byte(body), &live)
				if live["state"] != tc.live || live["checkout_id"] != id {
					t.Errorf("live answer to %s = %s, want state %s", id, a, tc.live)
				}
				if tc.provider != "" && fmt.Sprint(live["provider_status"]) != tc.provider {
					t.Errorf("live answer to %s = %s, want provider status %s", id, a, tc.provider)
				}
				if tc.live == "captured" && code != "200" {
					t.Errorf("live answer to %s = %s", id, a)
				}
				for _, k := range tc.kinds {
					if c := charges[id+"/"+k]; c != 1 {
						t.Errorf("provider saw %d %s charges for %s", c, k, id)
					}
				}
			}
			if got := len(charges); got != n*len(tc.kinds) {
				t.Errorf("provider saw %d charge keys, want %d", got, n*len(tc.kinds))
			}
			if len(fraud) != 0 {
				t.Errorf("v2's fraud check reached the provider")
			}
			if v := s.gw.Metric(t, "umbra_egress_shadow_leaked_total"); v != 0 {
				t.Errorf("leaked = %v", v)
			}
			if v := s.gw.Metric(t, "umbra_egress_requests_total", "role", "shadow", "outcome", "forwarded"); v != 0 {
				t.Errorf("shadow calls forwarded: %v", v)
			}
			if tc.outcome != "" {
				if v := s.gw.Metric(t, "umbra_egress_requests_total", "role", "shadow", "outcome", tc.outcome); v == 0 {
					m := movedMetrics(t, s)
					t.Errorf("no shadow call was %s:\n%s", tc.outcome, m)
				}
			}
		})
	}
}

// A canary request is live: its calls, v2's extra one included, reach the
// provider, once each, and are recorded.
func TestCanaryCallsReachProvider(t *testing.T) {
	const n = 40
	s := start(t, options{route: "    canary: {backend: v2, weight: 0, override_header: X-Umbra-Version}\n"})
	answers := s.run(t, "c", n, 8, "X-Umbra-Version", "canary")
	charges, _, fraud := s.prov.snapshot()
	for id, a := range answers {
		if !strings.HasPrefix(a, "200 ") {
			t.Errorf("canary checkout %s = %s", id, a)
		}
		if charges[id+"/charge"] != 1 || charges[id+"/fee"] != 1 || fraud[id] != 1 {
			t.Errorf("provider saw charge %d fee %d fraud %d for %s, want 1 each", charges[id+"/charge"], charges[id+"/fee"], fraud[id], id)
		}
	}
	if s.v1.served.Load() != 0 || s.v2.served.Load() != n {
		t.Errorf("v1 served %d, v2 %d; want 0 and %d", s.v1.served.Load(), s.v2.served.Load(), n)
	}
	if v := s.gw.Metric(t, "umbra_egress_requests_total", "role", "canary", "outcome", "forwarded"); v != 4*n {
		t.Errorf("canary forwarded = %v, want %d", v, 4*n)
	}
	var sim struct {
		Data struct {
			Pairs []json.RawMessage `json:"pairs"`
		} `json:"data"`
	}
	s.gw.GetJSON(t, "/api/v1/egress/payments/simulation", &sim)
	if len(sim.Data.Pairs) != 4*n {
		t.Errorf("recorded %d canary calls, want %d", len(sim.Data.Pairs), 4*n)
	}
}

// With hosts:, services use the egress listener as their plain HTTP proxy.
func TestPlainProxyHosts(t *testing.T) {
	s := start(t, options{route: "    key: \"header:X-User-ID\"\n", svc: "      hosts: [api.payments.example]\n"})
	proxyURL, _ := url.Parse("http://" + s.gw.EgressAddr())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: testkit.Slow.Timeout}
	resp, err := client.Post("http://api.payments.example/v1/charges", "application/json",
		strings.NewReader(`{"checkout_id":"p-1","kind":"charge","amount":5}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	charges, _, _ := s.prov.snapshot()
	if resp.StatusCode != http.StatusCreated || charges["p-1/charge"] != 1 {
		t.Errorf("proxied charge: %d %s; provider saw %v", resp.StatusCode, body, charges)
	}
	// A host that is no service's is refused, not forwarded anywhere.
	resp, err = client.Get("http://elsewhere.example/payments/v1/charges")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown host: %d", resp.StatusCode)
	}
}
