package egress

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
)

func TestShadowTraceTag(t *testing.T) {
	m := newMinter([]byte("0123456789abcdef0123456789abcdef"))
	other := newMinter([]byte("another key of thirty-two bytes!"))
	for range 1000 {
		id := m.mint()
		if !m.isShadow(id) {
			t.Fatalf("minted id %s not recognised", id)
		}
		if other.isShadow(id) {
			t.Fatalf("id %s recognised under another key", id)
		}
		tp := id.traceparent()
		got, ok := parseTraceparent(tp)
		if !ok || got != id {
			t.Fatalf("traceparent %q parsed as %s, %v", tp, got, ok)
		}
	}
	// A random trace id is not a copy's.
	for range 1000 {
		if m.isShadow(newTraceID()) {
			t.Fatal("a random trace id was taken for a copy's")
		}
	}
}

func TestParseTraceparent(t *testing.T) {
	ok := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{ok, true},
		{ok + "-extra", true}, // a later version may append fields
		{ok + "x", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false},
		{"", false},
	} {
		if _, got := parseTraceparent(tc.in); got != tc.want {
			t.Errorf("parseTraceparent(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestLoadKeyCreatesAndKeeps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "egress.key")
	a, err := loadKey(path)
	if err != nil || len(a) != 32 {
		t.Fatalf("loadKey = %x, %v", a, err)
	}
	b, err := loadKey(path)
	if err != nil || string(a) != string(b) {
		t.Fatalf("second load = %x, %v; want %x", b, err, a)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode())
	}
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, err := loadKey(path); err == nil {
		t.Error("a bad key file was accepted")
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"*.hoverfly.io", "docs.hoverfly.io", true},
		{"*.hoverfly.io", "docs.specto.io", false},
		{"h*verfly.*", "hooverfly.com", true},
		{"/v1/charges/*", "/v1/charges/ch_1", true},
		{"/v1/*/refunds", "/v1/charges/ch_1/refunds", true},
		{"/v1/*/refunds", "/v1/charges", false},
		{"exact", "exact", true},
		{"a*a", "a", false},
	} {
		if got := globMatch(tc.pat, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v", tc.pat, tc.s, got)
		}
	}
}

func TestRedaction(t *testing.T) {
	r, err := newRedactor(config.Redact{Headers: []string{"x-signature"}, JSON: []string{"$.card.number", "$..cvc", "$.items[*].secret"}})
	if err != nil {
		t.Fatal(err)
	}
	h := r.header(http.Header{"Authorization": {"Bearer sk"}, "X-Signature": {"s"}, "Stripe-Api-Key": {"k"}, "Accept": {"a"}}, false)
	if h.Get("Authorization") != Redacted || h.Get("X-Signature") != Redacted || h.Get("Stripe-Api-Key") != Redacted || h.Get("Accept") != "a" {
		t.Errorf("headers = %v", h)
	}
	in := `{"amount":12345678901234567890,"card":{"number":"4242","cvc":"123"},"items":[{"secret":1,"n":2}],"x":{"cvc":"9"}}`
	got := string(r.body([]byte(in), "application/json"))
	for _, leak := range []string{"4242", `"123"`, `"9"`, `"secret":1`} {
		if strings.Contains(got, leak) {
			t.Errorf("redacted body %s still holds %s", got, leak)
		}
	}
	if !strings.Contains(got, "12345678901234567890") {
		t.Errorf("redaction changed a number: %s", got)
	}
	plain := []byte(`{"amount":1}`)
	if got := r.body(plain, "application/json"); string(got) != string(plain) {
		t.Errorf("a body without redacted fields changed: %s", got)
	}
	if got := r.body([]byte("card=4242"), "application/x-www-form-urlencoded"); string(got) != "card=4242" {
		t.Errorf("a non-JSON body changed: %s", got)
	}
}

