package config

import (
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/jsonpath"
)

// writeFlagFiles writes stand-ins for the flag-related files of the
// docs example under dir.
func writeFlagFiles(t *testing.T, dir string) {
	writeFile(t, filepath.Join(dir, "flags.json"), `{"flags": {}}`)
	writeFile(t, filepath.Join(dir, "ofrep-api-keys"), "# front ends\nweb k-web-123\nk-mobile-456\n")
	writeFile(t, filepath.Join(dir, "ofrep.token"), "tok-789\n")
	writeFile(t, filepath.Join(dir, "callers.keys"), "billing k-billing\nreports k-reports\n")
}

func TestFlagsConfigLoads(t *testing.T) {
	dir := t.TempDir()
	writeFlagFiles(t, dir)
	in := strings.ReplaceAll(bk+`routes:
  - name: geo
    match: {path: "/v1/geo/{id}", flag: {key: geo-report, variant: "on"}}
    dark: true
    backend: v2
    key: "header:X-User-ID"
    flag_context: {plan: "header:X-Plan", country: "query:country", ip: client_ip}
    forward_flags: [geo-report, new-ui]
  - name: users
    match: {path_prefix: /v1/users}
    backend: v1
    adoption:
      fields:
        - {name: email, path: "$.email"}
        - {name: sku, path: "$.items[*]['sku']"}
flags:
  file: {{dir}}/flags.json
  ofrep:
    cors_origins: ["https://app.example.com", "*"]
    auth: {api_keys_file: {{dir}}/ofrep-api-keys, bearer_token_file: {{dir}}/ofrep.token}
callers: {key: "header:X-Client-ID", api_keys_file: {{dir}}/callers.keys}
`, "{{dir}}", dir)
	cfg, err := Parse("c.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Flags.OFREP.PathPrefix != DefaultFlags.OFREP.PathPrefix || !cfg.Flags.OFREP.On() {
		t.Errorf("ofrep defaults: %+v", cfg.Flags.OFREP)
	}
	if cfg.Callers.MaxCallers != DefaultConfig.Callers.MaxCallers || cfg.Callers.KeySource != (KeySource{"header", "X-Client-ID"}) || !cfg.Callers.Enabled() {
		t.Errorf("callers: %+v", cfg.Callers)
	}
	geo := cfg.Routes[0]
	wantAttrs := []ContextAttr{{"country", KeySource{"query", "country"}}, {"ip", KeySource{Kind: "client_ip"}}, {"plan", KeySource{"header", "X-Plan"}}}
	if !reflect.DeepEqual(geo.FlagAttrs, wantAttrs) {
		t.Errorf("flag attrs %+v, want %+v", geo.FlagAttrs, wantAttrs)
	}
	if *geo.Match.Flag != (FlagMatch{"geo-report", "on"}) || !geo.Dark {
		t.Errorf("geo route: %+v dark=%v", geo.Match.Flag, geo.Dark)
	}
	users := cfg.Routes[1]
	if users.Adoption.MaxBody != DefaultAdoption.MaxBody {
		t.Errorf("adoption max_body %d", users.Adoption.MaxBody)
	}
	wantSteps := []jsonpath.Step{{Kind: jsonpath.Key, Key: "items"}, {Kind: jsonpath.Any}, {Kind: jsonpath.Key, Key: "sku"}}
	if steps, err := ParseFieldPath(users.Adoption.Fields[1].Path); err != nil || !reflect.DeepEqual(steps, wantSteps) {
		t.Errorf("steps %+v %v", steps, err)
	}
}

