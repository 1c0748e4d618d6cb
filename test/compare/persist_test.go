package comparetest

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/umbragw/umbra/internal/diffs"
)

// sendItems sends n GETs to /v1/items/<from+i> and checks the live answers.
func sendItems(t *testing.T, g *gw, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		id := strconv.Itoa(i)
		if r := g.do(t, "GET", "/v1/items/"+id, nil, "Authorization", "Bearer s3cr3t"); string(r.Body) != itemJSON(id, "10") {
			t.Fatalf("live answer %q, want v1's", r.Body)
		}
	}
}

// 9. A restart on the same data_dir keeps counters and samples.
func TestRestartKeepsCountersAndSamples(t *testing.T) {
	t.Parallel()
	tr := newTrio(t, item("10"), item("12"))
	g := start(t, "", tr.expand(itemsRoute))
	sendItems(t, g, 0, 7)
	before := g.wait(t, "items", getEP, 7)
	samplesBefore, _ := g.samples(t, "items", getEP, "$.price")
	if before.Compared != 7 || before.Differing != 7 || len(samplesBefore) != 5 {
		t.Fatalf("before the restart: compared %d differing %d samples %d, want 7 7 5", before.Compared, before.Differing, len(samplesBefore))
	}

	g2 := g.restart(t)
	after, ok := g2.endpoint(t, "items", getEP)
	if !ok {
		t.Fatalf("after a restart the endpoint is gone: %s", g2.rawReport(t))
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("after a restart the endpoint reads\n%+v\nwant\n%+v", after, before)
	}
	samplesAfter, _ := g2.samples(t, "items", getEP, "$.price")
	if !reflect.DeepEqual(samplesAfter, samplesBefore) {
		t.Errorf("after a restart the samples differ:\n%+v\nwant\n%+v", samplesAfter, samplesBefore)
	}
	if n := g2.compareTotal(t, "items", getEP, diffs.ResultDifferent); n != 0 {
		t.Errorf("the new process's umbra_compare_total starts at 0, got %v", n)
	}

	// Counting goes on from the stored counters.
	sendItems(t, g2, 7, 3)
	e := g2.wait(t, "items", getEP, 10)
	if e.Compared != 10 || e.Differing != 10 || e.Regressions[0].Raw != 10 || e.Regressions[0].Samples != 5 {
		t.Errorf("after 3 more: %+v, want 10 compared and differing, 5 samples kept", e)
	}
}

