package flags_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/flags"
	"github.com/umbragw/umbra/internal/router"
)

const agreementFlags = `{"flags": {
  "geo-report": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"fractional": [["on", 30], ["off", 70]]}},
  "new-ui": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"in": [{"var": "plan"}, ["pro", "enterprise"]]},
                         {"fractional": [["on", 50], ["off", 50]]}, "off"]}}
}}`

const agreementConfig = `backends:
  v1: {endpoints: ["http://127.0.0.1:9001"]}
  v2: {endpoints: ["http://127.0.0.1:9002"]}
flags: {file: FLAGS}
routes:
  - name: geo
    match: {path: "/v1/links/{id}/geo", flag: {key: geo-report, variant: "on"}}
    dark: true
    backend: v2
    key: "header:X-User-ID"
  - name: new-ui
    match: {path_prefix: /app, flag: {key: new-ui, variant: "on"}}
    backend: v2
    key: "header:X-User-ID"
    flag_context: {plan: "header:X-Plan"}
  - name: rest
    backend: v1
`

// For 10,000 callers, what a front end learns over OFREP (through the
// real OpenFeature Go SDK and its OFREP provider) and what the router
// does with a request carrying the same targeting key agree: a caller
// the flag lets in is routed to the new route, everyone else is not.
func TestOFREPAndRoutingAgree(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "flags.json")
	if err := os.WriteFile(file, []byte(agreementFlags), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("umbra.yaml", []byte(strings.Replace(agreementConfig, "FLAGS", file, 1)))
	if err != nil {
		t.Fatal(err)
	}
	e := flags.New()
	if err := e.LoadFile(cfg.Flags.File); err != nil {
		t.Fatal(err)
	}
	if err := e.Require(flags.Refs(cfg.Routes)); err != nil {
		t.Fatal(err)
	}
	table, err := router.CompileWith(cfg.Routes, router.Options{Flags: flags.Matcher{E: e}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := flags.HandlerFromConfig(e, cfg.Flags)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	if err := openfeature.SetNamedProviderAndWait("agreement", ofrep.NewProvider(srv.URL, ofrep.WithClient(srv.Client()))); err != nil {
		t.Fatal(err)
	}
	defer openfeature.Shutdown()
	client := openfeature.NewClient("agreement")

	callers := 10000
	if testing.Short() {
		callers = 2000
	}
	plans := []string{"free", "pro", "enterprise"}
	var mu sync.Mutex
	geoOn, uiOn := 0, 0
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	fail := func(format string, args ...any) {
		select {
		case errs <- fmt.Sprintf(format, args...):
		default:
		}
	}
	const workers = 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := w; i < callers; i += workers {
				user, plan := fmt.Sprintf("user-%05d", i), plans[i%len(plans)]
				ec := openfeature.NewEvaluationContext(user, map[string]any{"plan": plan})

				geo, err := client.BooleanValueDetails(ctx, "geo-report", false, ec)
				if err != nil || geo.Variant == "" {
					fail("%s geo-report over OFREP: %v %+v", user, err, geo)
					return
				}
				r := newRequest("/v1/links/abc/geo", user, plan)
				rt := table.Match(r)
				if routed := rt != nil && rt.Name == "geo"; routed != geo.Value || (!geo.Value && rt != nil) {
					fail("%s: OFREP says geo-report=%v (%s), router matched %v", user, geo.Value, geo.Variant, rt)
				}

				ui, err := client.BooleanValueDetails(ctx, "new-ui", false, ec)
				if err != nil || ui.Variant == "" {
					fail("%s new-ui over OFREP: %v %+v", user, err, ui)
					return
				}
				rt = table.Match(newRequest("/app/home", user, plan))
				want := "rest"
				if ui.Value {
					want = "new-ui"
				}
				if rt == nil || rt.Name != want {
					fail("%s (%s): OFREP says new-ui=%v, router matched %v", user, plan, ui.Value, rt)
				}
				if hdr := flags.ForwardHeader(e, []string{"geo-report", "new-ui"}, flags.Context(r, cfg.Routes[1])); hdr != "geo-report="+geo.Variant+",new-ui="+ui.Variant {
					fail("%s: X-Umbra-Flags %q, OFREP variants %s %s", user, hdr, geo.Variant, ui.Variant)
				}
				mu.Lock()
				if geo.Value {
					geoOn++
				}
				if ui.Value {
					uiOn++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	// the splits are real: about 30% and 2/3 × 50%
	if n := float64(callers); float64(geoOn) < 0.27*n || float64(geoOn) > 0.33*n || float64(uiOn) < 0.30*n || float64(uiOn) > 0.37*n {
		t.Errorf("geo-report on for %d, new-ui on for %d of %d callers", geoOn, uiOn, callers)
	}
}

func newRequest(path, user, plan string) *http.Request {
	r := httptest.NewRequest("GET", "http://shop.example.com"+path, nil)
	r.Header.Set("X-User-ID", user)
	r.Header.Set("X-Plan", plan)
	return r
}
