package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// bk is a backends block (lines 1-3) that error cases build on; their own
// text starts on line 4.
const bk = `backends:
  v1: {endpoints: ["http://127.0.0.1:9001"]}
  v2: {endpoints: ["http://127.0.0.1:9002"]}
`

// errCase is one bad config and every error it must produce, in order,
// each written "LINE:COL fragment-of-the-message".
type errCase struct {
	name string
	in   string
	want []string
}

// checkErrors parses in and compares the errors with want.
func checkErrors(t *testing.T, in string, want []string) {
	t.Helper()
	cfg, err := Parse("c.yaml", []byte(in))
	if err == nil {
		t.Fatalf("Parse accepted the config, want errors:\n%s", strings.Join(want, "\n"))
	}
	if cfg != nil {
		t.Errorf("Parse returned a config along with errors")
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want ErrorList: %v", err, err)
	}
	ok := len(list) == len(want)
	for i := 0; ok && i < len(want); i++ {
		pos, frag, _ := strings.Cut(want[i], " ")
		e := list[i]
		ok = e.File == "c.yaml" && fmt.Sprintf("%d:%d", e.Line, e.Col) == pos && strings.Contains(e.Msg, frag)
	}
	if !ok {
		t.Errorf("errors:\n%v\nwant (LINE:COL fragment):\n%s", err, strings.Join(want, "\n"))
	}
}

func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "token"), "s3cret\n")
	writeFile(t, filepath.Join(dir, "empty-token"), " \n\t\n")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := strings.ReplaceAll(c.in, "{{dir}}", dir)
			want := make([]string, len(c.want))
			for i, w := range c.want {
				want[i] = strings.ReplaceAll(w, "{{dir}}", dir)
			}
			checkErrors(t, in, want)
		})
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownKeys(t *testing.T) {
	runErrCases(t, []errCase{
		{"top level", "listen: \":8080\"\nlisen: \":8081\"\n", []string{`2:1 unknown key "lisen"`}},
		{"top level, key with a space", "foo bar: 1\n", []string{`1:1 unknown key "foo bar"`}},
		{"in admin", "admin:\n  listen: 127.0.0.1:9901\n  token: x\n", []string{`3:3 unknown key "token"`}},
		{"in backends, flow", `backends:
  v1: {endpoints: ["http://127.0.0.1:9001"], retries: 2}
`, []string{`2:46 unknown key "retries"`}},
		{"in backends, block", `backends:
  v1:
    endpoints: ["http://127.0.0.1:9001"]
    health: {max_fails: 2, interval: 5s}
`, []string{`4:28 unknown key "interval"`}},
		{"in routes", bk + `routes:
  - name: a
    bakend: v1
`, []string{`5:5 route needs a backend`, `6:5 unknown key "bakend"`}},
		{"in match", bk + `routes:
  - name: a
    backend: v1
    match: {hosts: example.com}
`, []string{`7:13 unknown key "hosts"`}},
		{"in match query", bk + `routes:
  - name: a
    backend: v1
    match:
      query: [{name: q, valu: x}]
`, []string{`8:25 unknown key "valu"`}},
		{"in shadow", bk + `routes:
  - name: a
    backend: v1
    shadow:
      - backend: v2
        percent: 5
        precent: 10
`, []string{`10:9 unknown key "precent"`}},
		{"in shadow breaker", bk + `routes:
  - name: a
    backend: v1
    shadow: [{backend: v2, percent: 5, breaker: {failure: 3}}]
`, []string{`7:50 unknown key "failure"`}},
	})
}

// The yaml library sorts nothing: errors it finds come before validation's,
// and Parse sorts them all into file order.
func TestUnknownKeyAmongOtherErrors(t *testing.T) {
	checkErrors(t, bk+`routes:
  - name: a
    backend: v1
    extra: 1
    key: nope
`, []string{`7:5 unknown key "extra"`, `8:10 key "nope"`})
}

func TestBackendErrors(t *testing.T) {
	ep := func(url string) string {
		return "backends:\n  v1:\n    endpoints:\n      - \"" + url + "\"\n"
	}
	runErrCases(t, []errCase{
		{"unparsable URL", ep("http://[::1"), []string{`4:9 invalid endpoint URL "http://[::1"`}},
		{"control character in URL", ep(`http://a\tb:1`), []string{`4:9 invalid endpoint URL`}},
		{"ftp scheme", ep("ftp://127.0.0.1:21"), []string{`4:9 endpoint "ftp://127.0.0.1:21": scheme must be http or https`}},
		{"no scheme", ep("localhost:9001"), []string{`4:9 scheme must be http or https`}},
		{"no scheme, IP", ep("127.0.0.1:9001"), []string{`4:9 invalid endpoint URL "127.0.0.1:9001"`}},
		{"no host", ep("http://:9001"), []string{`4:9 endpoint "http://:9001" has no host`}},
		{"path", ep("http://127.0.0.1:9001/api"), []string{`4:9 only scheme://host:port is allowed`}},
		{"query", ep("http://127.0.0.1:9001?x=1"), []string{`4:9 only scheme://host:port is allowed`}},
		{"credentials", ep("http://u:p@127.0.0.1:9001"), []string{`4:9 only scheme://host:port is allowed`}},
		{"second endpoint bad", `backends:
  v1: {endpoints: ["http://127.0.0.1:9001", "gopher://x"]}
`, []string{`2:45 endpoint "gopher://x": scheme must be http or https`}},
		{"no endpoints", "backends:\n  v1: {balance: round_robin}\n", []string{`2:7 backend "v1" has no endpoints`}},
		{"empty endpoints", "backends:\n  v1: {endpoints: []}\n", []string{`2:7 backend "v1" has no endpoints`}},
		{"null backend", "backends:\n  v1:\n", []string{`2:6 backend "v1" has no endpoints`}},
		{"bad name", "backends:\n  \"v 1\": {endpoints: [\"http://127.0.0.1:1\"]}\n", []string{`2:10 backend name "v 1"`}},
		{"balance", "backends:\n  v1: {endpoints: [\"http://a:1\"], balance: random}\n", []string{`2:44 balance "random": use round_robin or least_request`}},
		{"host", "backends:\n  v1: {endpoints: [\"http://a:1\"], host: \"a b\"}\n", []string{`2:41 host "a b"`}},
		{"negative pool", "backends:\n  v1:\n    endpoints: [\"http://a:1\"]\n    max_idle_per_endpoint: -1\n    max_conns_per_endpoint: -2\n",
			[]string{`4:28 max_idle_per_endpoint must not be negative`, `5:29 max_conns_per_endpoint must not be negative`}},
		{"negative health and retry", "backends:\n  v1:\n    endpoints: [\"http://a:1\"]\n    health: {max_fails: -1}\n    retry: {attempts: -1}\n",
			[]string{`4:25 max_fails must not be negative`, `5:23 retry attempts must not be negative`}},
		{"pool not a number", "backends:\n  v1:\n    endpoints: [\"http://a:1\"]\n    max_idle_per_endpoint: many\n",
			[]string{"4:28 cannot unmarshal !!str `many` into int"}},
		{"endpoints not a list", "backends:\n  v1: {endpoints: \"http://a:1\"}\n",
			[]string{"2:7 backend \"v1\" has no endpoints", "2:19 cannot unmarshal !!str `http://a:1` into []string"}},
		{"ca_file missing", "backends:\n  v1:\n    endpoints: [\"https://a:1\"]\n    tls: {ca_file: {{dir}}/nope.pem}\n",
			[]string{`4:20 open {{dir}}/nope.pem: no such file or directory`}},
		{"tls not a mapping", "backends:\n  v1:\n    endpoints: [\"https://a:1\"]\n    tls: true\n",
			[]string{"4:10 cannot unmarshal !!bool `true` into config.UpstreamTLS"}},
		{"bad timeout", "backends:\n  v1:\n    endpoints: [\"http://a:1\"]\n    timeout: 30\n    connect_timeout: -1s\n    idle_timeout: forever\n    health: {eject_for: 1x}\n",
			[]string{`4:14 invalid duration "30"`, `5:22 duration "-1s" must not be negative`, `6:19 invalid duration "forever"`, `7:25 invalid duration "1x"`}},
	})
}

func TestRouteErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"undefined backend", bk + "routes:\n  - name: a\n    backend: v3\n",
			[]string{`6:14 route names undefined backend "v3" (defined: "v1", "v2")`}},
		{"no backend", bk + "routes:\n  - name: a\n", []string{`5:5 route needs a backend`}},
		{"no name", bk + "routes:\n  - backend: v1\n", []string{`5:5 route needs a name`}},
		{"bad name", bk + "routes:\n  - name: \"a/b\"\n    backend: v1\n", []string{`5:11 route name "a/b"`}},
		{"empty route", bk + "routes:\n  - ~\n", []string{`5:5 empty route`}},
		{"duplicate name", bk + `routes:
  - {name: a, backend: v1}
  - {name: b, backend: v1}
  - {name: a, backend: v1}
  - {name: a, backend: v1}
`, []string{`7:12 duplicate route name "a" (first used by route 1)`, `8:12 duplicate route name "a" (first used by route 1)`}},
		{"routes not a list", bk + "routes: {name: a}\n", []string{"4:9 cannot unmarshal !!map into []*config.Route"}},
		{"key without name", bk + "routes:\n  - {name: a, backend: v1, key: \"header:\"}\n",
			[]string{`5:33 key "header:": use header:NAME, cookie:NAME, query:NAME or client_ip`}},
		{"key unknown kind", bk + "routes:\n  - {name: a, backend: v1, key: \"ip:x\"}\n", []string{`5:33 key "ip:x"`}},
		{"key bare word", bk + "routes:\n  - {name: a, backend: v1, key: cookie}\n", []string{`5:33 key "cookie"`}},
		{"key client_ip with name", bk + "routes:\n  - {name: a, backend: v1, key: \"client_ip:x\"}\n", []string{`5:33 key "client_ip:x"`}},
	})
}

func TestMatchErrors(t *testing.T) {
	route := func(match string) string {
		return bk + "routes:\n  - name: a\n    backend: v1\n    match:\n" + match
	}
	runErrCases(t, []errCase{
		{"path and path_prefix", route("      path: /a\n      path_prefix: /b\n"), []string{`8:13 use either path or path_prefix, not both`}},
		{"path without slash", route("      path: a/b\n"), []string{`8:13 path "a/b" must start with '/'`}},
		{"path_prefix without slash", route("      path_prefix: api\n"), []string{`8:20 path_prefix "api" must start with '/'`}},
		{"host with port", route("      host: example.com:80\n"), []string{`8:13 host "example.com:80": use a host name or *.domain`}},
		{"host with scheme", route("      host: https://example.com\n"), []string{`8:13 host "https://example.com"`}},
		{"host bare star", route("      host: \"*\"\n"), []string{`8:13 host "*"`}},
		{"host star inside", route("      host: \"a.*.com\"\n"), []string{`8:13 host "a.*.com"`}},
		{"host star without dot", route("      host: \"*example.com\"\n"), []string{`8:13 host "*example.com"`}},
		{"bad method", route("      methods: [GET, \"PO ST\", get]\n"), []string{`8:22 invalid method "PO ST"`}},
		{"empty method", route("      methods: [\"\"]\n"), []string{`8:17 invalid method ""`}},
		{"methods not a list", route("      methods: GET\n"), []string{"8:16 cannot unmarshal !!str `GET` into []string"}},
		{"bad header regex", route("      headers:\n        - {name: X-A, regex: \"a(\"}\n"),
			[]string{"9:30 invalid regex: error parsing regexp: missing closing ): `a(`"}},
		{"bad query regex", route("      query:\n        - name: q\n          regex: \"[z-a]\"\n"),
			[]string{`10:18 invalid regex: error parsing regexp: invalid character class range`}},
		{"value and regex", route("      headers: [{name: X-A, value: a, regex: b}]\n"), []string{`8:46 use either value or regex, not both`}},
		{"header without name", route("      headers: [{value: a}]\n"), []string{`8:17 match needs a name`}},
		{"query without name", route("      query: [{present: true}]\n"), []string{`8:15 match needs a name`}},
		{"bad header name", route("      headers: [{name: \"X A\"}]\n"), []string{`8:24 invalid header name "X A"`}},
		{"present false with value", route("      headers: [{name: X-A, value: a, present: false}]\n"), []string{`8:48 present: false means the header must be absent`}},
		{"present false with query regex", route("      query: [{name: q, regex: a, present: false}]\n"), []string{`8:44 present: false means the parameter must be absent`}},
		{"present not a bool", route("      headers: [{name: X-A, present: maybe}]\n"), []string{"8:38 cannot unmarshal !!str `maybe` into bool"}},
	})
}

