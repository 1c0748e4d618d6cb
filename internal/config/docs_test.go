package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const docsFile = "../../docs/config.md"

func readDocs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docsExample returns the fenced yaml block under "## Complete example"
// and the line of the file it starts on.
func docsExample(t *testing.T) (string, int) {
	t.Helper()
	example, line, err := exampleIn(readDocs(t))
	if err != nil {
		t.Fatalf("%s: %v", docsFile, err)
	}
	return example, line
}

func exampleIn(docs string) (string, int, error) {
	lines := strings.Split(docs, "\n")
	section, start := false, -1
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "## "):
			if start >= 0 {
				return "", 0, errors.New("the yaml block under ## Complete example is not closed")
			}
			section = strings.TrimSpace(l) == "## Complete example"
		case section && start < 0 && strings.TrimSpace(l) == "```yaml":
			start = i + 1
		case start >= 0 && strings.TrimSpace(l) == "```":
			return strings.Join(lines[start:i], "\n") + "\n", start + 1, nil
		}
	}
	return "", 0, errors.New("no ```yaml block under ## Complete example")
}

// writeExampleFiles writes stand-ins for the files the example names
// under /etc/umbra/ into dir.
func writeExampleFiles(t *testing.T, dir string) {
	writeFile(t, filepath.Join(dir, "admin.token"), "0123456789abcdef\n")
	writeCert(t, filepath.Join(dir, "tls", "umbra.crt"), filepath.Join(dir, "tls", "umbra.key"))
	writeCert(t, filepath.Join(dir, "tls", "internal-ca.pem"), filepath.Join(dir, "tls", "internal-ca.key"))
	writeFlagFiles(t, dir) // flags_test.go
	writeFile(t, filepath.Join(dir, "payments.hoverfly.json"), `{"data":{"pairs":[]},"meta":{"schemaVersion":"v5"}}`)
	writeFile(t, filepath.Join(dir, "etcd.password"), "s3cret\n")
}

// The complete example must load: only /etc/umbra/ is replaced by a
// directory holding stand-ins for the files the example names.
func TestDocsExampleValidates(t *testing.T) {
	example, line := docsExample(t)
	dir := t.TempDir()
	writeExampleFiles(t, dir)
	text := strings.ReplaceAll(example, "/etc/umbra/", dir+"/")
	cfg, err := Parse("docs/config.md example", []byte(text))
	if err != nil {
		t.Fatalf("the complete example (docs/config.md line %d on) does not load:\n%v", line, err)
	}
	files := []string{cfg.Admin.TokenFile}
	if cfg.TLS != nil {
		files = append(files, cfg.TLS.CertFile, cfg.TLS.KeyFile)
	}
	for _, b := range cfg.Backends {
		if b.TLS != nil && b.TLS.CAFile != "" {
			files = append(files, b.TLS.CAFile)
		}
	}
	if len(files) != 4 {
		t.Errorf("the example should name a token file, a key pair and a CA file; it names %q", files)
	}
	for _, f := range files {
		if !strings.HasPrefix(f, dir) {
			t.Errorf("file %q is not one of the stand-ins", f)
		}
	}
	if isLoopback(cfg.Admin.Listen) {
		t.Errorf("the example should show an admin listener off loopback (with its token)")
	}
}

// yamlKeys lists the YAML key paths of a type, written as docs/config.md
// writes them: "backends.NAME.health.max_fails", "routes[].shadow[].percent".
func yamlKeys(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		if isLeaf(t.Elem()) {
			return
		}
		yamlKeys(t.Elem(), prefix+"[]", out)
		return
	case reflect.Map:
		if isLeaf(t.Elem()) {
			return
		}
		yamlKeys(t.Elem(), prefix+".NAME", out)
		return
	case reflect.Struct:
	default:
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" || !f.IsExported() {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		*out = append(*out, key)
		yamlKeys(f.Type, key, out)
	}
}

func isLeaf(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() != reflect.Struct && t.Kind() != reflect.Slice && t.Kind() != reflect.Map
}

