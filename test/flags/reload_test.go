package flagstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/flags"
	"github.com/umbragw/umbra/internal/gateway"
	"github.com/umbragw/umbra/test/testkit"
)

// Two valid versions of a flag file: every caller's answers under each
// are computed independently (fractional bucketing, starts_with).
const (
	loadFlagsA = `{"flags": {
  "beta": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"fractional": [["on", 50], ["off", 50]]}},
  "color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}
}}`
	loadFlagsB = `{"flags": {
  "beta": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"starts_with": [{"var": "targetingKey"}, "user-1"]}, "on", "off"]}},
  "color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "blue"}
}}`
	loadFlagsBroken = `{"flags": {"beta": {"state": "ENABLED", "variants": {"on": true`
)

// answers is what one caller gets under one flag file version.
type answers struct{ beta, color string }

func (a answers) header() string { return "beta=" + a.beta + ",color=" + a.color }

func versionA(user string) answers {
	return answers{fractional("beta", user, []string{"on", "off"}, []uint64{50, 50}), "red"}
}

func versionB(user string) answers {
	if strings.HasPrefix(user, "user-1") {
		return answers{"on", "blue"}
	}
	return answers{"off", "blue"}
}

// While 8 goroutines evaluate over OFREP (single and bulk) and call a
// flag-gated route non-stop, the flag file is replaced 20 times,
// alternating two valid versions, and once with a broken file: no request
// fails, every answer is one version's answer for that caller (a bulk
// answer wholly one version's), the broken file is rejected with a log
// line and the flags before it keep serving, and each valid version is
// loaded once. A forwarded X-Umbra-Flags header should be the routing
// version's whole answer too; that is the known bug of
// TestKnownBugFlagVersionPerRequest, counted here and logged.
func TestFlagReloadUnderLoad(t *testing.T) {
	ups := upstreams(t)
	e := start(t, backendsYAML+`flags: {file: DIR/flags.json}
routes:
  - name: beta
    match: {path_prefix: /app, flag: {key: beta, variant: "on"}}
    backend: v2
    key: "header:X-User-ID"
    forward_flags: [beta, color]
  - {name: rest, backend: v1}
`, loadFlagsA, ups)

	users := make([]string, 24)
	differ := 0
	for i := range users {
		users[i] = fmt.Sprintf("user-%02d", i)
		if versionA(users[i]).beta != versionB(users[i]).beta {
			differ++
		}
	}
	if differ < 6 {
		t.Fatalf("only %d callers get different answers from the two versions", differ)
	}

	var requests, failures, unpinned atomic.Int64
	unpinnedEx := make(chan string, 1)
	var mu sync.Mutex
	seen := map[string]int{} // "op/version" observed
	errs := make(chan string, 20)
	fail := func(format string, args ...any) {
		failures.Add(1)
		select {
		case errs <- fmt.Sprintf(format, args...):
		default:
		}
	}
	// which returns the versions a got is consistent with ("A", "B", "AB")
	// or "" for none.
	which := func(user string, ok func(answers) bool) string {
		v := ""
		if ok(versionA(user)) {
			v += "A"
		}
		if ok(versionB(user)) {
			v += "B"
		}
		return v
	}
	one := func(g, i int) {
		user := users[(g*7+i)%len(users)]
		var op, v string
		switch i % 3 {
		case 0:
			op = "single"
			r, err := ofrepPost(e.C, e.URL+"/ofrep/v1/evaluate/flags/beta", evalBody("targetingKey", user))
			if err != nil || r.Status != 200 {
				fail("OFREP beta for %s: %v %d %s", user, err, r.Status, r.Body)
				return
			}
			a := decodeNoT[ofrepAnswer](r.Body)
			if v = which(user, func(x answers) bool { return x.beta == a.Variant }); v == "" {
				fail("OFREP beta for %s: %q, neither version's answer (A %v, B %v)", user, a.Variant, versionA(user), versionB(user))
			}
		case 1:
			op = "bulk"
			r, err := ofrepPost(e.C, e.URL+"/ofrep/v1/evaluate/flags", evalBody("targetingKey", user))
			if err != nil || r.Status != 200 {
				fail("OFREP bulk for %s: %v %d %s", user, err, r.Status, r.Body)
				return
			}
			got := answers{}
			for _, f := range decodeNoT[bulkAnswer](r.Body).Flags {
				switch f.Key {
				case "beta":
					got.beta = f.Variant
				case "color":
					got.color = f.Variant
				}
			}
			if v = which(user, func(x answers) bool { return x == got }); v == "" {
				fail("OFREP bulk for %s: %v, neither version's answer (A %v, B %v)", user, got, versionA(user), versionB(user))
			}
		case 2:
			op = "route"
			r, err := testkitSend(e, "/app/home", "X-User-ID", user)
			if err != nil || r.Status != 200 {
				fail("GET /app/home for %s: %v %d %s", user, err, r.Status, r.Body)
				return
			}
			by := servedBy(r)
			if v = which(user, func(x answers) bool { return by == map[string]string{"on": "v2", "off": "v1"}[x.beta] }); v == "" {
				fail("GET /app/home for %s: served by %s, neither version's answer (A %v, B %v)", user, by, versionA(user), versionB(user))
				return
			}
			if by == "v2" {
				// The header must be the routing version's whole answer.
				hdr := decodeNoT[testkit.Echo](r.Body).Flags
				if len(hdr) != 1 || which(user, func(x answers) bool { return x.beta == "on" && hdr[0] == x.header() }) == "" {
					unpinned.Add(1)
					select {
					case unpinnedEx <- fmt.Sprintf("%s routed to v2 (beta on) got X-Umbra-Flags %q; A %v, B %v", user, hdr, versionA(user), versionB(user)):
					default:
					}
				}
			}
		}
		requests.Add(1)
		if v == "A" || v == "B" {
			mu.Lock()
			seen[op+"/"+v]++
			mu.Unlock()
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				one(g, i)
			}
		})
	}
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt()

	cur, other := loadFlagsA, loadFlagsB
	for i := range 20 {
		if i == 10 {
			good := e.flagsInfo(t)
			testkit.WriteAtomic(t, e.Flags, loadFlagsBroken)
			testkit.Wait.UntilTrue(t, "the broken flag file to be rejected", func() bool {
				return len(e.Log.Lines("flag file rejected; keeping the running flags")) > 0
			})
			time.Sleep(100 * time.Millisecond) // load on the kept flags
			if fi := e.flagsInfo(t); fi.Hash != good.Hash || fi.Version != good.Version {
				t.Errorf("after the broken file: flags %.12s v%d, want the previous %.12s v%d", fi.Hash, fi.Version, good.Hash, good.Version)
			}
		}
		testkit.WriteAtomic(t, e.Flags, other)
		e.waitFlags(t, other)
		time.Sleep(30 * time.Millisecond) // load on this version
		cur, other = other, cur
	}
	halt()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	t.Logf("%d requests, %d failed; answers by version: %v", requests.Load(), failures.Load(), seen)
	if n := unpinned.Load(); n > 0 {
		knownBug(t, "%d requests routed by one flag version carried another version's X-Umbra-Flags, e.g. %s", n, <-unpinnedEx)
	}
	for _, op := range []string{"single", "bulk", "route"} {
		if seen[op+"/A"] == 0 || seen[op+"/B"] == 0 {
			t.Errorf("%s: answers of version A %d, of version B %d: want both seen", op, seen[op+"/A"], seen[op+"/B"])
		}
	}
	if fi := e.flagsInfo(t); fi.Hash != sha(cur) || fi.Version != 21 {
		t.Errorf("finally flags %.12s v%d, want the last file (%.12s) at version 21 (1 + 20 reloads)", fi.Hash, fi.Version, sha(cur))
	}
	// One rejection, or two when the machine stalled over 200 ms between
	// writing the next version and renaming it (a watch event in between
	// reloads the still broken file).
	rejected := e.Log.Lines("flag file rejected; keeping the running flags")
	if len(rejected) == 0 || len(rejected) > 2 {
		t.Errorf("%d rejection log lines, want 1", len(rejected))
	}
	for _, l := range rejected {
		if !strings.Contains(l, "flags.json:1:") || !strings.Contains(l, "invalid JSON") {
			t.Errorf("rejection log line %q does not name flags.json:LINE:COL and the JSON problem", l)
		}
	}
	// The last log line follows the last swap: wait for it.
	testkit.Wait.UntilTrue(t, "the last reload's log line", func() bool { return len(e.Log.Lines("flags reloaded")) >= 20 })
	if n := len(e.Log.Lines("flags reloaded")); n != 20 {
		t.Errorf("%d \"flags reloaded\" log lines, want 20", n)
	}
}