func TestShadowErrors(t *testing.T) {
	shadow := func(s string) string {
		return bk + "routes:\n  - name: a\n    backend: v1\n    shadow:\n      - backend: v2\n" + s
	}
	runErrCases(t, []errCase{
		{"undefined backend", bk + "routes:\n  - name: a\n    backend: v1\n    shadow: [{backend: v9, percent: 1}]\n",
			[]string{`7:24 shadow names undefined backend "v9" (defined: "v1", "v2")`}},
		{"no backend", bk + "routes:\n  - name: a\n    backend: v1\n    shadow: [{percent: 1}]\n", []string{`7:14 shadow needs a backend`}},
		{"own backend", bk + "routes:\n  - name: a\n    backend: v1\n    shadow: [{backend: v1, percent: 1}]\n",
			[]string{`7:24 shadow backend "v1" is the route's own backend`}},
		{"same target twice", bk + "routes:\n  - name: a\n    backend: v1\n    shadow: [{backend: v2, percent: 1}, {backend: v2, percent: 2}]\n",
			[]string{`7:51 backend "v2" is already a shadow target of this route`}},
		{"two targets without backend", bk + "routes:\n  - name: a\n    backend: v1\n    shadow: [{percent: 1}, {percent: 2}]\n",
			[]string{`7:14 shadow needs a backend`, `7:28 shadow needs a backend`}},
		{"no percent", shadow(""), []string{`8:9 shadow needs percent`}},
		{"empty target", bk + "routes:\n  - name: a\n    backend: v1\n    shadow: [~]\n", []string{`7:14 empty shadow target`}},
		{"percent over 100", shadow("        percent: 101\n"), []string{`9:18 invalid percent "101" (a number from 0 to 100)`}},
		{"percent negative", shadow("        percent: -0.5\n"), []string{`9:18 invalid percent "-0.5"`}},
		{"percent garbage", shadow("        percent: half\n"), []string{`9:18 invalid percent "half"`}},
		{"percent NaN", shadow("        percent: .nan\n"), []string{`9:18 invalid percent ".nan"`}},
		{"percent two signs", shadow("        percent: 5%%\n"), []string{`9:18 invalid percent "5%%"`}},
		{"percent a list", shadow("        percent: [5]\n"), []string{`9:18 invalid percent ""`}},
		{"unsafe", shadow("        percent: 1\n        unsafe: yes-please\n"), []string{`10:17 unsafe "yes-please": use skip, mark or allow`}},
		{"max_body with fraction", shadow("        percent: 1\n        max_body: 1.5MiB\n"), []string{`10:19 invalid size "1.5MiB" (examples: 4096, 64KiB, 1MiB)`}},
		{"max_body negative", shadow("        percent: 1\n        max_body: -1\n"), []string{`10:19 invalid size "-1"`}},
		{"max_body unknown unit", shadow("        percent: 1\n        max_body: 10XB\n"), []string{`10:19 invalid size "10XB"`}},
		{"max_body lower-case unit", shadow("        percent: 1\n        max_body: 1mib\n"), []string{`10:19 invalid size "1mib"`}},
		{"timeout bare number", shadow("        percent: 1\n        timeout: 5\n"), []string{`10:18 invalid duration "5" (use a unit: 250ms, 5s, 1m)`}},
		{"timeout negative", shadow("        percent: 1\n        timeout: -5s\n"), []string{`10:18 duration "-5s" must not be negative`}},
		{"timeout garbage", shadow("        percent: 1\n        timeout: soon\n"), []string{`10:18 invalid duration "soon"`}},
		{"breaker open_for", shadow("        percent: 1\n        breaker: {open_for: 10}\n"), []string{`10:29 invalid duration "10"`}},
		{"match method", shadow("        percent: 1\n        match: {methods: [\"G T\"]}\n"), []string{`10:27 invalid method "G T"`}},
		{"match header regex", shadow("        percent: 1\n        match: {headers: [{name: X, regex: \"(\"}]}\n"), []string{`10:44 invalid regex`}},
		{"remove header name", shadow("        percent: 1\n        headers: {remove: [\"Bad Header\"]}\n"), []string{`10:28 invalid header name "Bad Header"`}},
		{"set header name", shadow("        percent: 1\n        headers: {set: {\"Bad:Header\": x}}\n"), []string{`10:39 invalid header name "Bad:Header"`}},
		{"max_in_flight type", shadow("        percent: 1\n        max_in_flight: lots\n"), []string{"10:24 cannot unmarshal !!str `lots` into int"}},
	})
}

func TestTopLevelErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"listen without port", "listen: \"8080\"\n", []string{`1:9 invalid listen address "8080": want host:port`}},
		{"listen port too big", "listen: \"127.0.0.1:99999\"\n", []string{`1:9 invalid port in "127.0.0.1:99999"`}},
		{"listen port not a number", "listen: \"127.0.0.1:http\"\n", []string{`1:9 invalid port in "127.0.0.1:http"`}},
		{"listen empty port", "listen: \"127.0.0.1:\"\n", []string{`1:9 invalid port in "127.0.0.1:"`}},
		{"listen host with slash", "listen: \"a/b:80\"\n", []string{`1:9 invalid host in "a/b:80"`}},
		{"listen a list", "listen: [\":80\"]\n", []string{"1:9 cannot unmarshal !!seq into string"}},
		{"admin listen", "admin: {listen: localhost}\n", []string{`1:17 invalid listen address "localhost"`, `1:17 admin listens off loopback`}},
		{"admin all interfaces", "admin: {listen: \":9901\"}\n", []string{`1:17 admin listens off loopback (:9901): set admin.token_file`}},
		{"admin public address", "admin:\n  listen: 0.0.0.0:9901\n", []string{`2:11 admin listens off loopback (0.0.0.0:9901)`}},
		{"token_file missing", "admin:\n  listen: 0.0.0.0:9901\n  token_file: {{dir}}/nope\n", []string{`3:15 open {{dir}}/nope: no such file or directory`}},
		{"token_file empty", "admin:\n  listen: 0.0.0.0:9901\n  token_file: {{dir}}/empty-token\n", []string{`3:15 token file {{dir}}/empty-token is empty`}},
		{"token_file empty on loopback", "admin: {token_file: {{dir}}/empty-token}\n", []string{`1:21 token file {{dir}}/empty-token is empty`}},
		{"log format", "log: {format: xml}\n", []string{`1:15 log format "xml": use text or json`}},
		{"log level", "log:\n  level: verbose\n", []string{`2:10 log level "verbose": use debug, info, warn or error`}},
		{"log level case", "log: {level: INFO}\n", []string{`1:14 log level "INFO"`}},
		{"log access", "log: {access: sometimes-yes}\n", []string{"1:15 cannot unmarshal !!str `sometim...` into bool"}},
		{"tls cert only", "tls: {cert_file: {{dir}}/c.pem}\n", []string{`1:6 tls needs both cert_file and key_file`}},
		{"tls key only", "tls:\n  key_file: {{dir}}/k.pem\n", []string{`2:3 tls needs both cert_file and key_file`}},
		{"tls empty", "tls: {}\n", []string{`1:6 tls needs both cert_file and key_file`}},
		{"tls files missing", "tls: {cert_file: {{dir}}/c.pem, key_file: {{dir}}/k.pem}\n", []string{`1:18 cannot load TLS key pair: open {{dir}}/c.pem`}},
		{"tls files not PEM", "tls: {cert_file: {{dir}}/token, key_file: {{dir}}/token}\n", []string{`1:18 cannot load TLS key pair`}},
		{"server durations", "server:\n  read_header_timeout: 10\n  idle_timeout: -1m\n  shutdown_grace: later\n",
			[]string{`2:24 invalid duration "10"`, `3:17 duration "-1m" must not be negative`, `4:19 invalid duration "later"`}},
		{"server size", "server: {max_header_bytes: 1MB5}\n", []string{`1:28 invalid size "1MB5"`}},
		{"server size unit only", "server: {max_header_bytes: KiB}\n", []string{`1:28 invalid size "KiB"`}},
		{"server header count", "server: {max_header_count: -1}\n", []string{`1:28 max_header_count must be positive`}},
		{"data_dir a map", "data_dir: {a: b}\n", []string{"1:11 cannot unmarshal !!map into string"}},
		{"backends a list", "backends: [a]\n", []string{"1:11 cannot unmarshal !!seq into map[string]*config.Backend"}},
	})
}

func TestDocumentErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"empty file", "", []string{`1:1 config must be a YAML mapping`}},
		{"only comments", "# nothing here\n\n", []string{`1:1 config must be a YAML mapping`}},
		{"a list", "- listen: :8080\n", []string{`1:1 config must be a YAML mapping`}},
		{"a scalar", "\n\nhello\n", []string{`3:1 config must be a YAML mapping`}},
		{"null document", "~\n", []string{`1:1 config must be a YAML mapping`}},
		{"second document", "listen: \":8080\"\n---\nlisten: \":8081\"\n", []string{`3:1 a second YAML document ("---") is not allowed`}},
		{"second document broken", "listen: \":8080\"\n---\nlisten: [\n", []string{`4:1 did not find expected node content`}},
		{"duplicate key", "listen: \":8080\"\nlog: {}\nlisten: \":8081\"\n", []string{`3:1 mapping key "listen" already defined at line 1`}},
		{"duplicate nested key", bk + "routes:\n  - name: a\n    backend: v1\n    name: b\n",
			[]string{`7:5 mapping key "name" already defined at line 5`}},
		{"alias that contains itself", "log: &l {format: *l}\n", []string{"1:6 cannot unmarshal !!map into string"}},
		{"excessive aliasing", aliasBomb(), []string{"1:1 document contains excessive aliasing"}},
	})
}

// aliasBomb is a small text that decodes into thousands of values through
// aliases (a "billion laughs" attack), which yaml.v3 refuses.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("x: &m {")
	for i := range 20 {
		fmt.Fprintf(&b, "h%d: v, ", i)
	}
	b.WriteString("}\ny: &s {headers: {set: *m}}\nz: &r {shadow: [")
	b.WriteString(strings.Repeat("*s, ", 20))
	b.WriteString("]}\nroutes: [")
	b.WriteString(strings.Repeat("*r, ", 20))
	b.WriteString("]\n")
	return b.String()
}

// Syntax errors must carry the line the problem is on (yaml.v3 reports
// parser errors one line early and first-line errors without a line).
func TestSyntaxErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"mapping value on first line", "listen: a: b\n", []string{`1:1 mapping values are not allowed in this context`}},
		{"bad indentation", "listen: \":8080\"\n  log: {}\n", []string{`2:1 did not find expected key`}},
		{"indented key after a plain value", "listen: :8080\n  log: {}\n", []string{`2:1 mapping values are not allowed in this context`}},
		{"unterminated quote", "listen: \":8080\"\nlog:\n  format: \"text\n  level: info\n", []string{`3:1 found unexpected end of stream`}},
		{"unclosed flow sequence", "listen: \":8080\"\nroutes: [a, b\nlog: {}\n", []string{`2:1 did not find expected ',' or ']'`}},
		{"unclosed flow mapping", "listen: \":8080\"\n\nlog: {format: text\n", []string{`3:1 did not find expected ',' or '}'`}},
		{"unclosed on first line", "[a\n", []string{`2:1 did not find expected ',' or ']'`}},
		{"tab indentation", "log:\n\tformat: text\n", []string{`2:1 found character that cannot start any token`}},
		{"list item out of place", bk + "routes:\n  - name: a\n    backend: v1\n   x: 1\n", []string{`5:1 did not find expected '-' indicator`}},
		{"missing value after colon in list", "routes:\n  - name: a\n  backend: v1\n", []string{`2:1 did not find expected '-' indicator`}},
		{"control character", "listen: \":8080\"\nlog: {format: \"te\x01xt\"}\n", []string{`2:18 control characters are not allowed`}},
		{"latin-1 byte", "# caf\xe9\nlisten: \":8080\"\n", []string{`1:6 invalid`}},
		{"latin-1 byte later", "listen: \":8080\"\n\n# na\xefve\n", []string{`3:5 invalid`}},
	})
}