func allKeys(t *testing.T) []string {
	var keys []string
	yamlKeys(reflect.TypeOf(Config{}), "", &keys)
	if len(keys) < 50 {
		t.Fatalf("only %d keys found: %v", len(keys), keys)
	}
	return keys
}

// Every key of the config types has a row in docs/config.md.
func TestDocsDocumentEveryKey(t *testing.T) {
	docs := readDocs(t)
	for _, k := range allKeys(t) {
		if !strings.Contains(docs, "| `"+k+"` |") {
			t.Errorf("docs/config.md has no table row for key `%s`", k)
		}
	}
}

// The complete example uses every key (for lists, in some element; for
// maps, in some entry).
func TestDocsExampleUsesEveryKey(t *testing.T) {
	example, _ := docsExample(t)
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(example), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range allKeys(t) {
		if !hasKey([]*yaml.Node{doc.Content[0]}, splitKey(k)) {
			t.Errorf("the complete example does not use `%s`", k)
		}
	}
}

var keyStepRe = regexp.MustCompile(`[^.\[\]]+|\[\]`)

func splitKey(k string) []string { return keyStepRe.FindAllString(k, -1) }

// hasKey reports whether the path of steps exists from any of nodes.
func hasKey(nodes []*yaml.Node, steps []string) bool {
	if len(steps) == 0 {
		return len(nodes) > 0
	}
	var next []*yaml.Node
	for _, n := range nodes {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		switch {
		case steps[0] == "[]" && n.Kind == yaml.SequenceNode:
			next = append(next, n.Content...)
		case steps[0] == "NAME" && n.Kind == yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				next = append(next, n.Content[i])
			}
		case n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == steps[0] {
					next = append(next, n.Content[i+1])
				}
			}
		}
	}
	return hasKey(next, steps[1:])
}

// defaultBlocks are the DefaultX values and the key each one is the
// default of, as docs/config.md writes keys.
var defaultBlocks = []struct {
	prefix string
	value  any
}{
	{"", DefaultConfig},
	{"backends.NAME", DefaultBackend},
	{"routes[]", DefaultRoute},
	{"routes[].shadow[]", DefaultShadow},
	{"routes[].compare", DefaultCompare},
	{"routes[].rollout", DefaultRollout},
	{"routes[].rollout.steps[].shadow", DefaultShadowStep},
	{"routes[].adoption", DefaultAdoption},
	{"cluster", DefaultCluster},
	{"egress", DefaultEgress},
	{"egress.services.NAME", DefaultEgressService},
	{"flags", DefaultFlags},
}

// codeDefaults lists every key with a default in the DefaultX values
// (zero fields have none), with its value.
func codeDefaults(prefix string, v reflect.Value, out map[string]any) {
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() || v.Field(i).IsZero() {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		if fv := v.Field(i); fv.Kind() == reflect.Struct {
			codeDefaults(key, fv, out)
		} else {
			out[key] = fv.Interface()
		}
	}
}

// The default of every key written in docs/config.md is the code's: each
// non-zero field of a DefaultX value has a row whose Default column says
// that value, and the defaults validation derives (from other values) are
// documented as such.
func TestDocsDefaultsMatchCode(t *testing.T) {
	docs := readDocs(t)
	defaults := map[string]any{
		"routes[].canary.cookie": DefaultCanaryCookie,
		"routes[].canary.weight": Percent(0),
	}
	for _, b := range defaultBlocks {
		codeDefaults(b.prefix, reflect.ValueOf(b.value), defaults)
	}
	if len(defaults) < 50 {
		t.Fatalf("only %d defaults found: %v", len(defaults), defaults)
	}
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cell, ok := defaultCell(docs, k)
		if !ok {
			t.Errorf("docs/config.md: no row with a `default` for `%s`", k)
			continue
		}
		var got any
		var err error
		switch want := defaults[k].(type) {
		case Duration:
			var d time.Duration
			d, err = time.ParseDuration(cell)
			got = Duration(d)
		case ByteSize:
			got, err = parseByteSize(cell)
		case int:
			got, err = strconv.Atoi(cell)
		case float64:
			got, err = strconv.ParseFloat(cell, 64)
		case Percent:
			var f float64
			f, err = strconv.ParseFloat(cell, 64)
			got = Percent(f)
		case string:
			got = cell
		case []string:
			got = strings.Fields(strings.NewReplacer("[", "", "]", "", ",", " ").Replace(cell))
		default:
			t.Fatalf("%s: unhandled type %T", k, want)
		}
		if err != nil || !reflect.DeepEqual(got, defaults[k]) {
			want := defaults[k]
			if d, ok := want.(Duration); ok {
				want = d.D()
			}
			t.Errorf("docs/config.md: `%s` defaults to `%s`, the code to %v", k, cell, want)
		}
	}
}