const refFlags = `{"flags": {
  "beta": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"==": [{"var": "targetingKey"}, "alice"]}, "on", "off"]}},
  "color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}
}}`

const refGood = backendsYAML + `flags: {file: DIR/flags.json}
routes:
  - name: beta
    match: {path_prefix: /beta, flag: {key: beta, variant: "on"}}
    dark: true
    backend: v2
    key: "header:X-User-ID"
  - {name: rest, backend: v1}
`

// refBad names a flag the flag file lacks, a variant a flag lacks and an
// unknown forwarded flag, each on its own route.
const refBad = backendsYAML + `flags: {file: DIR/flags.json}
routes:
  - name: beta
    match: {path_prefix: /beta, flag: {key: beta, variant: "on"}}
    dark: true
    backend: v2
    key: "header:X-User-ID"
  - name: ghost
    match: {path_prefix: /ghost, flag: {key: ghost, variant: "on"}}
    backend: v2
  - name: maybe
    match: {path_prefix: /maybe, flag: {key: beta, variant: "maybe"}}
    backend: v2
  - name: fwd
    match: {path_prefix: /fwd}
    backend: v2
    forward_flags: [color, phantom]
  - {name: rest, backend: v1}
`

// A config whose routes name flags or variants the flag file lacks loads
// (config.Load does not read the flag file) but fails `umbra validate`'s
// compile (gateway.Validate) with each error positioned at its route; the
// running gateway rejects it on Reload and keeps its config, its flags
// and its flag file watch. A flag file that drops a flag a route needs is
// rejected by the watch. A good config reload restarts the watch on the
// new flag set.
func TestMissingFlagRejected(t *testing.T) {
	ups := upstreams(t)
	e := start(t, refGood, refFlags, ups)

	bad := e.configText(refBad)
	badPath := e.Dir + "/bad.yaml"
	testkit.WriteFile(t, badPath, bad)
	cfg, err := config.Load(badPath)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	err = gateway.Validate(cfg)
	var list config.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("gateway.Validate: %v, want a config.ErrorList", err)
	}
	want := []struct{ route, msg string }{
		{"ghost", `route "ghost" match.flag names flag "ghost", which the flag file does not define`},
		{"maybe", `route "maybe" match.flag wants variant "maybe" of flag "beta", which has "off", "on"`},
		{"fwd", `route "fwd" forward_flags names flag "phantom", which the flag file does not define`},
	}
	if len(list) != len(want) {
		t.Fatalf("gateway.Validate: %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		line, col := routePos(bad, w.route)
		if got := list[i]; got.File != badPath || got.Line != line || got.Col != col || got.Msg != w.msg {
			t.Errorf("error %d: %v\nwant %s:%d:%d: %s", i, got, badPath, line, col, w.msg)
		}
	}

	// The running gateway: the same file is rejected on Reload.
	alice := []string{"X-User-ID", "alice"}
	testkit.WriteAtomic(t, e.CfgPath, bad)
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), `names flag "ghost"`) {
		t.Fatalf("Reload of the bad config: %v", err)
	}
	if lines := e.Log.Lines("config reload rejected; keeping the running config", `names flag \"ghost\"`); len(lines) != 1 {
		t.Errorf("rejection log lines: %q", e.Log.Lines("config reload rejected"))
	}
	m := testkit.Scrape(t, e.C, e.AdminURL)
	if n, _ := m.Sum("umbra_config_reloads_total", testkit.Labels("result", "failure")); n != 1 {
		t.Errorf("umbra_config_reloads_total{result=failure} = %v", n)
	}
	for path, want := range map[string]string{"/beta": "v2", "/ghost": "v1", "/fwd": "v1"} {
		if got := servedBy(e.get(t, path, alice...)); got != want {
			t.Errorf("after the rejected reload, alice's %s went to %s, want %s (the old config)", path, got, want)
		}
	}
	if got := servedBy(e.get(t, "/beta", "X-User-ID", "bob")); got != "404" {
		t.Errorf("bob's /beta: %s, want the dark route's 404", got)
	}

	// The flag file watch survived the rejected reload.
	withBob := strings.Replace(refFlags, `"alice"]}, "on"`, `"bob"]}, "on"`, 1)
	testkit.WriteAtomic(t, e.Flags, withBob)
	e.waitFlags(t, withBob)
	if got := servedBy(e.get(t, "/beta", "X-User-ID", "bob")); got != "v2" {
		t.Errorf("bob's /beta after the flag edit: %s, want v2", got)
	}

	// A flag file without a flag a route matches on is rejected.
	noBeta := `{"flags": {"color": {"state": "ENABLED", "variants": {"red": "red"}, "defaultVariant": "red"}}}`
	testkit.WriteAtomic(t, e.Flags, noBeta)
	testkit.Wait.UntilTrue(t, "the flag file without beta to be rejected", func() bool {
		return len(e.Log.Lines("flag file rejected", `route \"beta\" match.flag names flag \"beta\"`)) > 0
	})
	if fi := e.flagsInfo(t); fi.Hash != sha(withBob) {
		t.Errorf("after the rejected flag file the running flags are %.12s, want the previous ones", fi.Hash)
	}
	if got := servedBy(e.get(t, "/beta", "X-User-ID", "bob")); got != "v2" {
		t.Errorf("bob's /beta after the rejected flag file: %s, want v2", got)
	}

	// A good config reload (one more flag-gated route) loads the current
	// flag file into a new flag set and watches it.
	testkit.WriteAtomic(t, e.Flags, withBob)
	e.waitFlags(t, withBob)
	good := strings.Replace(refGood, "  - {name: rest", `  - name: red
    match: {path_prefix: /red, flag: {key: color, variant: red}}
    backend: v2
  - {name: rest`, 1)
	testkit.WriteAtomic(t, e.CfgPath, e.configText(good))
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload of a good config: %v", err)
	}
	if got := servedBy(e.get(t, "/red")); got != "v2" {
		t.Errorf("/red after the good reload: %s, want v2", got)
	}
	blue := strings.Replace(withBob, `"defaultVariant": "red"`, `"defaultVariant": "blue"`, 1)
	testkit.WriteAtomic(t, e.Flags, blue)
	e.waitFlags(t, blue)
	if got := servedBy(e.get(t, "/red")); got != "v1" {
		t.Errorf("/red after color turned blue: %s, want v1 (the route no longer matches)", got)
	}
}