// 10. A marked field moves from regressions to noise, stays marked across
// a restart, and noise:false unmarks it.
func TestNoiseMarkPersists(t *testing.T) {
	t.Parallel()
	tr := newTrio(t, item("10"), item("12"))
	g := start(t, "", tr.expand(itemsRoute))
	sendItems(t, g, 0, 3)
	e := g.wait(t, "items", getEP, 3)
	if got := names(e.Regressions); !slices.Equal(got, []string{"$.price"}) {
		t.Fatalf("regressions %v, want [$.price]", got)
	}

	g.mark(t, "items", getEP, "$.price", true)
	checkMarked := func(g *gw, when string) {
		t.Helper()
		e, _ := g.endpoint(t, "items", getEP)
		f, ok := field(e.Noise, "$.price")
		if len(e.Regressions) != 0 || !ok || !f.MarkedNoise || f.Regression || f.Raw != 3 {
			t.Errorf("%s: regressions %v noise %+v, want $.price in noise, marked, still counted", when, names(e.Regressions), e.Noise)
		}
		fs := g.fields(t, "items", getEP)
		if f, ok := field(fs, "$.price"); !ok || !f.MarkedNoise || f.Regression {
			t.Errorf("%s: fields endpoint %+v, want $.price marked", when, fs)
		}
	}
	checkMarked(g, "after marking")
	// The mark is for this endpoint only: POST is not marked.
	g.do(t, "POST", "/v1/items/p", []byte(`{}`))
	if e := g.wait(t, "items", postEP, 1); !slices.Equal(names(e.Regressions), []string{"$.price"}) {
		t.Errorf("POST endpoint regressions %v: a mark on GET must not apply to POST", names(e.Regressions))
	}

	g = g.restart(t)
	checkMarked(g, "after a restart")
	// New comparisons of a marked field stay in noise.
	sendItems(t, g, 3, 2)
	g.wait(t, "items", getEP, 5)
	if e, _ := g.endpoint(t, "items", getEP); len(e.Regressions) != 0 {
		t.Errorf("new differences of a marked field are regressions again: %v", names(e.Regressions))
	}

	g.mark(t, "items", getEP, "$.price", false)
	checkUnmarked := func(g *gw, when string) {
		t.Helper()
		e, _ := g.endpoint(t, "items", getEP)
		if len(e.Regressions) != 1 || e.Regressions[0].Field != "$.price" || e.Regressions[0].MarkedNoise || len(e.Noise) != 0 {
			t.Errorf("%s: regressions %+v noise %v, want $.price a regression again", when, e.Regressions, names(e.Noise))
		}
	}
	checkUnmarked(g, "after unmarking")
	g = g.restart(t)
	checkUnmarked(g, "after unmarking and a restart")

	// A mark without an endpoint holds for every endpoint of the route.
	g.Admin(t, "POST", "/api/v1/diffs/items/noise", map[string]any{"field": "$.price"}, http.StatusOK, nil)
	for _, ep := range []string{getEP, postEP} {
		if e, _ := g.endpoint(t, "items", ep); len(e.Regressions) != 0 || len(e.Noise) != 1 || !e.Noise[0].MarkedNoise {
			t.Errorf("route-wide mark: %s regressions %v noise %+v", ep, names(e.Regressions), e.Noise)
		}
	}
	// Bad requests are refused.
	for _, bad := range []any{map[string]any{"endpoint": getEP}, map[string]any{"field": "$.x", "color": "red"}, "text"} {
		g.Admin(t, "POST", "/api/v1/diffs/items/noise", bad, http.StatusBadRequest, nil)
	}
}

// 11. DELETE resets a route's results (not another route's, not the
// marks), and the reset survives a restart.
func TestResetRouteKeepsMarks(t *testing.T) {
	t.Parallel()
	tr := newTrio(t, item("10"), item("12"))
	g := start(t, "", tr.expand(`routes:
  - name: a
    match: {path: "/a/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1b}
  - name: ab
    match: {path: "/ab/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1b}
`))
	const epA, epAB = "GET /a/{id}", "GET /ab/{id}"
	g.getN(t, "/a/", 4, nil)
	g.getN(t, "/ab/", 3, nil)
	g.wait(t, "a", epA, 4)
	abBefore := g.wait(t, "ab", epAB, 3)
	g.mark(t, "a", epA, "$.price", true)

	if n := g.reset(t, "a"); n != 1 {
		t.Errorf("DELETE /api/v1/diffs/a reset %d endpoints, want 1", n)
	}
	rep := g.report(t, "a")
	if len(rep.Routes) != 1 || rep.Routes[0].Route != "a" || len(rep.Routes[0].Endpoints) != 0 {
		t.Errorf("route a after its reset: %+v, want listed with no endpoints", rep)
	}
	if _, ok := g.endpoint(t, "a", epA); ok {
		t.Errorf("route a still has results after its reset")
	}
	g.Admin(t, "GET", samplesPath("a", epA, "$.price"), nil, http.StatusNotFound, nil)
	if ab, _ := g.endpoint(t, "ab", epAB); !reflect.DeepEqual(ab, abBefore) {
		t.Errorf("resetting route a changed route ab:\n%+v\nwant\n%+v", ab, abBefore)
	}

	// Counting starts again from zero, and the mark still holds.
	g.getN(t, "/a/", 2, nil)
	e := g.wait(t, "a", epA, 2)
	if f, ok := field(e.Noise, "$.price"); e.Compared != 2 || !ok || !f.MarkedNoise || len(e.Regressions) != 0 {
		t.Errorf("after the reset: %+v, want 2 compared and $.price still marked", e)
	}

	g = g.restart(t)
	if e, _ := g.endpoint(t, "a", epA); e.Compared != 2 {
		t.Errorf("after a restart route a has %d compared, want the 2 since the reset", e.Compared)
	}
	if ab, _ := g.endpoint(t, "ab", epAB); ab.Compared != 3 {
		t.Errorf("after a restart route ab has %d compared, want 3", ab.Compared)
	}

	// DELETE /api/v1/diffs resets every route; marks stay.
	if n := g.reset(t, ""); n != 2 {
		t.Errorf("DELETE /api/v1/diffs reset %d endpoints, want 2", n)
	}
	g = g.restart(t)
	for _, r := range g.report(t, "").Routes {
		if len(r.Endpoints) != 0 {
			t.Errorf("after DELETE /api/v1/diffs and a restart route %s has %+v", r.Route, r.Endpoints)
		}
	}
	g.getN(t, "/a/", 1, nil)
	if e := g.wait(t, "a", epA, 1); len(e.Noise) != 1 || !e.Noise[0].MarkedNoise {
		t.Errorf("the mark did not survive DELETE /api/v1/diffs: %+v", e)
	}
}