func TestSeveralErrorsInFileOrder(t *testing.T) {
	data, err := os.ReadFile("testdata/several-errors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`1:9 invalid listen address "8080"`,
		`2:15 log format "xml"`,
		`5:17 endpoint "ftp://127.0.0.1:9001": scheme must be http or https`,
		`6:14 invalid duration "5"`,
		`9:14 route names undefined backend "nope"`,
		`10:5 unknown key "bogus"`,
	}
	checkErrors(t, string(data), want)
	_, err = Load("testdata/several-errors.yaml")
	if err == nil {
		t.Fatal("Load accepted testdata/several-errors.yaml")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) || lines[0] != `testdata/several-errors.yaml:1:9: invalid listen address "8080": want host:port, for example 127.0.0.1:8080 or :8080` {
		t.Errorf("Load error text:\n%v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "u.yaml", Line: 3, Col: 7, Msg: "boom"}
	if got := e.Error(); got != "u.yaml:3:7: boom" {
		t.Errorf("Error() = %q", got)
	}
	e = &Error{File: "u.yaml", Msg: "open u.yaml: no such file"}
	if got := e.Error(); got != "u.yaml: open u.yaml: no such file" {
		t.Errorf("Error() without line = %q", got)
	}
	l := ErrorList{{File: "a", Line: 1, Col: 2, Msg: "x"}, {File: "a", Line: 2, Col: 1, Msg: "y"}}
	if got := l.Error(); got != "a:1:2: x\na:2:1: y" {
		t.Errorf("ErrorList.Error() = %q", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "umbra.yaml")
	cfg, err := Load(path)
	var list ErrorList
	if cfg != nil || !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("Load(missing) = %v, %v; want one ErrorList entry", cfg, err)
	}
	if e := list[0]; e.File != path || e.Line != 0 || !strings.Contains(e.Msg, "no such file") {
		t.Errorf("error = %+v", e)
	}
	if !strings.HasPrefix(err.Error(), path+": open ") {
		t.Errorf("Error() = %q", err)
	}
}

func TestLoadTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal("no testdata configs", err)
	}
	for _, f := range files {
		if strings.Contains(f, "error") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.File != f {
				t.Errorf("File = %q, want %q", cfg.File, f)
			}
		})
	}
}

