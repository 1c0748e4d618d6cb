package adoption

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/umbragw/umbra/internal/config"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func usersRoutes() []*config.Route {
	return []*config.Route{
		{Name: "users", Adoption: &config.Adoption{MaxBody: 1024, Fields: []config.AdoptionField{
			{Name: "email", Path: "$.email"}, {Name: "emails", Path: "$.emails"},
		}}},
		{Name: "orders"},
		{Name: "legacy"},
	}
}

func newTracker(t *testing.T, max int) (*Tracker, []*Route, *clock, *prometheus.Registry) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	tr := New(Options{MaxCallers: max, Registerer: reg, Now: c.now})
	return tr, tr.Configure(usersRoutes()), c, reg
}

func findRoute(rep Report, name string) *RouteReport {
	for i := range rep.Routes {
		if rep.Routes[i].Route == name {
			return &rep.Routes[i]
		}
	}
	return nil
}

func callerCounts(us []CallerUsage) map[string]uint64 {
	m := map[string]uint64{}
	for _, u := range us {
		m[u.Caller] = u.Requests
	}
	return m
}

// Callers using the old field, the new one and both are told apart, per
// caller, in the report and in the metrics.
func TestFieldAdoption(t *testing.T) {
	tr, rs, clk, reg := newTracker(t, 0)
	users := rs[0]
	if max, ok := users.WantsBody(); !ok || max != 1024 {
		t.Errorf("WantsBody %d %v", max, ok)
	}
	if _, ok := rs[1].WantsBody(); ok {
		t.Error("a route without fields wants bodies")
	}
	for range 3 {
		users.Observe("/v1/users", "billing", []byte(`{"email": "a@x"}`), true) // old field only
	}
	for range 2 {
		users.Observe("/v1/users", "reports", []byte(`{"emails": ["a@x"]}`), true) // new field only
	}
	users.Observe("/v1/users", "crm", []byte(`{"email": "a@x", "emails": ["a@x"]}`), true) // both
	users.Observe("/v1/users/{id}", "crm", nil, false)                                     // no body
	users.Observe("/v1/users", "crm", []byte(`{"email": `), true)                          // invalid
	users.Observe("/v1/users", "crm", []byte(`{"email": "a@x", "pad": "`), false)          // truncated
	rs[1].Observe("/v1/orders", "", nil, false)                                            // unknown caller

	rep := tr.Report(time.Hour)
	u := findRoute(rep, "users")
	if u == nil || u.Requests != 9 || !u.Used {
		t.Fatalf("users report %+v", u)
	}
	if len(u.Fields) != 2 {
		t.Fatalf("fields %+v", u.Fields)
	}
	email, emails := u.Fields[0], u.Fields[1]
	if email.Name != "email" || email.Requests != 4 || fmt.Sprint(callerCounts(email.Callers)) != "map[billing:3 crm:1]" {
		t.Errorf("email: %+v", email)
	}
	if emails.Name != "emails" || emails.Requests != 3 || fmt.Sprint(callerCounts(emails.Callers)) != "map[crm:1 reports:2]" {
		t.Errorf("emails: %+v", emails)
	}
	if email.Callers[0].Caller != "billing" {
		t.Errorf("callers not sorted by requests: %+v", email.Callers)
	}
	if u.BodiesSkipped[SkipInvalid] != 1 || u.BodiesSkipped[SkipTooLarge] != 1 {
		t.Errorf("skipped %v", u.BodiesSkipped)
	}
	if len(u.Endpoints) != 2 || u.Endpoints[0].Endpoint != "/v1/users" || u.Endpoints[0].Requests != 8 ||
		fmt.Sprint(callerCounts(u.Endpoints[0].Callers)) != "map[billing:3 crm:3 reports:2]" {
		t.Errorf("endpoints %+v", u.Endpoints)
	}
	if o := findRoute(rep, "orders"); o.Endpoints[0].Callers[0].Caller != Unknown {
		t.Errorf("orders %+v", o)
	}
	if fmt.Sprint(rep.UnusedRoutes) != "[legacy]" {
		t.Errorf("unused routes %v", rep.UnusedRoutes)
	}

	if v := testutil.ToFloat64(tr.fields.WithLabelValues("users", "email", "billing")); v != 3 {
		t.Errorf("field metric %v", v)
	}
	if v := testutil.ToFloat64(tr.requests.WithLabelValues("users", "/v1/users", "crm")); v != 3 {
		t.Errorf("request metric %v", v)
	}
	if v := testutil.ToFloat64(tr.skipped.WithLabelValues("users", SkipTooLarge)); v != 1 {
		t.Errorf("skipped metric %v", v)
	}
	if n, err := testutil.GatherAndCount(reg, "umbra_adoption_requests_total", "umbra_adoption_field_total"); err != nil || n != 5+4 {
		t.Errorf("%d series: %v", n, err)
	}

	// Two days later only "reports" sends anything: "email" is unused in
	// a one-day window, billing's and crm's uses are out of it.
	clk.add(48 * time.Hour)
	users.Observe("/v1/users", "reports", []byte(`{"emails": []}`), true)
	rep = tr.Report(24 * time.Hour)
	u = findRoute(rep, "users")
	if u.Fields[0].Used || !u.Fields[1].Used {
		t.Errorf("window: email used %v, emails used %v", u.Fields[0].Used, u.Fields[1].Used)
	}
	for _, c := range u.Fields[1].Callers {
		if c.InWindow != (c.Caller == "reports") {
			t.Errorf("caller %s in window %v", c.Caller, c.InWindow)
		}
	}
	if fmt.Sprint(rep.UnusedRoutes) != "[orders legacy]" {
		t.Errorf("unused routes %v", rep.UnusedRoutes)
	}
	// window 0: since start
	if rep := tr.Report(0); len(rep.UnusedRoutes) != 1 || rep.Window != "since start" {
		t.Errorf("since start: %v %q", rep.UnusedRoutes, rep.Window)
	}
}

