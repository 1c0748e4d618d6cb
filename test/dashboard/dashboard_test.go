// Package dashboardtest drives umbra's web dashboard in a real headless
// Chromium (chromedp), against a running gateway with real upstreams.
package dashboardtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/test/testkit"
)

// TestPagesShowRealData: every page renders what the running gateway
// holds: routes with live, canary and shadow traffic, the regressed field
// beside the noise, the rollout's step bar, flags and their evaluation,
// callers, field use and the route nobody called.
func TestPagesShowRealData(t *testing.T) {
	e := startEnv(t, envOptions{})
	ctx := browser(t)
	e.waitCanaryStep(t)
	e.send(t, 60)
	e.gw.Dashboard().Sample()
	admin := e.gw.AdminURL

	do(t, ctx, "overview", chromedp.Navigate(admin+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#route-checkout")))
	route := text(t, ctx, "#route-checkout")
	for _, want := range []string{"checkout", "shop-v1", "canary", "shop-v2", "shadow", "and secondary shop-v1-secondary", "healthy"} {
		if !strings.Contains(route, want) {
			t.Errorf("overview's checkout card lacks %q:\n%s", want, route)
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#route-checkout svg.chart path.line").length`); n < 3 {
		t.Errorf("overview's checkout charts draw %d lines, want live, canary and shadow traffic at least", n)
	}
	shadows := text(t, ctx, "#shadows")
	if !strings.Contains(shadows, "checkout → shop-v2") || !strings.Contains(shadows, "not_sampled") && !strings.Contains(shadows, "closed") {
		t.Errorf("shadow outcomes table:\n%s", shadows)
	}

	do(t, ctx, "differences", chromedp.Navigate(admin+"/ui/diffs"), chromedp.WaitVisible(chromedp.CSS("#diffs-checkout")))
	reg := text(t, ctx, "#diffs-checkout tr.regression")
	if !strings.Contains(reg, "$.total") || !strings.Contains(reg, "regression") {
		t.Errorf("the regressed field is not shown as one: %q", reg)
	}
	all := text(t, ctx, "#diffs-checkout")
	for _, want := range []string{"$.created_at", "$.request_id", "noise", "shop-v1-secondary"} {
		if !strings.Contains(all, want) {
			t.Errorf("differences lack %q", want)
		}
	}

	do(t, ctx, "rollouts", chromedp.Navigate(admin+"/ui/rollouts"), chromedp.WaitVisible(chromedp.CSS("#rollout-checkout")))
	if cur := text(t, ctx, "#rollout-checkout .step.current"); !strings.Contains(cur, "canary 10%") {
		t.Errorf("current step %q, want canary 10%%", cur)
	}
	if done := text(t, ctx, "#rollout-checkout .step.done"); !strings.Contains(done, "shadow") {
		t.Errorf("done step %q, want the shadow step", done)
	}
	if nums := text(t, ctx, "#rollout-checkout table.numbers"); !strings.Contains(nums, "canary requests") || !strings.Contains(nums, "≥ 100000") {
		t.Errorf("step numbers:\n%s", nums)
	}
	if dec := text(t, ctx, "#rollout-checkout .decisions"); !strings.Contains(dec, "start") || !strings.Contains(dec, "promote") {
		t.Errorf("decision log lacks the start and the promotion to the canary step:\n%s", dec)
	}

	do(t, ctx, "flags", chromedp.Navigate(admin+"/ui/flags"), chromedp.WaitVisible(chromedp.CSS("#flags")),
		chromedp.SetValue(chromedp.CSS("#context"), "carol\nplan=pro"), chromedp.Click(chromedp.CSS(".eval-form button")),
		chromedp.WaitVisible(chromedp.CSS("table.results")))
	if res := text(t, ctx, "table.results"); !strings.Contains(res, "new-checkout") || !strings.Contains(res, "TARGETING_MATCH") {
		t.Errorf("evaluation for carol:\n%s", res)
	}
	if !strings.Contains(eval[string](t, ctx, "location.search"), "context=carol") {
		t.Errorf("the evaluation form did not submit as a GET form")
	}
	if u := text(t, ctx, ".unused"); !strings.Contains(u, "legacy-reports") {
		t.Errorf("unused routes: %q", u)
	}
	users := text(t, ctx, "#adoption-users")
	for _, want := range []string{"email", "emails", "web", "ios"} {
		if !strings.Contains(users, want) {
			t.Errorf("adoption of users lacks %q:\n%s", want, users)
		}
	}
}

// TestRegressionSamplesOpen: the regressed field's samples link opens the
// sample pairs side by side, with the differing value marked on the
// candidate and the secondary agreeing with live there.
func TestRegressionSamplesOpen(t *testing.T) {
	e := startEnv(t, envOptions{})
	ctx := browser(t)
	e.send(t, 60)
	do(t, ctx, "differences", chromedp.Navigate(e.gw.AdminURL+"/ui/diffs"),
		chromedp.Click(chromedp.CSS("tr.regression a.samples-link")),
		chromedp.WaitVisible(chromedp.CSS("#samples .sample")))
	if h := text(t, ctx, "#samples h1"); !strings.Contains(h, "$.total") {
		t.Errorf("samples heading %q", h)
	}
	sides := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#sample-0 .side h3")).map(e => e.textContent)`)
	if strings.Join(sides, ",") != "live,candidate,secondary" {
		t.Errorf("sides %v, want live, candidate, secondary", sides)
	}
	cand := eval[string](t, ctx, `document.querySelector("#sample-0 .side.candidate mark.diff").textContent`)
	live := eval[string](t, ctx, `document.querySelector("#sample-0 .side.live mark.base").textContent`)
	if cand == "" || live == "" {
		t.Fatalf("no marked value: live %q candidate %q", live, cand)
	}
	// $.total: the candidate sends a string where live sends a number, and
	// the secondary agrees with live (the regression is no noise).
	marks := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#sample-0 .side mark")).map(m => m.className + "=" + m.textContent)`)
	var totalLive, totalCand, totalSec string
	for _, m := range marks {
		cls, v, _ := strings.Cut(m, "=")
		if strings.Contains(v, "-") { // a created_at timestamp or an id
			continue
		}
		switch cls {
		case "base":
			totalLive = v
		case "diff":
			if strings.HasPrefix(v, `"`) {
				totalCand = v
			}
		case "same":
			totalSec = v
		}
	}
	if totalLive == "" || totalCand != `"`+totalLive+`"` || totalSec != totalLive {
		t.Errorf("total marks: live %q, candidate %q, secondary %q (all marks %v)", totalLive, totalCand, totalSec, marks)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#sample-0 .side.secondary mark.noise").length`); n == 0 {
		t.Errorf("the secondary marks no noise (created_at and request_id differ on every instance)")
	}

	// Having seen the pairs, the operator marks the field as noise from
	// the samples themselves; the panel stays open and says so.
	do(t, ctx, "mark as noise from the samples", chromedp.Click(chromedp.CSS(`#samples header button.action`)),
		chromedp.WaitVisible(chromedp.CSS("dialog#confirm")))
	if msg := text(t, ctx, "#confirm-text"); !strings.Contains(msg, "$.total") {
		t.Errorf("the dialog does not name the field: %q", msg)
	}
	do(t, ctx, "confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	untilText(t, ctx, "#samples header", "marked noise")
	untilText(t, ctx, "#samples header button.action", "Unmark")
}

// TestRolloutPausedAndResumedFromThePage: the Pause and Resume buttons
// ask for confirmation, call the admin API and show the new phase.
func TestRolloutPausedAndResumedFromThePage(t *testing.T) {
	e := startEnv(t, envOptions{})
	ctx := browser(t)
	e.waitCanaryStep(t)
	do(t, ctx, "rollouts", chromedp.Navigate(e.gw.AdminURL+"/ui/rollouts"),
		chromedp.WaitVisible(chromedp.CSS(`#rollout-checkout button[data-command="pause"]`)))

	// Cancelling the confirmation changes nothing.
	do(t, ctx, "pause, cancelled", chromedp.Click(chromedp.CSS(`#rollout-checkout button[data-command="pause"]`)),
		chromedp.WaitVisible(chromedp.CSS("dialog#confirm")),
		chromedp.Click(chromedp.CSS(`dialog#confirm button[value="cancel"]`)),
		chromedp.WaitNotVisible(chromedp.CSS("dialog#confirm")))
	if phase, _ := e.rolloutPhase(t); phase != "running" {
		t.Fatalf("a cancelled pause changed the phase to %s", phase)
	}

	do(t, ctx, "pause", chromedp.Click(chromedp.CSS(`#rollout-checkout button[data-command="pause"]`)),
		chromedp.WaitVisible(chromedp.CSS("dialog#confirm")))
	if msg := text(t, ctx, "#confirm-call"); msg != "POST /api/v1/rollouts/checkout/pause" {
		t.Errorf("the dialog names the call %q", msg)
	}
	do(t, ctx, "confirm pause", chromedp.Click(chromedp.CSS("#confirm-ok")))
	untilText(t, ctx, "#rollout-checkout .phase", "paused")
	if phase, _ := e.rolloutPhase(t); phase != "paused" {
		t.Fatalf("API phase %s after pausing from the page", phase)
	}
	untilText(t, ctx, "#rollout-checkout .decisions", "paused by operator")

	do(t, ctx, "resume", chromedp.Click(chromedp.CSS(`#rollout-checkout button[data-command="resume"]`)),
		chromedp.WaitVisible(chromedp.CSS("dialog#confirm")), chromedp.Click(chromedp.CSS("#confirm-ok")))
	untilText(t, ctx, "#rollout-checkout .phase", "running")
	if phase, step := e.rolloutPhase(t); phase != "running" || step != 1 {
		t.Fatalf("API phase %s step %d after resuming, want running at step 2", phase, step+1)
	}
	untilText(t, ctx, "#rollout-checkout .decisions", "resumed by operator")
}

// TestMarkNoiseAndResetFromThePage: "Mark as noise" persists the mark
// through the admin API and the field stops being a regression; "Reset
// route" forgets the route's results.
func TestMarkNoiseAndResetFromThePage(t *testing.T) {
	e := startEnv(t, envOptions{})
	ctx := browser(t)
	e.send(t, 60)
	do(t, ctx, "differences", chromedp.Navigate(e.gw.AdminURL+"/ui/diffs"),
		chromedp.Click(chromedp.CSS("tr.regression button.action")),
		chromedp.WaitVisible(chromedp.CSS("dialog#confirm")), chromedp.Click(chromedp.CSS("#confirm-ok")))
	testkit.Slow.Until(t, "$.total marked as noise", func() (bool, string) {
		var rep diffs.Report
		e.api(t, "GET", "/api/v1/diffs/checkout", &rep)
		for _, ep := range rep.Routes[0].Endpoints {
			for _, f := range ep.Noise {
				if f.Field == "$.total" && f.MarkedNoise {
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("%+v", rep)
	})
	untilText(t, ctx, "#diffs-checkout", "marked noise")
	if n := eval[int](t, ctx, `document.querySelectorAll("#diffs-checkout tr.regression").length`); n != 0 {
		t.Errorf("%d regressions shown after marking the only one as noise", n)
	}

	do(t, ctx, "reset route", chromedp.Click(chromedp.CSS(`#diffs-checkout button[data-url="/api/v1/diffs/checkout"]`)),
		chromedp.WaitVisible(chromedp.CSS("dialog#confirm")), chromedp.Click(chromedp.CSS("#confirm-ok")))
	untilText(t, ctx, "#diffs-checkout", "Nothing compared yet")
	var rep diffs.Report
	e.api(t, "GET", "/api/v1/diffs/checkout", &rep)
	if len(rep.Routes) != 1 || len(rep.Routes[0].Endpoints) != 0 {
		t.Errorf("after reset the API still reports %+v", rep.Routes)
	}
}

// TestResetEndpointFromThePage: an endpoint's "Reset endpoint" button asks
// for confirmation and forgets that endpoint's results only: the route's
// other endpoint stays, on the page and in the API.
func TestResetEndpointFromThePage(t *testing.T) {
	e := startEnv(t, envOptions{})
	ctx := browser(t)
	e.send(t, 60)
	for i := range 5 { // a second endpoint of the checkout route
		if r, err := testkit.Send(e.client, "HEAD", e.gw.URL+"/checkout/"+strconv.Itoa(1000+i), nil); err != nil || r.Status != http.StatusOK {
			t.Fatalf("HEAD /checkout: %v %d", err, r.Status)
		}
	}
	// endpoints maps each endpoint to the exchanges it recorded (compared
	// or skipped).
	endpoints := func() map[string]int64 {
		var rep diffs.Report
		e.api(t, "GET", "/api/v1/diffs/checkout", &rep)
		out := map[string]int64{}
		for _, ep := range rep.Routes[0].Endpoints {
			out[ep.Endpoint] = ep.Compared
			for _, n := range ep.Skipped {
				out[ep.Endpoint] += n
			}
		}
		return out
	}
	// Every copy is recorded before the reset: one recorded after it
	// would bring the endpoint back.
	var get, head string
	testkit.Slow.Until(t, "the 50 GET and 5 HEAD checkouts recorded", func() (bool, string) {
		get, head = "", ""
		eps := endpoints()
		for name := range eps {
			switch {
			case strings.HasPrefix(name, "GET "):
				get = name
			case strings.HasPrefix(name, "HEAD "):
				head = name
			}
		}
		return get != "" && head != "" && eps[get] == 50 && eps[head] == 5, fmt.Sprint(eps)
	})
	button := fmt.Sprintf(`#diffs-checkout section.endpoint[data-endpoint=%q] button.reset-endpoint`, get)
	do(t, ctx, "differences", chromedp.Navigate(e.gw.AdminURL+"/ui/diffs"), chromedp.WaitVisible(chromedp.CSS(button)))

	do(t, ctx, "reset endpoint, cancelled", chromedp.Click(chromedp.CSS(button)),
		chromedp.WaitVisible(chromedp.CSS("dialog#confirm")),
		chromedp.Click(chromedp.CSS(`dialog#confirm button[value="cancel"]`)),
		chromedp.WaitNotVisible(chromedp.CSS("dialog#confirm")))
	if _, ok := endpoints()[get]; !ok {
		t.Fatalf("a cancelled reset forgot %s", get)
	}

	do(t, ctx, "reset endpoint", chromedp.Click(chromedp.CSS(button)), chromedp.WaitVisible(chromedp.CSS("dialog#confirm")))
	call := text(t, ctx, "#confirm-call")
	if u, err := url.Parse(strings.TrimPrefix(call, "DELETE ")); err != nil || !strings.HasPrefix(call, "DELETE ") ||
		u.Path != "/api/v1/diffs/checkout" || u.Query().Get("endpoint") != get {
		t.Errorf("the dialog names the call %q, want DELETE /api/v1/diffs/checkout?endpoint=%s", call, get)
	}
	if msg := text(t, ctx, "#confirm-text"); !strings.Contains(msg, get) {
		t.Errorf("the dialog does not name the endpoint: %q", msg)
	}
	do(t, ctx, "confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	testkit.Slow.Until(t, get+" gone from the page", func() (bool, string) {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, button)))
		return err == nil && n == 0, fmt.Sprint(n, err)
	})
	left := endpoints()
	if _, ok := left[get]; ok {
		t.Errorf("the API still reports %s after its reset: %v", get, left)
	}
	if left[head] == 0 {
		t.Errorf("resetting %s forgot %s too: %v", get, head, left)
	}
	if n := eval[int](t, ctx, fmt.Sprintf(`document.querySelectorAll('#diffs-checkout section.endpoint[data-endpoint=%q]').length`, head)); n != 1 {
		t.Errorf("the page lost %s", head)
	}
}

// TestLiveUpdates: an open page follows the gateway without reloading.
func TestLiveUpdates(t *testing.T) {
	e := startEnv(t, envOptions{})
	ctx := browser(t)
	e.send(t, 6)
	do(t, ctx, "overview", chromedp.Navigate(e.gw.AdminURL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#route-checkout")))
	do(t, ctx, "mark the document", chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))
	before := text(t, ctx, "#route-checkout table.roles")
	e.send(t, 300)
	testkit.Slow.Until(t, "the overview's totals to change in place", func() (bool, string) {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#route-checkout table.roles")))
		if err != nil {
			return false, err.Error()
		}
		return s != before, s
	})
	if !eval[bool](t, ctx, `window.__sameDocument === true`) {
		t.Errorf("the page reloaded instead of updating in place")
	}
	if s := text(t, ctx, "#live-status"); s != "live" {
		t.Errorf("live status %q", s)
	}
}

// TestTokenRule: with admin.token_file set, the pages and the API refuse
// requests without the token; the page asks for it, keeps it in session
// storage (never in a URL) and sends it as a header on every call.
func TestTokenRule(t *testing.T) {
	const token = "s3cret-token-for-the-dashboard"
	e := startEnv(t, envOptions{token: token})
	e.send(t, 60)
	admin := e.gw.AdminURL
	c := testkit.NewClient(t, 2, 10*time.Second)
	for _, p := range []string{"/ui/", "/ui/diffs", "/ui/rollouts", "/ui/flags"} {
		r := testkit.Do(t, c, "GET", admin+p, nil)
		if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "token-form") || strings.Contains(string(r.Body), "checkout") {
			t.Errorf("GET %s without the token: %d, want 401 with the sign-in page and no data:\n%.300s", p, r.Status, r.Body)
		}
		if r := testkit.Do(t, c, "GET", admin+p, nil, "Authorization", "Bearer "+token); r.Status != http.StatusOK {
			t.Errorf("GET %s with the token: %d", p, r.Status)
		}
	}
	for _, p := range []string{"/api/v1/diffs", "/api/v1/rollouts", "/api/v1/flags", "/api/v1/routes"} {
		if r := testkit.Do(t, c, "GET", admin+p, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", p, r.Status)
		}
	}
	if r := testkit.Do(t, c, "POST", admin+"/api/v1/rollouts/checkout/abort", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("POST abort without the token: %d, want 401", r.Status)
	}
	// The static files carry no data and load without it.
	for _, p := range []string{"/ui/static/app.js", "/ui/static/app.css"} {
		resp, err := c.Get(admin + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}

	ctx := browser(t)
	do(t, ctx, "sign-in page", chromedp.Navigate(admin+"/ui/rollouts"), chromedp.WaitVisible(chromedp.CSS("#token-form")),
		chromedp.SendKeys(chromedp.CSS("#token"), "wrong-token"), chromedp.Click(chromedp.CSS("#token-form button")),
		chromedp.WaitVisible(chromedp.CSS("#token-error")))
	if s := eval[string](t, ctx, `sessionStorage.getItem("umbra-admin-token") || ""`); s != "" {
		t.Errorf("a refused token was kept: %q", s)
	}
	do(t, ctx, "sign in", chromedp.SetValue(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#token-form button")), chromedp.WaitVisible(chromedp.CSS("#rollout-checkout")))
	if s := eval[string](t, ctx, `sessionStorage.getItem("umbra-admin-token")`); s != token {
		t.Errorf("session storage holds %q", s)
	}
	// Links are followed with the token in a header; it never enters a URL.
	do(t, ctx, "differences", chromedp.Click(chromedp.CSS(`nav a[href="/ui/diffs"]`)),
		chromedp.WaitVisible(chromedp.CSS("#diffs-checkout")))
	if loc := eval[string](t, ctx, "location.href"); !strings.HasSuffix(loc, "/ui/diffs") || strings.Contains(loc, token) {
		t.Errorf("location %q", loc)
	}
	hist := eval[[]string](t, ctx, `performance.getEntriesByType("resource").map(e => e.name)`)
	for _, u := range hist {
		if strings.Contains(u, token) {
			t.Errorf("the token went into a URL: %s", u)
		}
	}
	// An action carries the token too.
	do(t, ctx, "rollouts", chromedp.Click(chromedp.CSS(`nav a[href="/ui/rollouts"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#rollout-checkout button[data-command="pause"]`)),
		chromedp.Click(chromedp.CSS(`#rollout-checkout button[data-command="pause"]`)),
		chromedp.WaitVisible(chromedp.CSS("dialog#confirm")), chromedp.Click(chromedp.CSS("#confirm-ok")))
	untilText(t, ctx, "#rollout-checkout .phase", "paused")
	// Signing out forgets the token and shows the sign-in page again.
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token-form")))
	if s := eval[string](t, ctx, `sessionStorage.getItem("umbra-admin-token") || ""`); s != "" {
		t.Errorf("signing out kept the token")
	}
}

// TestPagesWithoutJavaScript: with scripts disabled the pages still show
// their data and charts (they are rendered on the server).
func TestPagesWithoutJavaScript(t *testing.T) {
	e := startEnv(t, envOptions{})
	e.send(t, 60)
	e.gw.Dashboard().Sample()
	e.send(t, 30)
	e.gw.Dashboard().Sample()
	ctx := browser(t)
	do(t, ctx, "disable scripts", disableScripts())
	for _, p := range []struct{ path, sel, want string }{
		{"/ui/", "#route-checkout", "shop-v1"},
		{"/ui/diffs", "#diffs-checkout", "$.total"},
		{"/ui/rollouts", "#rollout-checkout", "shadow"},
		{"/ui/flags?context=alice", "table.results", "TARGETING_MATCH"},
	} {
		do(t, ctx, p.path, chromedp.Navigate(e.gw.AdminURL+p.path), chromedp.WaitVisible(chromedp.CSS(p.sel)))
		if s := text(t, ctx, p.sel); !strings.Contains(s, p.want) {
			t.Errorf("%s without JavaScript: %s lacks %q", p.path, p.sel, p.want)
		}
		if s := text(t, ctx, "#live-status"); s != "static" {
			t.Errorf("%s: the script ran (live status %q)", p.path, s)
		}
	}
}

// disableScripts turns JavaScript off in the tab, as a reader who
// disabled it would have it.
func disableScripts() chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return chromedp.Void{}, err
	}
}

// TestFlagsEvaluateAPI: POST /api/v1/flags/evaluate answers every flag for
// a context, as the dashboard's form shows them, and refuses bad bodies.
func TestFlagsEvaluateAPI(t *testing.T) {
	e := startEnv(t, envOptions{})
	c := testkit.NewClient(t, 2, 10*time.Second)
	r := testkit.Do(t, c, "POST", e.gw.AdminURL+"/api/v1/flags/evaluate",
		strings.NewReader(`{"context": {"targetingKey": "carol"}}`), "Content-Type", "application/json")
	var out struct {
		Flags []struct {
			Key, Variant, Reason string
			Value                any
		} `json:"flags"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &out) != nil || len(out.Flags) != 2 {
		t.Fatalf("evaluate: %d %s", r.Status, r.Body)
	}
	if f := out.Flags[1]; f.Key != "new-checkout" || f.Variant != "on" || f.Value != true || f.Reason != "TARGETING_MATCH" {
		t.Errorf("new-checkout for carol: %+v", f)
	}
	for _, body := range []string{`{"context": 1}`, `{"ctx": {}}`, `not json`} {
		if r := testkit.Do(t, c, "POST", e.gw.AdminURL+"/api/v1/flags/evaluate", strings.NewReader(body)); r.Status != http.StatusBadRequest {
			t.Errorf("evaluate %s: %d, want 400", body, r.Status)
		}
	}
}