func mustParse(t *testing.T, in string) *Config {
	t.Helper()
	cfg, err := Parse("c.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, bk+`routes:
  - name: a
    backend: v1
    shadow: [{backend: v2, percent: 10}]
`)
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("listen", cfg.Listen, DefaultConfig.Listen)
	check("listen constant", DefaultConfig.Listen, "127.0.0.1:8080")
	check("tls", cfg.TLS, (*TLS)(nil))
	check("admin.listen", cfg.Admin.Listen, DefaultConfig.Admin.Listen)
	check("admin listen constant", DefaultConfig.Admin.Listen, "127.0.0.1:9901")
	check("admin.token_file", cfg.Admin.TokenFile, "")
	check("data_dir", cfg.DataDir, DefaultConfig.DataDir)
	check("data_dir constant", DefaultConfig.DataDir, "./umbra-data")
	check("log.format", cfg.Log.Format, "text")
	check("log.level", cfg.Log.Level, "info")
	check("log.access", cfg.Log.AccessEnabled(), true)
	check("server.read_header_timeout", cfg.Server.ReadHeaderTimeout, DefaultConfig.Server.ReadHeaderTimeout)
	check("server.idle_timeout", cfg.Server.IdleTimeout, DefaultConfig.Server.IdleTimeout)
	check("server.max_header_bytes", cfg.Server.MaxHeaderBytes, DefaultConfig.Server.MaxHeaderBytes)
	check("server.max_header_count", cfg.Server.MaxHeaderCount, DefaultConfig.Server.MaxHeaderCount)
	check("server.shutdown_grace", cfg.Server.ShutdownGrace, DefaultConfig.Server.ShutdownGrace)
	// The documented values of the constants (docs/config.md).
	check("DefaultConfig.Server.ReadHeaderTimeout", DefaultConfig.Server.ReadHeaderTimeout.D(), 10*time.Second)
	check("DefaultConfig.Server.IdleTimeout", DefaultConfig.Server.IdleTimeout.D(), 2*time.Minute)
	check("DefaultConfig.Server.MaxHeaderBytes", DefaultConfig.Server.MaxHeaderBytes, ByteSize(1<<20))
	check("DefaultConfig.Server.ShutdownGrace", DefaultConfig.Server.ShutdownGrace.D(), 15*time.Second)

	check("comparison", cfg.Comparison, Comparison{
		Workers: DefaultConfig.Comparison.Workers, QueueSize: DefaultConfig.Comparison.QueueSize, SamplesPerField: DefaultConfig.Comparison.SamplesPerField,
		MaxEndpoints: DefaultConfig.Comparison.MaxEndpoints, MaxFields: DefaultConfig.Comparison.MaxFields, FlushInterval: DefaultConfig.Comparison.FlushInterval,
	})

	b := cfg.Backends["v1"]
	check("backend name", b.Name, "v1")
	check("balance", b.Balance, "round_robin")
	check("host", b.Host, "keep")
	// Zero means "the backend package's default" (internal/backend).
	check("timeout", b.Timeout, Duration(0))
	check("connect_timeout", b.ConnectTimeout, Duration(0))
	check("idle_timeout", b.IdleTimeout, Duration(0))
	check("max_idle_per_endpoint", b.MaxIdlePerEndpoint, 0)
	check("max_conns_per_endpoint", b.MaxConnsPerEndpoint, 0)
	check("health", b.Health, HealthCheck{})
	check("retry", b.Retry, Retry{})
	check("upstream tls", b.TLS, (*UpstreamTLS)(nil))

	r := cfg.Routes[0]
	check("compare", r.Compare, (*Compare)(nil))
	check("canary", r.Canary, (*Canary)(nil))
	check("key", r.Key, "")
	check("key source", r.KeySource, KeySource{})
	check("match", reflect.DeepEqual(r.Match, Match{}), true)

	s := r.Shadow[0]
	check("percent", s.Percent, Percent(10))
	check("unsafe", s.Unsafe, "skip")
	check("max_body", s.MaxBody, DefaultShadow.MaxBody)
	check("shadow timeout", s.Timeout, DefaultShadow.Timeout)
	check("max_in_flight", s.MaxInFlight, DefaultShadow.MaxInFlight)
	check("queue_size", s.QueueSize, DefaultShadow.QueueSize)
	check("breaker.failures", s.Breaker.Failures, DefaultShadow.Breaker.Failures)
	check("breaker.open_for", s.Breaker.OpenFor, DefaultShadow.Breaker.OpenFor)
	check("host_suffix", s.HostSuffix, "")
	check("DefaultShadow.MaxBody", DefaultShadow.MaxBody, ByteSize(1<<20))
	check("DefaultShadow.Timeout", DefaultShadow.Timeout.D(), 5*time.Second)
	check("DefaultShadow.MaxInFlight", DefaultShadow.MaxInFlight, 64)
	check("DefaultShadow.QueueSize", DefaultShadow.QueueSize, 256)
	check("DefaultShadow.Breaker.Failures", DefaultShadow.Breaker.Failures, 5)
	check("DefaultShadow.Breaker.OpenFor", DefaultShadow.Breaker.OpenFor.D(), 10*time.Second)
}

// Defaults of the optional route blocks, as docs/config.md documents them.
func TestCompareAndCanaryDefaults(t *testing.T) {
	cfg := mustParse(t, bk+`routes:
  - name: checkout
    backend: v1
    shadow: [{backend: v2, percent: 10}]
    compare: {}
    canary: {backend: v2}
`)
	r := cfg.Routes[0]
	want := &Compare{Target: "v2", MaxBody: DefaultCompare.MaxBody,
		Thresholds: Thresholds{Relative: DefaultCompare.Thresholds.Relative, Absolute: DefaultCompare.Thresholds.Absolute}}
	if !reflect.DeepEqual(r.Compare, want) {
		t.Errorf("compare = %+v, want %+v", r.Compare, want)
	}
	if c := r.Canary; c == nil || c.Weight != 0 || c.OverrideHeader != "" || c.Cookie != DefaultCanaryCookie+"checkout" {
		t.Errorf("canary = %+v", c)
	}
}

// Zero values written in the file mean "use the default" too.
func TestExplicitZeroMeansDefault(t *testing.T) {
	cfg := mustParse(t, bk+`server: {idle_timeout: 0s, max_header_bytes: 0}
routes:
  - name: a
    backend: v1
    shadow:
      - {backend: v2, percent: 0, max_body: 0, timeout: 0s, max_in_flight: 0, queue_size: 0, breaker: {failures: 0}}
`)
	if cfg.Server.IdleTimeout != DefaultConfig.Server.IdleTimeout || cfg.Server.MaxHeaderBytes != DefaultConfig.Server.MaxHeaderBytes {
		t.Errorf("server = %+v", cfg.Server)
	}
	s := cfg.Routes[0].Shadow[0]
	if s.Percent != 0 || s.MaxBody != DefaultShadow.MaxBody || s.Timeout != DefaultShadow.Timeout ||
		s.MaxInFlight != DefaultShadow.MaxInFlight || s.QueueSize != DefaultShadow.QueueSize || s.Breaker.Failures != DefaultShadow.Breaker.Failures {
		t.Errorf("shadow = %+v", s)
	}
}

func TestExplicitValuesKept(t *testing.T) {
	cfg, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8443" || cfg.Admin.Listen != "[::1]:9901" || cfg.DataDir != "/var/lib/umbra" {
		t.Errorf("top level = %q %q %q", cfg.Listen, cfg.Admin.Listen, cfg.DataDir)
	}
	if cfg.Log != (Log{Format: "json", Level: "debug", Access: cfg.Log.Access}) || cfg.Log.AccessEnabled() {
		t.Errorf("log = %+v", cfg.Log)
	}
	wantServer := Server{ReadHeaderTimeout: Duration(5 * time.Second), IdleTimeout: Duration(time.Minute), BodyReadTimeout: Duration(20 * time.Second), MaxHeaderBytes: 64 << 10, MaxHeaderCount: 50, ShutdownGrace: Duration(30 * time.Second)}
	if cfg.Server != wantServer {
		t.Errorf("server = %+v", cfg.Server)
	}
	b := cfg.Backends["api-v1"]
	if b.Balance != "least_request" || b.Host != "endpoint" || b.Timeout.D() != 30*time.Second ||
		b.ConnectTimeout.D() != 2*time.Second || b.IdleTimeout.D() != 45*time.Second ||
		b.MaxIdlePerEndpoint != 256 || b.MaxConnsPerEndpoint != 1024 ||
		b.Health != (HealthCheck{MaxFails: 5, EjectFor: Duration(30 * time.Second)}) || b.Retry != (Retry{Attempts: 2}) {
		t.Errorf("api-v1 = %+v", b)
	}
	b2 := cfg.Backends["api-v2"]
	if b2.Host != "api-v2.internal" || !b2.Retry.Disable || b2.TLS == nil || !b2.TLS.InsecureSkipVerify || b2.TLS.ServerName != "api-v2.internal" {
		t.Errorf("api-v2 = %+v tls %+v", b2, b2.TLS)
	}
	r := cfg.Routes[0]
	if r.Match.Path != "/v1/items/{id}" || len(r.Match.Headers) != 2 || len(r.Match.Query) != 2 {
		t.Errorf("match = %+v", r.Match)
	}
	if q := r.Match.Query[0]; q.Name != "page" || q.Regex != "^[0-9]+$" {
		t.Errorf("query regex lost: %+v", q)
	}
	if p := r.Match.Headers[1].Present; p == nil || *p {
		t.Errorf("present: false lost: %v", p)
	}
	s := r.Shadow[0]
	want := Shadow{
		Backend: "api-v2", Percent: 12.5, Unsafe: "allow", MaxBody: 256 << 10,
		HostSuffix: "-shadow", Timeout: Duration(2 * time.Second), MaxInFlight: 32, QueueSize: 128,
		Breaker: Breaker{Failures: 10, OpenFor: Duration(time.Minute)},
		Headers: HeaderRules{Set: map[string]string{"X-Env": "shadow"}, Remove: []string{"Authorization", "Cookie"}},
	}
	got := *s
	got.Match = ShadowMatch{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("shadow =\n%+v\nwant\n%+v", got, want)
	}
	if m := s.Match; !reflect.DeepEqual(m.Methods, []string{"GET"}) || m.PathPrefix != "/v1/items/" || len(m.Headers) != 1 || m.Headers[0].Regex != "^(yes|true)$" {
		t.Errorf("shadow match = %+v", m)
	}
}

func TestNormalization(t *testing.T) {
	cfg := mustParse(t, `backends:
  v1: {endpoints: ["http://127.0.0.1:9001/", "https://[::1]:8443", "http://Svc.Internal"]}
  v2: {endpoints: ["http://127.0.0.1:9002"]}
routes:
  - name: a
    backend: v1
    match: {host: "Shop.Example.COM.", methods: [get, Post, PATCH], path: /x}
    shadow:
      - {backend: v2, percent: 1, match: {methods: [delete]}}
  - name: b
    backend: v1
    match: {host: "*.EXAMPLE.com"}
`)
	if got := cfg.Backends["v1"].Endpoints; got[0] != "http://127.0.0.1:9001/" {
		t.Errorf("Endpoints rewritten: %v", got)
	}
	m := cfg.Routes[0].Match
	if m.Host != "shop.example.com" {
		t.Errorf("host = %q, want lower case without the trailing dot", m.Host)
	}
	if !reflect.DeepEqual(m.Methods, []string{"GET", "POST", "PATCH"}) {
		t.Errorf("methods = %v", m.Methods)
	}
	if p := cfg.Position("routes", 0, "match", "path"); p != (Pos{Line: 7, Col: 75}) {
		t.Errorf("match.path written at %+v", p)
	}
	if got := cfg.Routes[0].Shadow[0].Match.Methods; !reflect.DeepEqual(got, []string{"DELETE"}) {
		t.Errorf("shadow methods = %v", got)
	}
	if h := cfg.Routes[1].Match.Host; h != "*.example.com" {
		t.Errorf("wildcard host = %q", h)
	}
	if r := cfg.Routes[1]; cfg.Position("routes", 1) != (Pos{Line: 10, Col: 5}) || r.Shadow != nil {
		t.Errorf("route b = %+v at %+v", r, cfg.Position("routes", 1))
	}
	if p := cfg.Position("routes", 0, "shadow", 0); p != (Pos{Line: 9, Col: 9}) {
		t.Errorf("shadow written at %+v", p)
	}
	if p := cfg.Position("backends", "v2"); p != (Pos{Line: 3, Col: 7}) {
		t.Errorf("backend written at %+v", p)
	}
	if p := cfg.Position("routes", 0, "canary"); p != cfg.Position("routes", 0) {
		t.Errorf("a key not written is at its parent: %+v, want %+v", p, cfg.Position("routes", 0))
	}
	if p := (&Config{}).Position("routes", 0); p != (Pos{}) {
		t.Errorf("a config not parsed from text has no positions: %+v", p)
	}
	if e := cfg.ErrorAt(at("backends", "v2"), "bad %s", "thing").Error(); !strings.HasSuffix(e, ":3:7: bad thing") {
		t.Errorf("ErrorAt = %s", e)
	}
}

func TestKeySources(t *testing.T) {
	for _, c := range []struct {
		key  string
		want KeySource
	}{
		{"header:X-User-ID", KeySource{Kind: "header", Name: "X-User-ID"}},
		{"cookie:session", KeySource{Kind: "cookie", Name: "session"}},
		{"query:uid", KeySource{Kind: "query", Name: "uid"}},
		{"client_ip", KeySource{Kind: "client_ip"}},
	} {
		cfg := mustParse(t, bk+"routes:\n  - {name: a, backend: v1, key: \""+c.key+"\"}\n")
		if got := cfg.Routes[0].KeySource; got != c.want {
			t.Errorf("key %q: KeySource = %+v, want %+v", c.key, got, c.want)
		}
	}
}

func TestParseKey(t *testing.T) {
	for _, c := range []struct {
		in   string
		want KeySource
		ok   bool
	}{
		{"header:X-A", KeySource{"header", "X-A"}, true},
		{"query:a:b", KeySource{"query", "a:b"}, true},
		{"client_ip", KeySource{Kind: "client_ip"}, true},
		{"", KeySource{}, false},
		{"header", KeySource{}, false},
		{"header:", KeySource{}, false},
		{":x", KeySource{}, false},
		{"Header:X", KeySource{}, false},
		{"client_ip:x", KeySource{}, false},
		{"ip", KeySource{}, false},
	} {
		got, ok := ParseKey(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestShadowAnchorsAndMerge(t *testing.T) {
	cfg, err := Load("testdata/anchors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sh := cfg.Routes[1].Shadow
	if len(sh) != 2 || sh[0].Backend != "v2" || sh[1].Backend != "v3" || sh[1].Percent != 5 || sh[1].Unsafe != "skip" {
		t.Errorf("shadow through aliases = %+v %+v", sh[0], sh[1])
	}
	// Errors in aliased values point at the anchor's definition.
	checkErrors(t, bk+`x: &bad {percent: 200}
routes:
  - name: a
    backend: v1
    shadow:
      - <<: *bad
        backend: v2
`, []string{`4:1 unknown key "x"`, `4:19 invalid percent "200"`})
}

func TestAccessEnabled(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		access *bool
		want   bool
	}{{nil, true}, {&yes, true}, {&no, false}} {
		if got := (Log{Access: c.access}).AccessEnabled(); got != c.want {
			t.Errorf("AccessEnabled(%v) = %v", c.access, got)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9901", true},
		{"127.8.9.10:1", true},
		{"localhost:9901", true},
		{"[::1]:9901", true},
		{"[::ffff:127.0.0.1]:9901", true},
		{":9901", false},
		{"0.0.0.0:9901", false},
		{"[::]:9901", false},
		{"10.0.0.1:9901", false},
		{"example.com:9901", false},
		{"localhost.example.com:9901", false},
		{"127.0.0.1", false}, // no port: not an address
		{"::1", false},
		{"", false},
		{"[fe80::1%lo]:9901", false},
	} {
		if got := isLoopback(c.addr); got != c.want {
			t.Errorf("isLoopback(%q) = %v, want %v", c.addr, got, c.want)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"0", 0, true},
		{"512", 512, true},
		{"512B", 512, true},
		{"1KB", 1000, true},
		{"1KiB", 1024, true},
		{"64KiB", 64 << 10, true},
		{"1MB", 1000 * 1000, true},
		{"1MiB", 1 << 20, true},
		{"2GB", 2e9, true},
		{"2GiB", 2 << 30, true},
		{" 8 KiB ", 8 << 10, true},
		{"+5", 5, true},
		{"4611686018427387904", 1 << 62, true},
		{"4294967296GiB", 1 << 62, true},
		{"4611686018427387905", 0, false},
		{"4294967297GiB", 0, false},
		{"9223372036854775807", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"B", 0, false},
		{"KiB", 0, false},
		{"-1", 0, false},
		{"-1KiB", 0, false},
		{"1.5MiB", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"1kib", 0, false},
		{"1K", 0, false},
		{"1TiB", 0, false},
		{"1 MiB B", 0, false},
	} {
		got, err := parseByteSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestPercentAndDurationValues(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Percent
	}{{"0", 0}, {"100", 100}, {"0.5", 0.5}, {"\"12.5%\"", 12.5}, {"100%", 100}, {"1e1", 10}} {
		cfg := mustParse(t, bk+"routes:\n  - {name: a, backend: v1, shadow: [{backend: v2, percent: "+c.in+"}]}\n")
		if got := cfg.Routes[0].Shadow[0].Percent; got != c.want {
			t.Errorf("percent %s = %v, want %v", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		in   string
		want time.Duration
	}{{"250ms", 250 * time.Millisecond}, {"1m30s", 90 * time.Second}, {"2h", 2 * time.Hour}, {"1.5s", 1500 * time.Millisecond}} {
		cfg := mustParse(t, "server: {shutdown_grace: "+c.in+"}\n")
		if got := cfg.Server.ShutdownGrace.D(); got != c.want {
			t.Errorf("duration %s = %v, want %v", c.in, got, c.want)
		}
	}
	b, err := json.Marshal(struct{ D Duration }{Duration(1500 * time.Millisecond)})
	if err != nil || string(b) != `{"D":"1.5s"}` {
		t.Errorf("Duration JSON = %s, %v", b, err)
	}
}

func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	writeFile(t, tok, "  s3cret\n")
	cfg := mustParse(t, "admin: {listen: \"0.0.0.0:9901\", token_file: \""+tok+"\"}\n")
	if cfg.Admin.TokenFile != tok {
		t.Errorf("token_file = %q", cfg.Admin.TokenFile)
	}
	if got, err := ReadToken(tok); got != "s3cret" || err != nil {
		t.Errorf("ReadToken = %q, %v", got, err)
	}
	if _, err := ReadToken(filepath.Join(dir, "nope")); err == nil {
		t.Error("ReadToken(missing) succeeded")
	}
}

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(t testing.TB, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "umbra test"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
}

func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writeCert(t, cert, key)
	cfg := mustParse(t, bk+"tls: {cert_file: \""+cert+"\", key_file: \""+key+"\"}\n")
	if cfg.TLS == nil || cfg.TLS.CertFile != cert || cfg.TLS.KeyFile != key {
		t.Errorf("tls = %+v", cfg.TLS)
	}
	// Key and certificate swapped.
	checkErrors(t, "tls: {cert_file: \""+key+"\", key_file: \""+cert+"\"}\n", []string{`1:18 cannot load TLS key pair`})
	cfg = mustParse(t, "backends:\n  v1:\n    endpoints: [\"https://a:1\"]\n    tls: {ca_file: \""+cert+"\", server_name: a}\n")
	if c := cfg.Backends["v1"].TLS; c == nil || c.CAFile != cert || c.ServerName != "a" || c.InsecureSkipVerify {
		t.Errorf("upstream tls = %+v", c)
	}
}

// Parsing the same text twice gives the same config.
func TestParseIsRepeatable(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err1 := Parse("x", data)
	b, err2 := Parse("x", data)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("two parses differ:\n%s\n%s", ja, jb)
	}
}

// TestRouteUpgrades: routes[].upgrades defaults to websocket only, keeps
// an empty list (no upgrades), is kept in lower case, and refuses h2c,
// repeats and names that are not tokens.
func TestRouteUpgrades(t *testing.T) {
	cfg, err := Parse("umbra.yaml", []byte(bk+`routes:
  - {name: a, backend: v1}
  - {name: b, backend: v1, upgrades: []}
  - {name: c, backend: v1, upgrades: [WebSocket, TLS]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{{"websocket"}, {}, {"websocket", "tls"}} {
		if got := cfg.Routes[i].Upgrades; !slices.Equal(got, want) || got == nil {
			t.Errorf("route %d: upgrades %q, want %q", i, got, want)
		}
	}
	runErrCases(t, []errCase{
		{"bad upgrades", bk + `routes:
  - name: a
    backend: v1
    upgrades: [h2c, websocket, WebSocket, "websocket/13", ""]
`, []string{`7:16 h2c cannot be allowed`, `7:32 upgrade "WebSocket" is listed twice`,
			`7:43 upgrade "websocket/13": a protocol name is an HTTP token`, `7:59 upgrade "": a protocol name`}},
	})
}
