package flagstest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"testing"

	flagdeval "github.com/open-feature/flagd/core/pkg/evaluator"
	flagdlog "github.com/open-feature/flagd/core/pkg/logger"
	flagdstore "github.com/open-feature/flagd/core/pkg/store"
	flagdsync "github.com/open-feature/flagd/core/pkg/sync"
	"github.com/open-feature/go-sdk/openfeature"
)

// sdkFlags covers boolean and string flags with targeting rules
// (ends_with, in, sem_ver), fractional splits and a disabled flag.
const sdkFlags = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "geo-report": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"fractional": [["on", 30], ["off", 70]]}, "metadata": {"owner": "shortlinks"}},
    "staff-tools": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}},
    "retired": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
    "tier": {"state": "ENABLED", "variants": {"gold": "gold", "standard": "standard"}, "defaultVariant": "standard",
      "targeting": {"if": [{"in": [{"var": "targetingKey"}, ["alice", "bob"]]}, "gold", null]}},
    "theme": {"state": "ENABLED", "variants": {"dark": "dark-v2", "light": "light-v1", "classic": "classic"}, "defaultVariant": "classic",
      "targeting": {"fractional": [["dark", 50], ["light", 25], ["classic", 25]]}},
    "checkout-version": {"state": "ENABLED", "variants": {"old": "v1", "new": "v2"}, "defaultVariant": "old",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "2.0.0"]}, "new", null]}}
  }
}`

// flagdOracle is flagd's own evaluator (flagd/core, the engine of the
// flagd daemon) loaded with a flag file: what flagd would answer.
type flagdOracle struct{ ev *flagdeval.JSON }

func newOracle(t *testing.T, flagsJSON string) flagdOracle {
	t.Helper()
	log := flagdlog.NewLogger(nil, false)
	st, err := flagdstore.NewStore(log, []string{"oracle"})
	if err != nil {
		t.Fatal(err)
	}
	ev := flagdeval.NewJSON(log, st)
	if err := ev.SetState(flagdsync.DataSync{FlagData: flagsJSON, Source: "oracle"}); err != nil {
		t.Fatal(err)
	}
	return flagdOracle{ev}
}

// murmur3 is MurmurHash3's x86 32-bit hash with seed 0, the hash flagd's
// fractional operator buckets with, written out here so the expected
// buckets owe nothing to flagd's code or its dependencies.
func murmur3(data []byte) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	var h uint32
	n := len(data)
	for ; len(data) >= 4; data = data[4:] {
		k := binary.LittleEndian.Uint32(data) * c1
		h ^= bits.RotateLeft32(k, 15) * c2
		h = bits.RotateLeft32(h, 13)*5 + 0xe6546b64
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		h ^= bits.RotateLeft32(k*c1, 15) * c2
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	return h ^ h>>16
}

// fractional computes flagd's fractional bucketing independently of
// flagd's code: murmur3 of flag key + targeting key, scaled onto the
// total weight.
func fractional(flagKey, targetingKey string, variants []string, weights []uint64) string {
	var total uint64
	for _, w := range weights {
		total += w
	}
	bucket := uint64(murmur3([]byte(flagKey+targetingKey))) * total >> 32
	var end uint64
	for i, w := range weights {
		if end += w; bucket < end {
			return variants[i]
		}
	}
	return ""
}

// The real OpenFeature Go SDK with its OFREP provider, pointed at a
// running gateway, gets flagd's answers for boolean and string flags:
// value, variant and reason, per caller (targetingKey), for targeting
// rules and fractional splits; the splits bucket as flagd does.
func TestSDKEvaluatesLikeFlagd(t *testing.T) {
	ups := upstreams(t)
	e := start(t, backendsYAML+`flags: {file: DIR/flags.json}
routes:
  - {name: rest, backend: v1}