func TestCallerCap(t *testing.T) {
	tr, rs, _, _ := newTracker(t, 3)
	for i := range 10 {
		rs[1].Observe("/v1/orders", fmt.Sprintf("client-%d", i), nil, false)
		rs[1].Observe("/v1/orders", "client-0", nil, false)
	}
	rs[1].Observe("/v1/orders", "", nil, false)
	rep := tr.Report(time.Hour)
	got := callerCounts(findRoute(rep, "orders").Endpoints[0].Callers)
	want := map[string]uint64{"client-0": 11, "client-1": 1, "client-2": 1, Other: 7, Unknown: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("callers %v, want %v", got, want)
	}
	if !rep.CallersCapped || rep.MaxCallers != 3 {
		t.Errorf("capped %v max %d", rep.CallersCapped, rep.MaxCallers)
	}
	// the label set stays bounded
	if n := testutil.CollectAndCount(tr.requests); n != 5 {
		t.Errorf("%d request series", n)
	}
	// a reload raising the cap admits new callers
	tr.SetMaxCallers(4)
	rs[1].Observe("/v1/orders", "client-9", nil, false)
	if got := callerCounts(findRoute(tr.Report(time.Hour), "orders").Endpoints[0].Callers); got["client-9"] != 1 {
		t.Errorf("after raising the cap: %v", got)
	}
}

func TestEndpointCap(t *testing.T) {
	tr, rs, _, _ := newTracker(t, 0)
	for i := range maxEndpoints + 20 {
		rs[1].Observe(fmt.Sprintf("/e%d", i), "c", nil, false)
	}
	eps := findRoute(tr.Report(time.Hour), "orders").Endpoints
	if len(eps) != maxEndpoints+1 {
		t.Fatalf("%d endpoints", len(eps))
	}
	for _, e := range eps {
		if e.Endpoint == Other && e.Requests != 20 {
			t.Errorf("other endpoint %d requests", e.Requests)
		}
	}
	if v := testutil.ToFloat64(tr.requests.WithLabelValues("orders", Other, "c")); v != 20 {
		t.Errorf("other endpoint metric %v", v)
	}
}

// Reconfiguring keeps the counts of routes and fields that stay.
func TestReconfigure(t *testing.T) {
	tr, rs, _, _ := newTracker(t, 0)
	rs[0].Observe("/u", "a", []byte(`{"email": 1, "emails": 2}`), true)
	routes := usersRoutes()
	routes[0].Adoption.Fields = []config.AdoptionField{{Name: "emails", Path: "$.emails"}, {Name: "phone", Path: "$.phone"}}
	rs2 := tr.Configure(routes[:2])
	rs2[0].Observe("/u", "a", []byte(`{"phone": 1}`), true)
	rep := tr.Report(time.Hour)
	u := findRoute(rep, "users")
	if u.Requests != 2 || len(u.Fields) != 2 || u.Fields[0].Name != "emails" || u.Fields[0].Requests != 1 || u.Fields[1].Requests != 1 {
		t.Errorf("after reload %+v", u)
	}
	if findRoute(rep, "legacy") != nil {
		t.Error("removed route still reported")
	}
	// the old handle still works (requests in flight during the reload)
	rs[0].Observe("/u", "a", []byte(`{"email": 1}`), true)
}

