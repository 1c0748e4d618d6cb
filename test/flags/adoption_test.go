package flagstest

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/adoption"
	"github.com/umbragw/umbra/test/testkit"
)

const adoptionConfig = backendsYAML + `callers: {key: "header:X-Client-ID"}
routes:
  - name: users
    match: {path_prefix: /v1/users}
    backend: v1
    adoption:
      max_body: 1KiB
      fields:
        - {name: email, path: "$.email"}
        - {name: emails, path: "$.emails"}
  - name: orders
    match: {path: "/v1/orders/{id}"}
    backend: v1
  - name: legacy
    match: {path_prefix: /v0}
    backend: v1
  - {name: rest, backend: v2}
`

// chunked hides a body's length, so it is sent chunked.
type chunked struct{ io.Reader }

// Three callers, named by X-Client-ID, send the deprecated field only, the
// new one only, and both: the adoption report shows per endpoint who
// called how often and when, per field who sends it (so each caller is
// classified old, new or both), which bodies were skipped and which routes
// nobody used within the window; the metrics count the same.
func TestAdoptionByCallerAndField(t *testing.T) {
	ups := upstreams(t)
	e := start(t, adoptionConfig, "", ups)
	send := func(method, path, caller, contentType string, body io.Reader) {
		t.Helper()
		hdr := []string{}
		if caller != "" {
			hdr = append(hdr, "X-Client-ID", caller)
		}
		if contentType != "" {
			hdr = append(hdr, "Content-Type", contentType)
		}
		r := testkit.Do(t, e.C, method, e.URL+path, body, hdr...)
		if r.Status != 200 {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
		if body != nil && method != "GET" && testkit.Decode[testkit.Echo](t, r.Body).Body == "" {
			t.Fatalf("%s %s: the backend got no body", method, path)
		}
	}
	js := "application/json"
	post := func(caller, body string) { send("POST", "/v1/users", caller, js, strings.NewReader(body)) }
	began := time.Now()

	// old-app: the deprecated field only (null counts: the path leads to a
	// value), and one body that is not JSON.
	post("old-app", `{"email": "a@example.com", "name": "A"}`)
	post("old-app", `{"email": "b@example.com"}`)
	post("old-app", `{"email": null}`)
	post("old-app", `{"email": `)
	// new-app: the new field only, once in a chunked PUT of a sub-path.
	post("new-app", `{"emails": ["a@example.com"]}`)
	send("PUT", "/v1/users/7", "new-app", "application/merge-patch+json", chunked{strings.NewReader(`{"emails": []}`)})
	send("GET", "/v1/orders/1", "new-app", "", nil)
	send("GET", "/v1/orders/2", "new-app", "", nil)
	send("GET", "/", "new-app", "", nil)
	// both-app: both fields, one body that is not JSON by its type (not
	// inspected) and one over max_body (skipped).
	for range 3 {
		post("both-app", `{"email": "c@example.com", "emails": ["c@example.com"]}`)
	}
	send("POST", "/v1/users", "both-app", "text/plain", strings.NewReader(`{"email": "c@example.com"}`))
	post("both-app", `{"emails": ["c@example.com"], "pad": "`+strings.Repeat("x", 2048)+`"}`)
	// A request without a caller name.
	send("GET", "/v1/users", "", "", nil)
	end := time.Now()

	rep := adoptionReport(t, e, "168h")
	if rep.Window != "168h0m0s" || !slices.Equal(rep.UnusedRoutes, []string{"legacy"}) {
		t.Errorf("window %q, unused routes %v, want [legacy]", rep.Window, rep.UnusedRoutes)
	}
	users := routeReport(t, rep, "users")
	if users.Requests != 12 || !users.Used || users.LastSeen == nil {
		t.Errorf("users: %d requests, used %v, last seen %v", users.Requests, users.Used, users.LastSeen)
	}
	if len(users.Endpoints) != 1 || users.Endpoints[0].Endpoint != "/v1/users*" || users.Endpoints[0].Requests != 12 {
		t.Fatalf("users endpoints: %+v", users.Endpoints)
	}
	checkCallers(t, "users /v1/users*", users.Endpoints[0].Callers, map[string]uint64{"both-app": 5, "old-app": 4, "new-app": 2, "unknown": 1}, began, end)
	orders := routeReport(t, rep, "orders")
	if len(orders.Endpoints) != 1 || orders.Endpoints[0].Endpoint != "/v1/orders/{id}" {
		t.Fatalf("orders endpoints: %+v", orders.Endpoints)
	}
	checkCallers(t, "orders", orders.Endpoints[0].Callers, map[string]uint64{"new-app": 2}, began, end)
	if legacy := routeReport(t, rep, "legacy"); legacy.Used || legacy.Requests != 0 || len(legacy.Endpoints) != 0 {
		t.Errorf("legacy: %+v", legacy)
	}

	fields := map[string]adoption.FieldReport{}
	for _, f := range users.Fields {
		fields[f.Name] = f
	}
	if f := fields["email"]; f.Path != "$.email" || f.Requests != 6 || !f.Used {
		t.Errorf("field email: %+v", f)
	}
	if f := fields["emails"]; f.Path != "$.emails" || f.Requests != 5 || !f.Used {
		t.Errorf("field emails: %+v", f)
	}
	checkCallers(t, "field email", fields["email"].Callers, map[string]uint64{"old-app": 3, "both-app": 3}, began, end)
	checkCallers(t, "field emails", fields["emails"].Callers, map[string]uint64{"new-app": 2, "both-app": 3}, began, end)
	// Who still needs the deprecated field, who moved, who sends both.
	use := map[string]string{}
	for _, f := range []string{"email", "emails"} {
		for _, c := range fields[f].Callers {
			use[c.Caller] += f + ";"
		}
	}
	want := map[string]string{"old-app": "email;", "new-app": "emails;", "both-app": "email;emails;"}
	for caller, w := range want {
		if use[caller] != w {
			t.Errorf("%s uses %q, want %q", caller, use[caller], w)
		}
	}
	if users.BodiesSkipped[adoption.SkipTooLarge] != 1 || users.BodiesSkipped[adoption.SkipInvalid] != 1 {
		t.Errorf("bodies skipped: %v, want one too large and one invalid", users.BodiesSkipped)
	}

	m := testkit.Scrape(t, e.C, e.AdminURL)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"umbra_adoption_requests_total", testkit.Labels("route", "users", "endpoint", "/v1/users*", "caller", "old-app"), 4},
		{"umbra_adoption_requests_total", testkit.Labels("route", "users", "endpoint", "/v1/users*", "caller", "both-app"), 5},
		{"umbra_adoption_requests_total", testkit.Labels("route", "users", "endpoint", "/v1/users*", "caller", "unknown"), 1},
		{"umbra_adoption_requests_total", testkit.Labels("route", "orders", "endpoint", "/v1/orders/{id}", "caller", "new-app"), 2},
		{"umbra_adoption_requests_total", testkit.Labels("route", "rest", "endpoint", "*", "caller", "new-app"), 1},
		{"umbra_adoption_field_total", testkit.Labels("route", "users", "field", "email", "caller", "old-app"), 3},
		{"umbra_adoption_field_total", testkit.Labels("route", "users", "field", "email", "caller", "both-app"), 3},
		{"umbra_adoption_field_total", testkit.Labels("route", "users", "field", "emails", "caller", "new-app"), 2},
		{"umbra_adoption_field_total", testkit.Labels("route", "users", "field", "emails", "caller", "both-app"), 3},
		{"umbra_adoption_field_total", testkit.Labels("route", "users", "field", "emails", "caller", "old-app"), 0},
		{"umbra_adoption_bodies_skipped_total", testkit.Labels("route", "users", "reason", "too_large"), 1},
		{"umbra_adoption_bodies_skipped_total", testkit.Labels("route", "users", "reason", "invalid_json"), 1},
	} {
		if got, _ := m.Sum(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got, _ := m.Sum("umbra_adoption_requests_total", nil); got != 15 {
		t.Errorf("umbra_adoption_requests_total sums to %v, want 15", got)
	}

	// A window that ends before the calls above: only what happened since
	// counts as used.
	time.Sleep(time.Until(end.Add(700 * time.Millisecond)))
	post("new-app", `{"emails": ["d@example.com"]}`)
	rep = adoptionReport(t, e, "500ms")
	users = routeReport(t, rep, "users")
	if !users.Used || !slices.Equal(rep.UnusedRoutes, []string{"orders", "legacy", "rest"}) {
		t.Errorf("500ms window: users used %v, unused routes %v", users.Used, rep.UnusedRoutes)
	}
	for _, c := range users.Endpoints[0].Callers {
		if c.InWindow != (c.Caller == "new-app") {
			t.Errorf("500ms window: %+v", c)
		}
	}
	for _, f := range users.Fields {
		if f.Used != (f.Name == "emails") {
			t.Errorf("500ms window: field %s used %v", f.Name, f.Used)
		}
	}
	if r := testkit.Do(t, e.C, "GET", e.AdminURL+"/api/v1/adoption?window=soon", nil); r.Status != http.StatusBadRequest {
		t.Errorf("bad window: %d", r.Status)
	}
	// This config has no flags: the flags admin endpoint says so.
	// max_body is 1 KiB: a body of exactly 1 KiB is inspected, one byte
	// more is skipped, never half-read.
	fit := `{"emails": ["e@example.com"], "pad": "`
	fit += strings.Repeat("x", 1024-len(fit)-2) + `"}`
	post("edge-app", fit)
	post("edge-app", fit[:len(fit)-1]+` }`)
	users = routeReport(t, adoptionReport(t, e, "0"), "users")
	for _, f := range users.Fields {
		if f.Name == "emails" && f.Callers[len(f.Callers)-1].Caller != "edge-app" {
			t.Errorf("a body of exactly max_body was not inspected: %+v", f.Callers)
		}
	}
	if users.BodiesSkipped[adoption.SkipTooLarge] != 2 {
		t.Errorf("bodies skipped: %v, want the one over max_body by a byte counted", users.BodiesSkipped)
	}

	r := testkit.Do(t, e.C, "GET", e.AdminURL+"/api/v1/flags", nil)
	if msg := testkit.Decode[map[string]string](t, r.Body); r.Status != http.StatusNotFound || msg["error"] != "not_found" || msg["message"] != "no flags.file is configured" {
		t.Errorf("GET /api/v1/flags without flags: %d %s", r.Status, r.Body)
	}
}

func adoptionReport(t *testing.T, e *env, window string) adoption.Report {
	t.Helper()
	r := testkit.Do(t, e.C, "GET", e.AdminURL+"/api/v1/adoption?window="+window, nil)
	if r.Status != 200 {
		t.Fatalf("GET /api/v1/adoption: %d %s", r.Status, r.Body)
	}
	return testkit.Decode[adoption.Report](t, r.Body)
}

func routeReport(t *testing.T, rep adoption.Report, name string) adoption.RouteReport {
	t.Helper()
	for _, r := range rep.Routes {
		if r.Route == name {
			return r
		}
	}
	t.Fatalf("no route %q in the adoption report", name)
	return adoption.RouteReport{}
}

// checkCallers compares callers with counts, busiest first, each last
// seen between from and to and within the window.
func checkCallers(t *testing.T, what string, got []adoption.CallerUsage, want map[string]uint64, from, to time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: callers %+v, want %v", what, got, want)
		return
	}
	for i, c := range got {
		if want[c.Caller] != c.Requests || !c.InWindow || c.LastSeen.Before(from.Add(-time.Millisecond)) || c.LastSeen.After(to.Add(time.Millisecond)) {
			t.Errorf("%s: %+v, want %d requests seen between %v and %v", what, c, want[c.Caller], from, to)
		}
		if i > 0 && got[i-1].Requests < c.Requests {
			t.Errorf("%s: callers not busiest first: %+v", what, got)
		}
	}
}