`, sdkFlags, ups)
	client := sdkClient(t, e)
	oracle := newOracle(t, sdkFlags)
	ctx := context.Background()

	type caller struct {
		key   string
		attrs map[string]any
	}
	callers := []caller{
		{"alice", map[string]any{"email": "alice@example.com", "version": "2.1.0"}},
		{"bob", map[string]any{"email": "bob@other.org", "version": "1.9.9"}},
		{"carol", map[string]any{"email": "carol@example.com", "version": "2.0.0"}},
	}
	for i := range 120 {
		callers = append(callers, caller{fmt.Sprintf("user-%04d", i), map[string]any{
			"email": fmt.Sprintf("u%d@%s", i, []string{"example.com", "example.org"}[i%2]), "version": fmt.Sprintf("%d.%d.0", 1+i%3, i%10)}})
	}
	geoOn, themes := 0, map[string]int{}
	for _, c := range callers {
		bools, strs := map[string]openfeature.BooleanEvaluationDetails{}, map[string]openfeature.StringEvaluationDetails{}
		ec := openfeature.NewEvaluationContext(c.key, c.attrs)
		flat := map[string]any{"targetingKey": c.key}
		for k, v := range c.attrs {
			flat[k] = v
		}
		for _, key := range []string{"geo-report", "staff-tools", "retired"} {
			got, err := client.BooleanValueDetails(ctx, key, true, ec)
			if err != nil {
				t.Fatalf("%s %s: %v", c.key, key, err)
			}
			want, variant, reason, _, ferr := oracle.ev.ResolveBooleanValue(ctx, "", key, flat)
			if ferr != nil {
				t.Fatalf("oracle %s: %v", key, ferr)
			}
			if reason == "DISABLED" {
				want = true // the SDK's default for a disabled flag
			}
			if got.Value != want || got.Variant != variant || string(got.Reason) != reason {
				t.Errorf("%s %s: SDK %v/%q/%s, flagd %v/%q/%s", c.key, key, got.Value, got.Variant, got.Reason, want, variant, reason)
			}
			bools[key] = got
		}
		for _, key := range []string{"tier", "theme", "checkout-version"} {
			got, err := client.StringValueDetails(ctx, key, "code-default", ec)
			if err != nil {
				t.Fatalf("%s %s: %v", c.key, key, err)
			}
			want, variant, reason, _, ferr := oracle.ev.ResolveStringValue(ctx, "", key, flat)
			if ferr != nil {
				t.Fatalf("oracle %s: %v", key, ferr)
			}
			if got.Value != want || got.Variant != variant || string(got.Reason) != reason {
				t.Errorf("%s %s: SDK %q/%q/%s, flagd %q/%q/%s", c.key, key, got.Value, got.Variant, got.Reason, want, variant, reason)
			}
			strs[key] = got
		}

		// The same answers, computed without flagd's code.
		geo := bools["geo-report"].Value
		if wantGeo := fractional("geo-report", c.key, []string{"on", "off"}, []uint64{30, 70}) == "on"; geo != wantGeo {
			t.Errorf("%s geo-report = %v, bucketing says %v", c.key, geo, wantGeo)
		}
		if geo {
			geoOn++
		}
		theme := strs["theme"]
		if want := fractional("theme", c.key, []string{"dark", "light", "classic"}, []uint64{50, 25, 25}); theme.Variant != want {
			t.Errorf("%s theme = %s, bucketing says %s", c.key, theme.Variant, want)
		}
		themes[theme.Value]++
		staff := bools["staff-tools"].Value
		if want := strings.HasSuffix(c.attrs["email"].(string), "@example.com"); staff != want {
			t.Errorf("%s staff-tools = %v, want %v", c.key, staff, want)
		}
		tier := strs["tier"]
		if gold := c.key == "alice" || c.key == "bob"; gold != (tier.Value == "gold") ||
			(gold && tier.Reason != openfeature.TargetingMatchReason) || (!gold && tier.Reason != openfeature.DefaultReason) {
			t.Errorf("%s tier = %q (%s)", c.key, tier.Value, tier.Reason)
		}
	}
	if n := len(callers); geoOn < n*20/100 || geoOn > n*40/100 || themes["dark-v2"] < n*35/100 || themes["light-v1"] < n*12/100 {
		t.Errorf("splits off: geo-report on for %d of %d callers, themes %v", geoOn, n, themes)
	}

	// Specific answers, as documented by flagd.
	alice := openfeature.NewEvaluationContext("alice", map[string]any{"email": "alice@example.com", "version": "2.1.0"})
	if d, _ := client.StringValueDetails(ctx, "checkout-version", "", alice); d.Value != "v2" || d.Variant != "new" || d.Reason != openfeature.TargetingMatchReason {
		t.Errorf("alice checkout-version: %+v", d)
	}
	if d, _ := client.BooleanValueDetails(ctx, "retired", true, alice); !d.Value || d.Reason != openfeature.DisabledReason {
		t.Errorf("disabled flag: %+v", d)
	}
	if d, _ := client.BooleanValueDetails(ctx, "geo-report", false, alice); d.FlagMetadata["owner"] != "shortlinks" {
		t.Errorf("flag metadata: %+v", d.FlagMetadata)
	}
	// Without a targeting key a fractional split serves the default
	// variant, as flagd does (require_targeting_key is off).
	noKey := openfeature.NewEvaluationContext("", map[string]any{"email": "x@example.com"})
	if d, err := client.BooleanValueDetails(ctx, "geo-report", true, noKey); err != nil || d.Value || d.Variant != "off" || d.Reason != openfeature.DefaultReason {
		t.Errorf("geo-report without targetingKey: %+v %v", d, err)
	}
	// An unknown flag is FLAG_NOT_FOUND with the code default.
	if d, err := client.StringValueDetails(ctx, "nope", "fallback", alice); err == nil || d.Value != "fallback" || d.ErrorCode != openfeature.FlagNotFoundCode {
		t.Errorf("unknown flag: %+v %v", d, err)
	}
}

// agreementFlags: a fractional flag gating an endpoint, and a targeting
// rule on a flag_context attribute gating a UI.
const agreementFlags = `{"flags": {
  "geo-report": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"fractional": [["on", 30], ["off", 70]]}},
  "new-ui": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"in": [{"var": "plan"}, ["pro", "enterprise"]]}, {"fractional": [["on", 50], ["off", 50]]}, "off"]}}
}}`

// For 2,000 callers (whatever -short says), what the SDK learns from the
// running gateway over OFREP for a fractional flag equals what the same
// gateway's router does with that caller's request: the caller the flag
// lets in is served by the flag-gated route's backend (v2), everyone else
// falls through to the catch-all (v1). For a quarter of them the same
// holds for a rule on a flag_context attribute (plan, from X-Plan).
func TestAgreementThroughGateway(t *testing.T) {
	ups := upstreams(t)
	e := start(t, backendsYAML+`flags: {file: DIR/flags.json}