func TestConcurrentObserve(t *testing.T) {
	tr, rs, _, _ := newTracker(t, 50)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				rs[0].Observe(fmt.Sprintf("/e%d", i%7), fmt.Sprintf("c%d", (i*w)%80), []byte(`{"email": 1}`), true)
				if i%500 == 0 {
					tr.Report(time.Hour)
				}
			}
		}()
	}
	wg.Wait()
	u := findRoute(tr.Report(time.Hour), "users")
	if u.Requests != 8000 || u.Fields[0].Requests != 8000 {
		t.Errorf("requests %d, email %d", u.Requests, u.Fields[0].Requests)
	}
	var sum uint64
	for _, e := range u.Endpoints {
		for _, c := range e.Callers {
			sum += c.Requests
		}
	}
	if sum != 8000 {
		t.Errorf("caller counts add up to %d", sum)
	}
}

func TestIdentifier(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	os.WriteFile(keys, []byte("billing k-billing\nreports k-reports\n"), 0o600)
	id, err := NewIdentifier(config.Callers{Key: "header:X-Client-ID", APIKeysFile: keys})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		headers map[string]string
		want    string
	}{
		{map[string]string{"X-API-Key": "k-billing", "X-Client-ID": "x"}, "billing"},
		{map[string]string{"Authorization": "Bearer k-reports"}, "reports"},
		{map[string]string{"X-API-Key": "unknown", "X-Client-ID": "mobile"}, "mobile"},
		{map[string]string{}, ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		if got := id.Caller(r); got != c.want {
			t.Errorf("%v: %q, want %q", c.headers, got, c.want)
		}
	}
	if id, err := NewIdentifier(config.Callers{}); id != nil || err != nil || id.Caller(httptest.NewRequest("GET", "/", nil)) != "" {
		t.Error("no callers config")
	}
	if _, err := NewIdentifier(config.Callers{APIKeysFile: filepath.Join(dir, "nope")}); err == nil {
		t.Error("missing key file")
	}
	for ct, want := range map[string]bool{"application/json": true, "Application/JSON; charset=utf-8": true, "application/vnd.api+json": true, "text/plain": false, "": false, "application/jsonx": false} {
		if IsJSON(ct) != want {
			t.Errorf("IsJSON(%q)", ct)
		}
	}
}

func TestHandler(t *testing.T) {
	tr, rs, _, _ := newTracker(t, 0)
	rs[0].Observe("/v1/users", "billing", []byte(`{"email": 1}`), true)
	h := tr.Handler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/adoption?window=168h", nil))
	var rep Report
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || w.Code != 200 || rep.Window != "168h0m0s" || len(rep.Routes) != 3 {
		t.Fatalf("%d %v %s", w.Code, err, w.Body)
	}
	if !strings.Contains(w.Body.String(), `"caller": "billing"`) {
		t.Errorf("body %s", w.Body)
	}
	for _, target := range []string{"/api/v1/adoption?window=x", "/api/v1/adoption?window=-1h"} {
		w = httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		if w.Code != 400 {
			t.Errorf("%s: %d", target, w.Code)
		}
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/adoption", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

// BenchmarkObserve: a route without field rules (no body), and one with
// rules given a 300-byte JSON body.
func BenchmarkObserve(b *testing.B) {
	tr := New(Options{Registerer: prometheus.NewRegistry()})
	rs := tr.Configure(usersRoutes())
	b.Run("no-fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rs[1].Observe("/v1/orders", "billing", nil, false)
		}
	})
	b.Run("fields", func(b *testing.B) {
		b.ReportAllocs()
		rs := tr.Configure([]*config.Route{{Name: "users", Adoption: &config.Adoption{MaxBody: 4096, Fields: []config.AdoptionField{
			{Name: "email", Path: "$.email"}, {Name: "emails", Path: "$.emails"}}}}})
		for b.Loop() {
			rs[0].Observe("/v1/users", "billing", benchBody, true)
		}
	})
}