// 12. DELETE /api/v1/diffs/{route}?endpoint=E forgets one endpoint of the
// route (its counters and samples, not the marks) and nothing else, also
// after a restart; a bad or unknown endpoint is refused.
func TestResetOneEndpointOverTheAPI(t *testing.T) {
	t.Parallel()
	tr := newTrio(t, item("10"), item("12"))
	g := start(t, "", tr.expand(`routes:
  - name: a
    match: {path: "/a/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1b}
`))
	const getA, headA = "GET /a/{id}", "HEAD /a/{id}"
	g.getN(t, "/a/", 4, nil)
	for i := range 3 {
		g.do(t, "HEAD", "/a/"+strconv.Itoa(i), nil)
	}
	g.wait(t, "a", getA, 4)
	headBefore := g.wait(t, "a", headA, 3)
	g.mark(t, "a", getA, "$.price", true)

	var out struct {
		N int `json:"reset_endpoints"`
	}
	g.Admin(t, "DELETE", "/api/v1/diffs/a?endpoint="+url.QueryEscape(getA), nil, http.StatusOK, &out)
	if out.N != 1 {
		t.Errorf("DELETE ?endpoint=%s reset %d endpoints, want 1", getA, out.N)
	}
	if _, ok := g.endpoint(t, "a", getA); ok {
		t.Errorf("%s still has results after its reset", getA)
	}
	g.Admin(t, "GET", samplesPath("a", getA, "$.price"), nil, http.StatusNotFound, nil)
	if head, _ := g.endpoint(t, "a", headA); !reflect.DeepEqual(head, headBefore) {
		t.Errorf("resetting %s changed %s:\n%+v\nwant\n%+v", getA, headA, head, headBefore)
	}
	for _, bad := range []struct {
		path   string
		status int
	}{
		{"/api/v1/diffs/a?endpoint=", http.StatusBadRequest},
		{"/api/v1/diffs?endpoint=" + url.QueryEscape(getA), http.StatusBadRequest},
		{"/api/v1/diffs/a?endpoint=" + url.QueryEscape("GET /nothing"), http.StatusNotFound},
	} {
		g.Admin(t, "DELETE", bad.path, nil, bad.status, nil)
	}
	if head, _ := g.endpoint(t, "a", headA); head.Compared != headBefore.Compared {
		t.Errorf("a refused reset changed %s: %+v", headA, head)
	}

	g.getN(t, "/a/", 2, nil)
	g.wait(t, "a", getA, 2)
	g = g.restart(t)
	if e, _ := g.endpoint(t, "a", getA); e.Compared != 2 || len(e.Noise) == 0 || !e.Noise[0].MarkedNoise {
		t.Errorf("after a restart %s: %+v, want the 2 compared since its reset and $.price still marked", getA, e)
	}
	if head, _ := g.endpoint(t, "a", headA); head.Compared != headBefore.Compared {
		t.Errorf("after a restart %s has %d compared, want %d", headA, head.Compared, headBefore.Compared)
	}
}