routes:
  - name: geo
    match: {path: "/v1/links/{id}/geo", flag: {key: geo-report, variant: "on"}}
    backend: v2
    key: "header:X-User-ID"
  - name: new-ui
    match: {path_prefix: /app, flag: {key: new-ui, variant: "on"}}
    backend: v2
    key: "header:X-User-ID"
    flag_context: {plan: "header:X-Plan"}
  - {name: rest, backend: v1}
`, agreementFlags, ups)
	client := sdkClient(t, e)

	const callers, workers = 2000, 8
	plans := []string{"free", "pro", "enterprise"}
	var mu sync.Mutex
	geoOn, uiOn := 0, 0
	errs := make(chan string, 20)
	fail := func(format string, args ...any) {
		select {
		case errs <- fmt.Sprintf(format, args...):
		default:
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := context.Background()
			for i := w; i < callers; i += workers {
				user, plan := fmt.Sprintf("caller-%05d", i), plans[i%len(plans)]
				ec := openfeature.NewEvaluationContext(user, map[string]any{"plan": plan})
				geo, err := client.BooleanValueDetails(ctx, "geo-report", false, ec)
				if err != nil || geo.Variant == "" {
					fail("%s geo-report over OFREP: %v %+v", user, err, geo)
					return
				}
				r, err := testkitSend(e, "/v1/links/abc/geo", "X-User-ID", user, "X-Plan", plan)
				if err != nil {
					fail("%s: %v", user, err)
					return
				}
				if want := map[bool]string{true: "v2", false: "v1"}[geo.Value]; servedBy(r) != want {
					fail("%s: OFREP says geo-report=%v, the request was served by %s", user, geo.Value, servedBy(r))
				}
				mu.Lock()
				if geo.Value {
					geoOn++
				}
				mu.Unlock()
				if i%4 != 0 {
					continue // the attribute rule is checked for a quarter of the callers
				}
				ui, err := client.BooleanValueDetails(ctx, "new-ui", false, ec)
				if err != nil || ui.Variant == "" {
					fail("%s new-ui over OFREP: %v %+v", user, err, ui)
					return
				}
				r, err = testkitSend(e, "/app/home", "X-User-ID", user, "X-Plan", plan)
				if err != nil {
					fail("%s: %v", user, err)
					return
				}
				if want := map[bool]string{true: "v2", false: "v1"}[ui.Value]; servedBy(r) != want {
					fail("%s (%s): OFREP says new-ui=%v, the request was served by %s", user, plan, ui.Value, servedBy(r))
				}
				mu.Lock()
				if ui.Value {
					uiOn++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	// The splits are real: about 30% and 2/3 × 50%.
	if n := float64(callers); float64(geoOn) < 0.26*n || float64(geoOn) > 0.34*n || float64(uiOn) < 0.27*n/4 || float64(uiOn) > 0.40*n/4 {
		t.Errorf("geo-report on for %d, new-ui on for %d of %d callers", geoOn, uiOn, callers)
	}
	if got := ups["v2"].Hits.Load(); got != int64(geoOn+uiOn) {
		t.Errorf("v2 served %d requests, want %d", got, geoOn+uiOn)
	}
}

// Known answers of MurmurHash3 x86_32 with seed 0.
func TestMurmur3(t *testing.T) {
	for in, want := range map[string]uint32{"": 0, "a": 0x3c2569b2, "abc": 0xb3dd93fa, "Hello, world!": 0xc0363e43,
		"The quick brown fox jumps over the lazy dog": 0x2e4ff723} {
		if got := murmur3([]byte(in)); got != want {
			t.Errorf("murmur3(%q) = %#x, want %#x", in, got, want)
		}
	}
}