// A config that writes no optional key gets exactly the DefaultX values:
// applyDefaults and the table above agree with what loading does.
func TestLoadingAppliesDefaults(t *testing.T) {
	cfg := mustParse(t, `backends:
  v1: {endpoints: ["http://127.0.0.1:9001"]}
  v2: {endpoints: ["http://127.0.0.1:9002"]}
routes:
  - name: r
    backend: v1
    shadow: [{backend: v2, percent: 5, max_in_flight: 0, timeout: 0s}]
    compare: {}
    canary: {backend: v2}
    rollout: {steps: [{shadow: {}}, {promote: {}}]}
`)
	if cfg.Server != DefaultConfig.Server || cfg.Comparison != DefaultConfig.Comparison || cfg.Store != DefaultConfig.Store ||
		cfg.Listen != DefaultConfig.Listen || cfg.Admin != DefaultConfig.Admin || cfg.DataDir != DefaultConfig.DataDir {
		t.Errorf("top level: %+v", cfg)
	}
	if b := cfg.Backends["v1"]; b.Balance != DefaultBackend.Balance || b.Host != DefaultBackend.Host {
		t.Errorf("backend: %+v", b)
	}
	r := cfg.Routes[0]
	s := *r.Shadow[0]
	s.Backend, s.Percent = "", 0
	if !reflect.DeepEqual(s, DefaultShadow) {
		t.Errorf("shadow (zero values written are left out):\n%+v\nwant\n%+v", s, DefaultShadow)
	}
	if !reflect.DeepEqual(r.Upgrades, DefaultRoute.Upgrades) || &r.Upgrades[0] == &DefaultRoute.Upgrades[0] {
		t.Errorf("upgrades %v: want a copy of %v", r.Upgrades, DefaultRoute.Upgrades)
	}
	if r.Rollout.Analysis != DefaultRollout.Analysis || r.Rollout.Interval != DefaultRollout.Interval || *r.Rollout.Steps[0].Shadow != DefaultShadowStep {
		t.Errorf("rollout: %+v", r.Rollout)
	}
	if r.Compare.Thresholds != DefaultCompare.Thresholds || r.Compare.MaxBody != DefaultCompare.MaxBody {
		t.Errorf("compare: %+v", r.Compare)
	}
}

var codeSpanRe = regexp.MustCompile("`([^`]*)`")

// defaultCell returns the first `quoted` value of the Default column (the
// third) of key's table row.
func defaultCell(docs, key string) (string, bool) {
	for _, l := range strings.Split(docs, "\n") {
		if !strings.HasPrefix(l, "| `"+key+"` |") {
			continue
		}
		cells := strings.Split(l, " | ")
		if len(cells) < 4 {
			return "", false
		}
		m := codeSpanRe.FindStringSubmatch(cells[2])
		if m == nil {
			return "", false
		}
		return m[1], true
	}
	return "", false
}

func TestDocsSections(t *testing.T) {
	docs := readDocs(t)
	for _, h := range []string{"## Route matching and precedence", "## Errors and `umbra validate`", "## Reloading", "## Complete example"} {
		if !strings.Contains(docs, "\n"+h+"\n") {
			t.Errorf("docs/config.md lacks the section %q", h)
		}
	}
}