func TestFlagsConfigErrors(t *testing.T) {
	dir := t.TempDir()
	writeFlagFiles(t, dir)
	writeFile(t, filepath.Join(dir, "no-keys"), "# nothing\n\n")
	writeFile(t, filepath.Join(dir, "unnamed"), "k-1\n")
	flags := "flags: {file: " + dir + "/flags.json}\n"
	runErrCases(t, []errCase{
		{"dark without flag", bk + `routes:
  - name: a
    backend: v1
    dark: true
`, []string{`7:11 dark: true needs match.flag`}},
		{"flag without flags", bk + `routes:
  - name: a
    backend: v1
    match: {flag: {key: x, variant: "on"}}
`, []string{`7:12 match needs flags.file`}},
		{"flag without key and variant", bk + `routes:
  - name: a
    backend: v1
    match: {flag: {}}
` + flags, []string{`7:19 match.flag needs key`, `7:19 match.flag needs variant`}},
		{"flag context", bk + `routes:
  - name: a
    backend: v1
    flag_context: {targetingKey: "header:X", plan: "head:X"}
` + flags, []string{`7:34 targetingKey is the route's key`, `7:52 flag_context plan: "head:X"`}},
		{"forward flags", bk + `routes:
  - name: a
    backend: v1
    forward_flags: [a, a, "x,y", ""]
` + flags, []string{`7:24 flag "a" is listed twice`, `7:27 ',' and '='`, `7:34 empty flag key`}},
		{"forward flags without flags", bk + `routes:
  - name: a
    backend: v1
    forward_flags: [a]
`, []string{`7:20 forward_flags needs flags.file`}},
		{"flags without file", "flags: {ofrep: {path_prefix: ofrep/}}\n", []string{
			`1:8 flags needs file`, `1:30 path_prefix "ofrep/"`}},
		{"missing files", "flags:\n  file: " + dir + "/nope.json\n  ofrep:\n    cors_origins: [\"https://a.example/x\", \"ftp://b\"]\n    auth: {api_keys_file: " + dir + "/no-keys, bearer_token_file: " + dir + "/nope}\n", []string{
			`2:9 no such file`, `4:20 CORS origin "https://a.example/x"`, `4:43 CORS origin "ftp://b"`,
			`5:27 holds no key`, `5:` + itoa(27+len(dir)+len("/no-keys, bearer_token_file: ")) + ` no such file`}},
		{"callers", "callers: {key: \"hdr:X\", api_keys_file: " + dir + "/unnamed, max_callers: -1}\n", []string{
			`1:16 key "hdr:X"`, `1:40 every line needs NAME KEY`, `1:` + itoa(40+len(dir)+len("/unnamed, max_callers: ")) + ` max_callers must not be negative`}},
		{"adoption", bk + `routes:
  - name: a
    backend: v1
    adoption:
      fields:
        - {name: email, path: "email"}
        - {name: email, path: "$.a[x]"}
        - {path: "$.b"}
`, []string{`8:7 adoption counts field use per caller`, `9:31 path "email": at offset 0: a path starts with "$"`,
			`10:18 field name "email" is used twice`, `10:31 path "$.a[x]": at offset 4: unexpected 'x'`, `11:11 adoption field needs name`}},
		{"adoption without fields", bk + `routes:
  - name: a
    backend: v1
    adoption: {max_body: 1KiB}
callers: {key: client_ip}
`, []string{`7:15 adoption needs fields`}},
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParseFieldPath(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []jsonpath.Step
		err  string
	}{
		{"$.email", []jsonpath.Step{{Kind: jsonpath.Key, Key: "email"}}, ""},
		{"$.a.b", []jsonpath.Step{{Kind: jsonpath.Key, Key: "a"}, {Kind: jsonpath.Key, Key: "b"}}, ""},
		{"$['e-mail']", []jsonpath.Step{{Kind: jsonpath.Key, Key: "e-mail"}}, ""},
		{`$["a.b"][2]`, []jsonpath.Step{{Kind: jsonpath.Key, Key: "a.b"}, {Kind: jsonpath.Index, Index: 2}}, ""},
		{"$.items[*].sku", []jsonpath.Step{{Kind: jsonpath.Key, Key: "items"}, {Kind: jsonpath.Any}, {Kind: jsonpath.Key, Key: "sku"}}, ""},
		{"$", nil, "names no field"},
		{"email", nil, `starts with "$"`},
		{"$.", nil, "expected a name"},
		{"$.a[", nil, "expected an index"},
		{"$['a]", nil, "unterminated"},
		{"$[-1]", nil, "unexpected '-'"},
		{"$x", nil, `expected "." or "["`},
		{"$..email", nil, "recursive descent"},
	} {
		got, err := ParseFieldPath(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.in, err, c.err)
		case c.err == "" && (err != nil || !reflect.DeepEqual(got, c.want)):
			t.Errorf("%s: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestReadAPIKeys(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys")
	writeFile(t, p, "# comment\n\nweb   k1\nk2\n  mobile\tk3  \n")
	keys, err := ReadAPIKeys(p)
	want := []APIKey{{"web", "k1"}, {"", "k2"}, {"mobile", "k3"}}
	if err != nil || !reflect.DeepEqual(keys, want) {
		t.Fatalf("%+v, %v", keys, err)
	}
	for content, msg := range map[string]string{
		"a b c\n":      ":1: want KEY or NAME KEY",
		"x k\ny k\n":   ":2: the key on line 1 appears again",
		"# only\n\n":   "holds no key",
		"\n\n\n\n\n\n": "holds no key",
	} {
		writeFile(t, p, content)
		if _, err := ReadAPIKeys(p); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", content, err, msg)
		}
	}
}

// The defaults of the flag and caller keys in docs/config.md are the
// code's (docs_test.go checks the others).
func TestDocsFlagDefaults(t *testing.T) {
	docs := readDocs(t)
	for key, want := range map[string]string{
		"flags.ofrep.path_prefix":    DefaultFlags.OFREP.PathPrefix,
		"callers.max_callers":        itoa(DefaultConfig.Callers.MaxCallers),
		"routes[].adoption.max_body": "64KiB",
		"flags.ofrep.enabled":        "true",
	} {
		cell, ok := defaultCell(docs, key)
		if !ok || cell != want {
			t.Errorf("docs/config.md: `%s` defaults to %q, the code to %q", key, cell, want)
		}
	}
	if b, _ := parseByteSize("64KiB"); b != DefaultAdoption.MaxBody {
		t.Errorf("adoption max_body default %d", DefaultAdoption.MaxBody)
	}
}
