package flags

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flagdeval "github.com/open-feature/flagd/core/pkg/evaluator"
	"github.com/open-feature/flagd/core/pkg/store"
	flagdsync "github.com/open-feature/flagd/core/pkg/sync"
)

func testdata(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/flags.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loaded(t testing.TB) *Evaluator {
	t.Helper()
	e := New()
	if err := e.Load(testdata(t), "flags.json"); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEvaluate(t *testing.T) {
	e := loaded(t)
	for _, c := range []struct {
		key  string
		ctx  map[string]any
		want Result
	}{
		{"new-ui", map[string]any{"plan": "pro"}, Result{Key: "new-ui", Value: true, Variant: "on", Reason: ReasonTargetingMatch}},
		{"new-ui", map[string]any{"plan": "free"}, Result{Key: "new-ui", Value: false, Variant: "off", Reason: ReasonTargetingMatch}},
		{"checkout-version", map[string]any{"version": "2.1.0"}, Result{Key: "checkout-version", Value: "v2", Variant: "new", Reason: ReasonTargetingMatch}},
		{"checkout-version", map[string]any{"version": "1.9.9"}, Result{Key: "checkout-version", Value: "v1", Variant: "old", Reason: ReasonDefault}},
		{"banner", nil, Result{Key: "banner", Value: map[string]any{"color": "#00f"}, Variant: "blue", Reason: ReasonStatic}},
		{"retired", nil, Result{Key: "retired", Reason: ReasonDisabled}},
		{"code-default", nil, Result{Key: "code-default", Reason: ReasonDefault}},
		{"nope", nil, Result{Key: "nope", Reason: ReasonError, ErrorCode: ErrFlagNotFound, ErrorDetails: "flag `nope` does not exist"}},
		// fractional without a targeting key: flagd serves the default
		{"geo-report", map[string]any{}, Result{Key: "geo-report", Value: false, Variant: "off", Reason: ReasonDefault}},
	} {
		got := e.Evaluate(c.key, c.ctx)
		got.Metadata = nil
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %v:\n got %+v\nwant %+v", c.key, c.ctx, got, c.want)
		}
	}
	if md := e.Evaluate("geo-report", nil).Metadata; md["owner"] != "shortlinks" {
		t.Errorf("metadata %v", md)
	}
	if v := e.Variant("retired", nil); v != "" {
		t.Errorf("disabled flag variant %q", v)
	}
	if v := e.Variant("code-default", nil); v != "" {
		t.Errorf("code-default variant %q", v)
	}
}

// Fractional bucketing splits callers about 30/70 and each caller always
// gets the same variant.
func TestFractional(t *testing.T) {
	e := loaded(t)
	on := 0
	for i := range 4000 {
		ctx := map[string]any{TargetingKey: fmt.Sprintf("user-%d", i)}
		v := e.Variant("geo-report", ctx)
		if v != e.Variant("geo-report", ctx) {
			t.Fatalf("user-%d: unstable", i)
		}
		if v == "on" {
			on++
		}
	}
	if on < 1100 || on > 1300 {
		t.Errorf("%d of 4000 callers on, want about 1200", on)
	}
}

// The cache must answer exactly what flagd answers.
func TestCacheAgreesWithFlagd(t *testing.T) {
	e := loaded(t)
	s := e.cur.Load()
	r := rand.New(rand.NewPCG(1, 2))
	plans := []string{"free", "pro", "enterprise", ""}
	for i := range 1500 {
		ctx := map[string]any{TargetingKey: fmt.Sprintf("u%d", r.IntN(1000))}
		if p := plans[r.IntN(len(plans))]; p != "" {
			ctx["plan"] = p
		}
		if r.IntN(2) == 0 {
			ctx["version"] = fmt.Sprintf("%d.%d.0", r.IntN(4), r.IntN(3))
		}
		for _, k := range s.keys {
			want := result(s.eval.ResolveAsAnyValue(context.Background(), "", k, ctx))
			if got := e.Evaluate(k, ctx); !reflect.DeepEqual(got, want) {
				t.Fatalf("%d %s %v: cached %+v, flagd %+v", i, k, ctx, got, want)
			}
		}
	}
}

func TestTimeRulesAreNotCached(t *testing.T) {
	e := New()
	err := e.Load([]byte(`{"flags": {
	  "t": {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "a",
	        "targeting": {"if": [{">": [{"var": "$flagd.timestamp"}, 0]}, "b", "a"]}},
	  "k": {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "a",
	        "targeting": {"if": [{"==": [{"var": "targetingKey"}, "x"]}, "b", "a"]}}}}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	s := e.cur.Load()
	if s.flags["t"].cacheable || !s.flags["k"].cacheable || !s.flags["k"].needsTargetingKey || s.flags["t"].needsTargetingKey {
		t.Errorf("flag info t=%+v k=%+v", s.flags["t"], s.flags["k"])
	}
	if v := e.Variant("t", map[string]any{}); v != "b" {
		t.Errorf("time rule variant %q", v)
	}
}

func TestEvaluateAll(t *testing.T) {
	e := loaded(t)
	all, _ := e.EvaluateAll(map[string]any{TargetingKey: "u1", "plan": "pro"})
	var keys []string
	for _, r := range all {
		keys = append(keys, r.Key)
	}
	want := []string{"banner", "checkout-version", "code-default", "geo-report", "new-ui", "retired"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	for _, r := range all {
		if single := e.Evaluate(r.Key, map[string]any{TargetingKey: "u1", "plan": "pro"}); !reflect.DeepEqual(r, single) {
			t.Errorf("%s: bulk %+v, single %+v", r.Key, r, single)
		}
	}
	if got, md := New().EvaluateAll(nil); len(got) != 0 || md != nil {
		t.Errorf("no flags: %v", got)
	}
}

func TestInfoAndNoopReload(t *testing.T) {
	e := loaded(t)
	i1 := e.Info()
	if i1.Version != 1 || i1.Flags != 6 || i1.Source != "flags.json" || len(i1.Hash) != 64 {
		t.Errorf("info %+v", i1)
	}
	if err := e.Load(testdata(t), "flags.json"); err != nil {
		t.Fatal(err)
	}
	if i2 := e.Info(); !reflect.DeepEqual(i2, i1) {
		t.Errorf("identical load changed the info: %+v", i2)
	}
	if !e.Has("banner") || e.Has("nope") || !reflect.DeepEqual(e.Variants("banner"), []string{"blue", "red"}) || e.Variants("nope") != nil {
		t.Errorf("Has/Variants")
	}
	if !e.NeedsTargetingKey("geo-report") || e.NeedsTargetingKey("new-ui") {
		t.Errorf("NeedsTargetingKey")
	}
	if !reflect.DeepEqual(e.Keys(), []string{"banner", "checkout-version", "code-default", "geo-report", "new-ui", "retired"}) {
		t.Errorf("keys %v", e.Keys())
	}
}

// flagdLoads reports whether flagd's own loader (flagd/core's evaluator,
// as the flagd daemon runs it) accepts a flag file.
func flagdLoads(t *testing.T, data string) error {
	t.Helper()
	st, err := store.NewStore(quietLogger, []string{"oracle"})
	if err != nil {
		t.Fatal(err)
	}
	return flagdeval.NewJSON(quietLogger, st).SetState(flagdsync.DataSync{FlagData: data, Source: "oracle"})
}

// What flagd refuses to load umbra refuses, with positioned reasons, and
// the running flags stay.
func TestLoadErrors(t *testing.T) {
	flag := func(body string) string { return `{"flags": {"f": ` + body + `}}` }
	for _, c := range []struct {
		name, in string
		want     []string
	}{
		{"empty", "", []string{"x.json: the file is empty"}},
		{"syntax", "{\n  \"flags\": {\n    \"f\": {,}\n  }\n}", []string{"x.json:3:11: invalid JSON"}},
		{"trailing", `{"flags": {}} {}`, []string{"x.json:1:15: invalid JSON: text after"}},
		{"not an object", `[1]`, []string{"x.json:1:1: want a JSON object"}},
		{"no flags", `{"flag": {}}`, []string{`x.json:1:1: missing "flags"`}},
		{"flags not object", `{"flags": 3}`, []string{`"flags" must be an object`}},
		{"flag not object", flag(`true`), []string{`x.json:1:12: flag "f" must be an object, got a boolean`}},
		{"state not string", flag(`{"state": 1, "variants": {"a": 1}, "defaultVariant": "a"}`), []string{`flag "f": state must be "ENABLED" or "DISABLED", got a number`}},
		{"variants not object", flag(`{"state": "ENABLED", "variants": ["a"]}`), []string{`flag "f": "variants" must be an object`}},
		{"default not string", flag(`{"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": 1}`), []string{`flag "f": defaultVariant must be a variant name or null`}},
		{"bad default", flag(`{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "onn"}`), []string{`flag "f": defaultVariant "onn" is not one of its variants ("off", "on")`}},
		{"metadata not object", flag(`{"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "metadata": "team"}`), []string{`flag "f": metadata must be an object`}},
		{"set metadata not object", `{"flags": {}, "metadata": []}`, []string{`x.json:1:15: "metadata" must be an object, got an array`}},
		{"evaluators not object", `{"flags": {}, "$evaluators": "x"}`, []string{`"$evaluators" must be an object`}},
		{"array key not string", `{"flags": [{"key": 3, "state": "ENABLED", "variants": {"a": 1}}]}`, []string{`flags[0]: "key" must be a string`}},
		{"two problems", `{"flags": {"a": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "y"},
 "b": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "z"}}}`, []string{
			`x.json:1:12: flag "a": defaultVariant "y"`, `x.json:2:2: flag "b": defaultVariant "z"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if flagdLoads(t, c.in) == nil {
				t.Fatalf("flagd loads it: not a case for an error")
			}
			e := loaded(t)
			err := e.Load([]byte(c.in), "x.json")
			if err == nil {
				t.Fatalf("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			for i, w := range c.want {
				if i >= len(lines) || !strings.Contains(lines[i], w) {
					t.Errorf("error:\n%v\nline %d should contain %q", err, i+1, w)
				}
			}
			if len(lines) != len(c.want) {
				t.Errorf("%d problems, want %d:\n%v", len(lines), len(c.want), err)
			}
			// the running flags stay
			if e.Info().Source != "flags.json" || e.Variant("banner", nil) != "blue" {
				t.Errorf("running flags replaced")
			}
		})
	}
}

// What flagd loads with a schema warning umbra loads too, says why in
// Info().Warnings, and evaluates as flagd does: among them valid flagd
// files umbra used to refuse (partial and v-prefixed versions, nested
// fractional, fractional as a condition, a single bucket, a number where
// ends_with wants a string).
func TestLoadWarnings(t *testing.T) {
	flag := func(body string) string { return `{"flags": {"f": ` + body + `}}` }
	ok := `"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"`
	str := `"state": "ENABLED", "variants": {"match": "match", "no-match": "no-match", "fallback": "fallback", "red": "red", "blue": "blue", "single": "single"}, "defaultVariant": "fallback"`
	type eval struct {
		ctx     map[string]any
		variant string // "" with code: an error
		code    string
	}
	for _, c := range []struct {
		name, in string
		warn     string // a warning contains it; "": no warnings
		evals    []eval
	}{
		{"no state", flag(`{"variants": {"a": 1}, "defaultVariant": "a"}`), `x.json:1:12: flag "f": no "state": the flag is enabled`, []eval{{nil, "a", ""}}},
		{"unknown state", flag(`{"state": "ON", "variants": {"a": 1}, "defaultVariant": "a"}`), `flag "f": state "ON" is not "ENABLED" or "DISABLED": the flag is enabled`, []eval{{nil, "a", ""}}},
		{"no variants", flag(`{"state": "ENABLED"}`), `flag "f": no "variants"`, []eval{{nil, "", ""}}},
		{"empty variants", flag(`{"state": "ENABLED", "variants": {}}`), `flag "f": "variants" is empty`, nil},
		{"mixed variants", flag(`{"state": "ENABLED", "variants": {"a": true, "b": "x"}, "defaultVariant": "a"}`), `flag "f": variants mix types: "a" is a boolean, "b" is a string`, []eval{{nil, "a", ""}}},
		{"null variant", flag(`{"state": "ENABLED", "variants": {"a": null}, "defaultVariant": "a"}`), `variant "a" is null`, []eval{{nil, "", ErrGeneral}}},
		{"unknown operator", flag(`{` + ok + `, "targeting": {"if": [{"frational": [["on", 50], ["off", 50]]}, "on", "off"]}}`), `flag "f": targeting: unknown operator "frational": evaluations answer PARSE_ERROR`, []eval{{nil, "", ErrParse}}},
		{"unknown ref", flag(`{` + ok + `, "targeting": {"if": [{"$ref": "nope"}, "on", "off"]}}`), `flag "f": targeting: $ref "nope" names no evaluator in "$evaluators": evaluations answer PARSE_ERROR`, []eval{{nil, "", ErrParse}}},
		{"targeting not object", flag(`{` + ok + `, "targeting": "on"}`), `flag "f": targeting is a string, not a JSONLogic rule object`, nil},
		{"metadata value", flag(`{` + ok + `, "metadata": {"team": ["a"]}}`), `flag "f": metadata "team" is an array`, []eval{{nil, "off", ""}}},
		{"rule names no variant", flag(`{` + ok + `, "targeting": {"if": [true, "maybe", "off"]}}`), "", []eval{{nil, "", ErrGeneral}}},
		{"semver v-prefix", flag(`{` + str + `, "targeting": {"if": [{"sem_ver": [{"var": "version"}, "=", "v1.0.0"]}, "match", "no-match"]}}`), `x.json:1:12: flag "f" at /targeting`,
			[]eval{{map[string]any{"version": "1.0.0"}, "match", ""}, {map[string]any{"version": "V1.0.0"}, "match", ""}, {map[string]any{"version": "2.0.0"}, "no-match", ""}}},
		{"semver partial", flag(`{` + str + `, "targeting": {"if": [{"sem_ver": [{"var": "version"}, "^", "1"]}, "match", "no-match"]}}`), `(flagd schema)`,
			[]eval{{map[string]any{"version": "1.5"}, "match", ""}, {map[string]any{"version": 1.0}, "match", ""}, {map[string]any{"version": "2.0.0"}, "no-match", ""}}},
		{"nested fractional", flag(`{` + str + `, "targeting": {"fractional": [{"var": "targetingKey"}, [{"var": "color"}, 50], ["blue", 50]]}}`), `(flagd schema)`,
			[]eval{{map[string]any{"targetingKey": "jon@company.com", "color": "red"}, "red", ""}, {map[string]any{"targetingKey": "user1", "color": "red"}, "blue", ""}}},
		{"fractional as condition", flag(`{` + str + `, "targeting": {"if": [{"fractional": [[false, 0], [true, 100]]}, "match", "no-match"]}}`), `(flagd schema)`,
			[]eval{{map[string]any{"targetingKey": "some-key"}, "match", ""}}},
		{"single bucket", flag(`{` + str + `, "targeting": {"fractional": [["single", 1]]}}`), `(flagd schema)`,
			[]eval{{map[string]any{"targetingKey": "some-key"}, "single", ""}}},
		{"ends_with a number", flag(`{` + str + `, "targeting": {"if": [{"ends_with": [{"var": "build"}, 7]}, "match", "no-match"]}}`), `(flagd schema)`,
			[]eval{{map[string]any{"build": "2017"}, "no-match", ""}}},
		{"ends_with on a number", flag(`{` + str + `, "targeting": {"ends_with": [{"var": "build"}, "7"]}}`), "",
			[]eval{{map[string]any{"build": 2017.0}, "fallback", ""}}},
		{"flags null", `{"flags": null}`, `"flags" is null`, nil},
		{"array twice", `{"flags": [{"key": "f", ` + ok + `}, {"key": "f", "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}]}`, `flag "f" is defined twice`, []eval{{nil, "on", ""}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := flagdLoads(t, c.in); err != nil {
				t.Fatalf("flagd refuses it (%v): not a case for a warning", err)
			}
			e := loaded(t)
			if err := e.Load([]byte(c.in), "x.json"); err != nil {
				t.Fatalf("refused:\n%v", err)
			}
			w := e.Info().Warnings
			if c.warn == "" && len(w) > 0 || !strings.Contains(strings.Join(w, "\n"), c.warn) {
				t.Errorf("warnings %q lack %q", w, c.warn)
			}
			oracle := newTestOracle(t, c.in)
			for _, ev := range c.evals {
				r := e.Evaluate("f", ev.ctx)
				if r.Variant != ev.variant || r.ErrorCode != ev.code {
					t.Errorf("%v: variant %q code %q (%s), want %q %q", ev.ctx, r.Variant, r.ErrorCode, r.ErrorDetails, ev.variant, ev.code)
				}
				if want := result(oracle.ResolveAsAnyValue(bg, "", "f", ev.ctx)); !reflect.DeepEqual(r, want) {
					t.Errorf("%v: %+v, flagd %+v", ev.ctx, r, want)
				}
			}
		})
	}
}

func newTestOracle(t *testing.T, data string) *flagdeval.JSON {
	t.Helper()
	st, err := store.NewStore(quietLogger, []string{"oracle"})
	if err != nil {
		t.Fatal(err)
	}
	ev := flagdeval.NewJSON(quietLogger, st)
	if err := ev.SetState(flagdsync.DataSync{FlagData: data, Source: "oracle"}); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestRefs(t *testing.T) {
	e := loaded(t)
	refs := []Ref{
		{Key: "geo-report", Variant: "on", Route: "geo", Field: "match.flag"},
		{Key: "new-ui", Route: "geo", Field: "forward_flags"},
	}
	if err := e.Check(refs); err != nil {
		t.Fatal(err)
	}
	bad := append(refs, Ref{Key: "nope", Route: "a", Field: "forward_flags"}, Ref{Key: "banner", Variant: "green", Route: "b", Field: "match.flag"})
	err := e.Check(bad)
	if err == nil || !strings.Contains(err.Error(), `route "a" forward_flags names flag "nope", which the flag file does not define`) ||
		!strings.Contains(err.Error(), `route "b" match.flag wants variant "green" of flag "banner", which has "blue", "red"`) {
		t.Fatalf("Check: %v", err)
	}
	var re RefErrors
	if !errors.As(err, &re) || len(re) != 2 || re[0].Ref.Key != "nope" || re[1].Ref.Route != "b" {
		t.Errorf("RefErrors %#v", err)
	}
	if err := e.Require(bad); err == nil {
		t.Fatal("Require accepted missing flags")
	}
	if err := e.Require(refs); err != nil {
		t.Fatal(err)
	}
	// a file without geo-report is now refused
	err = e.Load([]byte(`{"flags": {"new-ui": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}`), "y.json")
	if err == nil || !strings.Contains(err.Error(), `y.json: route "geo" match.flag names flag "geo-report"`) {
		t.Fatalf("Load without a required flag: %v", err)
	}
	if err := New().Check(refs); err == nil {
		t.Error("Check without flags accepted refs")
	}
}

// Reloads (good and broken) while evaluations run: every evaluation sees
// one complete flag set, never an error, and the race detector sees no
// race.
func TestReloadUnderConcurrentEvaluation(t *testing.T) {
	a := []byte(`{"flags": {"f": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a",
	  "targeting": {"fractional": [["a", 50], ["b", 50]]}}, "g": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x"}}}`)
	b := []byte(`{"flags": {"f": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "b"},
	  "g": {"state": "ENABLED", "variants": {"y": 2}, "defaultVariant": "y"}}}`)
	broken := []byte(`{"flags": {"f": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "zz"}}}`)
	e := New()
	if err := e.Load(a, "a"); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				ctx := map[string]any{TargetingKey: fmt.Sprintf("u%d-%d", w, i%500)}
				if r := e.Evaluate("f", ctx); !r.OK() || (r.Variant != "a" && r.Variant != "b") {
					bad.Add(1)
				}
				if v := e.Variant("g", ctx); v != "x" && v != "y" {
					bad.Add(1)
				}
				all, _ := e.EvaluateAll(ctx)
				if len(all) != 2 {
					bad.Add(1)
				}
			}
		}()
	}
	for i := range 15 {
		var err error
		switch i % 3 {
		case 0:
			err = e.Load(b, "b")
		case 1:
			if e.Load(broken, "broken") == nil {
				t.Error("broken file accepted")
			}
		case 2:
			err = e.Load(a, "a")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d evaluations saw no consistent flag set", n)
	}
	if e.Info().Source != "a" {
		t.Errorf("running flags from %q", e.Info().Source)
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	write := func(s string) {
		// write a temporary file and rename it over, as editors do
		tmp := filepath.Join(dir, ".flags.tmp")
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	doc := func(v string) string {
		return `{"flags": {"f": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "` + v + `"}}}`
	}
	write(doc("a"))
	e := New()
	if err := e.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	type report struct {
		changed bool
		err     error
	}
	reports := make(chan report, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Watch(ctx, path, func(changed bool, err error) { reports <- report{changed, err} }); err != nil {
		t.Fatal(err)
	}
	next := func() report {
		select {
		case r := <-reports:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no reload reported")
		}
		return report{}
	}
	// wait returns the outcome of the next reload that changed the flags
	// or failed.
	wait := func() error {
		for {
			if r := next(); r.changed || r.err != nil {
				return r.err
			}
		}
	}
	write(doc("b"))
	if err := wait(); err != nil || e.Variant("f", nil) != "b" {
		t.Fatalf("reload: %v, variant %q", err, e.Variant("f", nil))
	}
	write(`{"flags": {"f": {"state": "ENABLED"`)
	if err := wait(); err == nil || !strings.Contains(err.Error(), "invalid JSON") || e.Variant("f", nil) != "b" {
		t.Fatalf("broken file: %v, variant %q", err, e.Variant("f", nil))
	}
	// in place writes too
	if err := os.WriteFile(path, []byte(doc("a")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil || e.Variant("f", nil) != "a" {
		t.Fatalf("in-place write: %v, variant %q", err, e.Variant("f", nil))
	}
	if changed, err := e.Reload(path); changed || err != nil {
		t.Errorf("Reload of an unchanged file: %v %v", changed, err)
	}
	// The same content written again is reported as loaded, unchanged.
	write(doc("a"))
	if r := next(); r.changed || r.err != nil {
		t.Errorf("rewrite of the running file reported %+v, want unchanged and no error", r)
	}
	if err := e.LoadFile(filepath.Join(dir, "nope.json")); err == nil {
		t.Error("missing file loaded")
	}
}

// The cache holds at most 2 × cacheShards × cacheGen entries and keeps
// recently used ones.
func TestCacheBounded(t *testing.T) {
	c := newResultCache()
	r := Result{Key: "f", Variant: "on", Reason: ReasonTargetingMatch, Value: true}
	hot := []byte("hot-caller")
	c.add(hot, r)
	for i := range 300000 {
		c.add([]byte(fmt.Sprintf("caller-%d", i)), r)
		if i%1000 == 0 {
			if _, ok := c.get(hot); !ok {
				t.Fatalf("hot entry evicted after %d others", i)
			}
		}
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].cur) + len(c.shards[i].old)
	}
	if n > 2*cacheShards*cacheGen {
		t.Errorf("%d entries", n)
	}
	if got, ok := c.get(hot); !ok || !reflect.DeepEqual(got, r) {
		t.Errorf("hot entry %+v %v", got, ok)
	}
	if len(*c.results.Load()) != 1 {
		t.Errorf("%d interned results, want 1", len(*c.results.Load()))
	}
}

// BenchmarkEvaluate: flagd's evaluator on its own (what a cache miss
// costs) against a cached evaluation, for a fractional flag, a targeting
// rule and a static flag.
func BenchmarkEvaluate(b *testing.B) {
	e := loaded(b)
	s := e.cur.Load()
	ctx := map[string]any{TargetingKey: "user-42", "plan": "pro"}
	for _, k := range []string{"geo-report", "new-ui", "banner"} {
		b.Run(k+"/flagd", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.eval.ResolveAsAnyValue(context.Background(), "", k, ctx)
			}
		})
		b.Run(k+"/cached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.Variant(k, ctx)
			}
		})
	}
}