func TestEndpointTemplates(t *testing.T) {
	svc := &service{}
	for _, tpl := range []string{"/v1/charges/{id}", "/v1/customers/{id}/cards"} {
		svc.templates = append(svc.templates, newTemplate(tpl))
	}
	for in, want := range map[string]string{
		"/v1/charges/ch_1":          "POST /v1/charges/{id}",
		"/v1/charges":               "POST /v1/charges",
		"/v1/charges/":              "POST /v1/charges/",
		"/v1/customers/cu_1/cards":  "POST /v1/customers/{id}/cards",
		"/v1/customers/cu_1/cards/": "POST /v1/customers/cu_1/cards/",
		"/v1/customers//cards":      "POST /v1/customers//cards",
		"/v2/charges/ch_1":          "POST /v2/charges/ch_1",
		"/v1/charges/ch_1/refunds":  "POST /v1/charges/ch_1/refunds",
		"":                          "POST ",
	} {
		if got := svc.endpoint("POST", in); got != want {
			t.Errorf("endpoint(%q) = %q, want %q", in, got, want)
		}
	}
	if got := svc.endpoint("PROPFIND", "/v1/charges/x"); got != "PROPFIND /v1/charges/{id}" {
		t.Errorf("an unusual method: %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { svc.endpoint("POST", "/v1/customers/cu_1/cards") }); n != 0 {
		t.Errorf("naming a call allocates %v times", n)
	}
}

const hoverflyFile = `{
  "data": {"pairs": [
    {"request": {"method": [{"matcher": "exact", "value": "POST"}],
                 "path": [{"matcher": "glob", "value": "/v1/charges*"}],
                 "body": [{"matcher": "jsonpath", "value": "$.card.number"}]},
     "response": {"status": 402, "body": "{\"error\":\"card_declined\"}", "headers": {"Content-Type": ["application/json"]}}},
    {"request": {"method": [{"matcher": "exact", "value": "POST"}],
                 "path": [{"matcher": "regex", "value": "^/v1/charges$"}],
                 "body": [{"matcher": "json", "value": "{\"amount\": 100, \"currency\": \"usd\"}"}]},
     "response": {"status": 201, "body": "{\"id\":\"ch_sim\"}"}},
    {"request": {"path": [{"matcher": "exact", "value": "/v1/charges"}],
                 "body": [{"matcher": "jsonpartial", "value": "{\"currency\": \"eur\"}"}],
                 "query": {"expand": [{"matcher": "exact", "value": "customer"}]},
                 "headers": {"x-mode": [{"matcher": "negate", "value": "live"}]}},
     "response": {"status": 200, "body": "ZXVyby1iaW5hcnk=", "encodedBody": true}}
  ]},
  "meta": {"schemaVersion": "v5.2", "hoverflyVersion": "v1.5.0", "timeExported": "2024-01-01T00:00:00Z"}
}`

func TestHoverflyMatchers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim.json")
	os.WriteFile(path, []byte(hoverflyFile), 0o600)
	sim, err := loadSimulations([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, target, body string, hdr ...string) *message {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return sim.match(r, "api.example", r.URL.EscapedPath(), []byte(body))
	}
	if m := call("POST", "/v1/charges", `{"card":{"number":"4000"}}`); m == nil || m.Status != 402 {
		t.Errorf("jsonpath pair: %+v", m)
	}
	if m := call("POST", "/v1/charges", `{ "currency":"usd", "amount":100 }`); m == nil || m.Status != 201 || string(m.Body) != `{"id":"ch_sim"}` {
		t.Errorf("json pair (member order and spacing differ): %+v", m)
	}
	if m := call("POST", "/v1/charges", `{"amount":101,"currency":"usd"}`); m != nil {
		t.Errorf("json pair matched another amount: %+v", m)
	}
	if m := call("PUT", "/v1/charges?expand=customer", `{"currency":"eur","amount":5}`, "X-Mode", "test"); m == nil || string(m.Body) != "euro-binary" {
		t.Errorf("jsonpartial + query + negate header, encoded body: %+v", m)
	}
	if m := call("PUT", "/v1/charges?expand=customer", `{"currency":"eur"}`, "X-Mode", "live"); m != nil {
		t.Errorf("negate matcher matched: %+v", m)
	}
	if m := call("PUT", "/v1/charges", `{"currency":"eur"}`); m != nil {
		t.Errorf("missing query parameter matched: %+v", m)
	}
}

func TestHoverflyRejectsWhatItCannotHonour(t *testing.T) {
	for name, doc := range map[string]string{
		"v2 schema":     `{"data":{"pairs":[]},"meta":{"schemaVersion":"v2"}}`,
		"xpath":         `{"data":{"pairs":[{"request":{"body":[{"matcher":"xpath","value":"/a"}]},"response":{}}]},"meta":{"schemaVersion":"v5"}}`,
		"state":         `{"data":{"pairs":[{"request":{"requiresState":{"a":"b"}},"response":{}}]},"meta":{"schemaVersion":"v5"}}`,
		"bad regex":     `{"data":{"pairs":[{"request":{"path":[{"matcher":"regex","value":"("}]},"response":{}}]},"meta":{"schemaVersion":"v5"}}`,
		"bad json":      `{"data":{"pairs":[{"request":{"body":[{"matcher":"json","value":"{"}]},"response":{}}]},"meta":{"schemaVersion":"v5"}}`,
		"bad base64":    `{"data":{"pairs":[{"request":{},"response":{"body":"!!","encodedBody":true}}]},"meta":{"schemaVersion":"v5"}}`,
		"not json":      `nope`,
		"bad jsonpath":  `{"data":{"pairs":[{"request":{"body":[{"matcher":"jsonpath","value":"$[?(@.a)]"}]},"response":{}}]},"meta":{"schemaVersion":"v5"}}`,
		"doMatch chain": `{"data":{"pairs":[{"request":{"body":[{"matcher":"jsonpath","value":"$.a","doMatch":{"matcher":"exact","value":"1"}}]},"response":{}}]},"meta":{"schemaVersion":"v5"}}`,
	} {
		path := filepath.Join(t.TempDir(), "sim.json")
		os.WriteFile(path, []byte(doc), 0o600)
		if _, err := loadSimulations([]string{path}); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
}

func TestExportRoundTrip(t *testing.T) {
	recs := []exportedCall{
		{at: time.Unix(1, 0), req: message{Method: "POST", URI: "/v1/charges?expand=customer", Body: []byte(`{"amount":100}`)},
			resp: message{Status: 201, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"ch_1"}`)}},
		{at: time.Unix(2, 0), req: message{Method: "GET", URI: "/v1/files/f%201"},
			resp: message{Status: 200, Body: []byte{0, 1, 2, 0xff}}},
	}
	sim := exportSimulation(recs, "api.example")
	b, err := json.Marshal(sim)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "export.json")
	os.WriteFile(path, b, 0o600)
	loaded, err := loadSimulations([]string{path})
	if err != nil {
		t.Fatalf("re-import: %v\n%s", err, b)
	}
	r := httptest.NewRequest("POST", "/v1/charges?expand=customer", nil)
	if m := loaded.match(r, "api.example", "/v1/charges", []byte(`{ "amount": 100 }`)); m == nil || m.Status != 201 || string(m.Body) != `{"id":"ch_1"}` || m.Header.Get("Content-Type") != "application/json" {
		t.Errorf("re-imported charge: %+v", m)
	}
	r = httptest.NewRequest("GET", "/v1/files/f%201", nil)
	if m := loaded.match(r, "api.example", "/v1/files/f%201", nil); m == nil || string(m.Body) != "\x00\x01\x02\xff" {
		t.Errorf("re-imported binary answer: %+v", m)
	}
	if m := loaded.match(r, "other.example", "/v1/files/f%201", nil); m != nil {
		t.Errorf("matched another destination: %+v", m)
	}
}