// routePos is the line and column of route name's mapping in yaml text:
// the "name" key after its "- ".
func routePos(yaml, name string) (line, col int) {
	for i, l := range strings.Split(yaml, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "- name: "+name) || strings.HasPrefix(strings.TrimSpace(l), "- {name: "+name+",") {
			return i + 1, strings.Index(l, "name") + 1
		}
	}
	return 0, 0
}

// knownBug reports a reproduced bug that is not fixed yet: an error with
// UMBRA_KNOWN_BUGS=1, else a log line, so the suite stays green until the
// fix lands.
func knownBug(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("UMBRA_KNOWN_BUGS") != "" {
		t.Errorf("KNOWN BUG: "+format, args...)
		return
	}
	t.Logf("KNOWN BUG (UMBRA_KNOWN_BUGS=1 fails on it): "+format, args...)
}

// pinFlags has a gate flag (on in version A, off in B) and 16 forwarded
// flags ("a" in A, "b" in B) whose rules read $flagd.timestamp, so none
// is cached and a request's evaluations take a while.
func pinFlags(variant, gate string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"flags": {"gate": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": %q}`, gate)
	other := map[string]string{"a": "b", "b": "a"}[variant]
	for i := range 16 {
		fmt.Fprintf(&b, `,
  "f%02d": {"state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "a",
    "targeting": {"if": [{">": [{"var": "$flagd.timestamp"}, 0]}, %q, %q]}}`, i, variant, other)
	}
	b.WriteString("}}")
	return b.String()
}

// KNOWN BUG, skipped unless UMBRA_KNOWN_BUGS=1. A request's flags are not
// evaluated on one flag set: the router's flag condition
// (flags.Matcher.Match) and X-Umbra-Flags (proxy.forwardFlags ->
// flags.ForwardHeaderFor, one Evaluator.cur load per flag) each read the
// evaluator's current flag set, so a flag file swapped in between them
// routes a request by one version and forwards another version's variants,
// or a mix of both within one header. Here version A opens the gate and
// forwards f00..f15=a; version B closes the gate. Every answer of the
// gated route must carry "gate=on" and 16 times "=a".
//
// One header never mixes versions (ForwardHeaderFor reads one flag set):
// that is always asserted. That the route decision and the header come
// from the same version is a known issue (the router's flag condition
// reads the flag set on its own): counted and logged, asserted only with
// UMBRA_KNOWN_BUGS=1.
func TestFlagVersionPerRequest(t *testing.T) {
	keys := []string{"gate"}
	for i := range 16 {
		keys = append(keys, fmt.Sprintf("f%02d", i))
	}
	ups := upstreams(t)
	flagsA, flagsB := pinFlags("a", "on"), pinFlags("b", "off")
	e := start(t, backendsYAML+`flags: {file: DIR/flags.json}
routes:
  - name: gated
    match: {path: /gated, flag: {key: gate, variant: "on"}}
    backend: v2
    key: "header:X-User-ID"
    forward_flags: [`+strings.Join(keys, ", ")+`]
  - {name: rest, backend: v1}
`, flagsA, ups)
	want := "gate=on"
	for _, k := range keys[1:] {
		want += "," + k + "=a"
	}
	var mixed, skewed, total atomic.Int64
	example := make(chan string, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := testkitSend(e, "/gated", "X-User-ID", fmt.Sprintf("u%d", g))
				if err != nil || r.Status != 200 || servedBy(r) != "v2" {
					continue // version B: the gate is closed
				}
				total.Add(1)
				got := decodeNoT[testkit.Echo](r.Body).Flags
				switch {
				case len(got) == 1 && got[0] == want:
				case len(got) == 1 && !strings.Contains(got[0], "=a") && strings.Contains(got[0], "=b"):
					skewed.Add(1) // routed by version A, header from version B
				default:
					mixed.Add(1)
					select {
					case example <- fmt.Sprintf("%q", got):
					default:
					}
				}
			}
		})
	}
	for i := range 20 {
		testkit.WriteAtomic(t, e.Flags, map[bool]string{true: flagsB, false: flagsA}[i%2 == 0])
		time.Sleep(250 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := mixed.Load(); n > 0 {
		t.Errorf("%d of %d requests carried an X-Umbra-Flags mixing two flag versions, e.g. %s; want %q", n, total.Load(), <-example, want)
	}
	if n := skewed.Load(); n > 0 {
		if os.Getenv("UMBRA_KNOWN_BUGS") != "" {
			t.Errorf("%d of %d requests routed by version A carried version B's X-Umbra-Flags", n, total.Load())
		} else {
			t.Logf("known issue: %d of %d requests routed by version A carried version B's X-Umbra-Flags", n, total.Load())
		}
	}
}

// A broken flag file is logged once per content: the watch reloads on
// any event in the file's directory, and writing other files there (logs,
// other configs, an editor's swap files) must not repeat the rejection.
// A new broken content is logged again; a file flagd loads with schema
// warnings is loaded, and the warnings are logged and listed by the
// admin API.
func TestBrokenFlagFileLoggedOncePerChange(t *testing.T) {
	ups := upstreams(t)
	good := `{"flags": {"f": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a"}}}`
	e := start(t, backendsYAML+`flags: {file: DIR/flags.json}
routes:
  - {name: rest, backend: v1}
`, good, ups)
	if r := testkit.Do(t, e.C, "GET", e.AdminURL+"/api/v1/flags", nil); !strings.Contains(string(r.Body), `"warnings": []`) {
		t.Errorf("GET /api/v1/flags of a clean file: %s, want \"warnings\": []", r.Body)
	}
	const rejectedLine = "flag file rejected; keeping the running flags"
	rejections := func() int { return len(e.Log.Lines(rejectedLine)) }
	// unrelated writes, each after the watch's debounce so each reloads
	busy := func(round int) {
		for i := range 6 {
			testkit.WriteFile(t, filepath.Join(e.Dir, fmt.Sprintf("other-%d.txt", i)), fmt.Sprintf("round %d", round))
			time.Sleep(flags.WatchDelay + 100*time.Millisecond)
		}
		time.Sleep(2 * flags.WatchDelay)
	}

	testkit.WriteAtomic(t, e.Flags, `{"flags": {"f": {"state": "ENABLED"`)
	testkit.Wait.UntilTrue(t, "the broken flag file to be rejected", func() bool { return rejections() == 1 })
	busy(1)
	if n := rejections(); n != 1 {
		t.Fatalf("%d rejection log lines after 6 writes to other files, want 1:\n%s", n, strings.Join(e.Log.Lines(rejectedLine), "\n"))
	}

	// another broken content: logged once more
	testkit.WriteAtomic(t, e.Flags, `{"flags": {"f": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "b"}}}`)
	testkit.Wait.UntilTrue(t, "the second broken content to be rejected", func() bool { return rejections() == 2 })
	busy(2)
	if n := rejections(); n != 2 {
		t.Fatalf("%d rejection log lines, want 2", n)
	}
	if l := e.Log.Lines(rejectedLine, `defaultVariant \"b\" is not one of its variants`); len(l) != 1 {
		t.Errorf("the second rejection does not name the bad defaultVariant: %q", e.Log.Lines(rejectedLine))
	}

	// a file with a schema warning (a v-prefixed version) loads
	warned := `{"flags": {"f": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a",
  "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "v2"]}, "b", null]}}}}`
	testkit.WriteAtomic(t, e.Flags, warned)
	fi := e.waitFlags(t, warned)
	testkit.Wait.UntilTrue(t, "the warning to be logged", func() bool {
		return len(e.Log.Lines("flag file loaded with warnings", `flag \"f\" at /targeting`)) == 1
	})
	var admin struct {
		Warnings []string `json:"warnings"`
	}
	if r := testkit.Do(t, e.C, "GET", e.AdminURL+"/api/v1/flags", nil); json.Unmarshal(r.Body, &admin) != nil ||
		len(admin.Warnings) == 0 || !strings.Contains(admin.Warnings[0], `flags.json:1:12: flag "f" at /targeting`) {
		t.Errorf("GET /api/v1/flags warnings: %q", admin.Warnings)
	}
	r, err := ofrepPost(e.C, e.URL+"/ofrep/v1/evaluate/flags/f", evalBody("version", "2.1"))
	if err != nil || r.Status != 200 || testkit.Decode[ofrepAnswer](t, r.Body).Variant != "b" {
		t.Errorf("the warned flag evaluates: %v %d %s", err, r.Status, r.Body)
	}
	busy(3)
	if n, m := rejections(), len(e.Log.Lines("flag file loaded with warnings")); n != 2 || m != 1 {
		t.Errorf("after more writes: %d rejections (want 2), %d warning lines (want 1)", n, m)
	}
	if v := e.flagsInfo(t).Version; v != fi.Version {
		t.Errorf("unrelated writes changed the flag version %d -> %d", fi.Version, v)
	}
}
