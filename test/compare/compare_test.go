package comparetest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/umbragw/umbra/internal/compare"
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/test/testkit"
)

type handler = testkit.BodyHandler

func itemJSON(id, price string) string {
	return `{"id":"` + id + `","name":"widget","price":` + price + `,"tags":["a","b","c"]}`
}

// item answers an item at the given price, with a session cookie.
func item(price string) handler {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Set-Cookie", "sid=s3cr3t-set-cookie; Path=/")
		writeJSON(w, itemJSON(id(r), price))
	}
}

const itemsRoute = `routes:
  - name: items
    match: {path: "/v1/items/{id}", methods: [GET, POST]}
    backend: v1
    shadow: [{backend: v2, percent: 100, unsafe: allow}]
    compare: {secondary: v1b}
`

const getEP, postEP = "GET /v1/items/{id}", "POST /v1/items/{id}"

func hasDiff(ds []compare.Difference, want compare.Difference) bool {
	return slices.Contains(ds, want)
}

// 1. A changed field is a regression with samples; samples carry the
// request and the three answers, with credentials redacted.
func TestChangedFieldIsRegressionWithSamples(t *testing.T) {
	t.Parallel()
	tr := newTrio(t, item("10"), item("12"))
	g := start(t, "", tr.expand(itemsRoute))

	creds := []string{"Authorization", "Bearer s3cr3t-bearer", "Cookie", "session=s3cr3t-cookie",
		"X-Api-Key", "s3cr3t-key", "X-Auth-Token", "s3cr3t-token", "X-Trace", "visible"}
	for i := 0; i < 4; i++ {
		id := strconv.Itoa(i)
		r := g.do(t, "GET", "/v1/items/"+id+"?color=red", nil, creds...)
		if r.Status != 200 || string(r.Body) != itemJSON(id, "10") {
			t.Fatalf("live answer %d %s, want v1's", r.Status, r.Body)
		}
	}
	for i := 0; i < 2; i++ {
		r := g.do(t, "POST", "/v1/items/p"+strconv.Itoa(i), []byte(`{"qty":2}`), append(creds, "Content-Type", "application/json")...)
		if string(r.Body) != itemJSON("p"+strconv.Itoa(i), "10") {
			t.Fatalf("live answer %q, want v1's", r.Body)
		}
	}

	e := g.wait(t, "items", getEP, 4)
	if e.Compared != 4 || e.Differing != 4 || e.DiffRate != 1 || e.NoiseCompared != 4 {
		t.Errorf("GET endpoint: compared %d differing %d rate %v noise_compared %d, want 4 4 1 4", e.Compared, e.Differing, e.DiffRate, e.NoiseCompared)
	}
	if got := names(e.Regressions); !slices.Equal(got, []string{"$.price"}) {
		t.Fatalf("regressions %v, want [$.price]; report %s", got, g.rawReport(t))
	}
	if len(e.Noise) != 0 {
		t.Errorf("noise fields %v, want none (v1 and v1b agree)", names(e.Noise))
	}
	f := e.Regressions[0]
	if f.Raw != 4 || f.Noise != 0 || f.RawRate != 1 || f.NoiseRate != 0 || !f.Regression || f.MarkedNoise ||
		!reflect.DeepEqual(f.Kinds, map[string]int64{compare.KindValue: 4}) || f.Samples != 4 {
		t.Errorf("$.price = %+v, want raw 4, noise 0, kinds value:4, regression, 4 samples", f)
	}
	if fs := g.fields(t, "items", getEP); len(fs) != 1 || fs[0].Field != "$.price" || !fs[0].Regression {
		t.Errorf("fields endpoint: %+v, want only $.price as a regression", fs)
	}
	if n := g.compareTotal(t, "items", getEP, diffs.ResultDifferent); n != 4 {
		t.Errorf("umbra_compare_total{result=different} = %v, want 4", n)
	}

	samples, raw := g.samples(t, "items", getEP, "$.price")
	if len(samples) != 4 {
		t.Fatalf("%d samples, want 4: %s", len(samples), raw)
	}
	for _, s := range samples {
		if s.Method != "GET" || !strings.HasPrefix(s.URI, "/v1/items/") || !strings.HasSuffix(s.URI, "?color=red") || s.At.IsZero() {
			t.Errorf("sample request %s %s at %v", s.Method, s.URI, s.At)
		}
		for _, h := range []string{"Authorization", "Cookie", "X-Api-Key", "X-Auth-Token"} {
			if v := s.Header[h]; !slices.Equal(v, []string{"[redacted]"}) {
				t.Errorf("sample request header %s = %q, want [redacted]", h, v)
			}
		}
		if s.Header.Get("X-Trace") != "visible" || s.Header.Get("X-Umbra-Shadow") != "1" {
			t.Errorf("sample request headers %v: want X-Trace kept and the shadow marker", s.Header)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(s.URI, "/v1/items/"), "?color=red")
		for name, resp := range map[string]*diffs.SampleResponse{"live": s.Live, "candidate": s.Candidate, "secondary": s.Secondary} {
			if resp == nil {
				t.Errorf("sample has no %s answer", name)
				continue
			}
			want := itemJSON(id, "10")
			if name == "candidate" {
				want = itemJSON(id, "12")
			}
			if resp.Status != 200 || resp.Body != want {
				t.Errorf("sample %s answer %d %q, want 200 %q", name, resp.Status, resp.Body, want)
			}
			if v := resp.Header["Set-Cookie"]; !slices.Equal(v, []string{"[redacted]"}) {
				t.Errorf("sample %s Set-Cookie = %q, want [redacted]", name, v)
			}
		}
		want := compare.Difference{Field: "$.price", Path: "$.price", Kind: compare.KindValue, Live: "10", Other: "12"}
		if !hasDiff(s.Differences, want) {
			t.Errorf("sample differences %+v, want %+v", s.Differences, want)
		}
	}
	for _, key := range []string{`"request_headers"`, `"live"`, `"candidate"`, `"secondary"`, `"differences"`} {
		if !bytes.Contains(raw, []byte(key)) {
			t.Errorf("samples JSON has no %s key: %s", key, raw)
		}
	}

	g.wait(t, "items", postEP, 2)
	ps, _ := g.samples(t, "items", postEP, "$.price")
	if len(ps) != 2 || ps[0].Body != `{"qty":2}` || ps[0].Method != "POST" {
		t.Errorf("POST samples %+v, want 2 with the request body", ps)
	}

	// 404s name what is missing.
	g.Admin(t, "GET", samplesPath("items", getEP, "$.nope"), nil, http.StatusNotFound, nil)
	g.Admin(t, "GET", "/api/v1/diffs/items/fields", nil, http.StatusNotFound, nil)

	// No secret ever reaches the API or the store on disk.
	all := g.rawReport(t) + string(raw)
	g.stop(t)
	db, err := os.ReadFile(filepath.Join(g.DataDir, "umbra.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(db, []byte("$.price")) {
		t.Fatalf("store holds no comparison results")
	}
	for _, where := range []struct{ name, text string }{{"admin API", all}, {"store", string(db)}} {
		if strings.Contains(where.text, "s3cr3t") {
			t.Errorf("a credential leaked into the %s", where.name)
		}
	}
}

// noisy answers an item whose ts and rid change on every answer, as a
// timestamp and a random id do.
func noisy(price string, seq *atomic.Int64) handler {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) {
		n := seq.Add(1)
		writeJSON(w, fmt.Sprintf(`{"id":%q,"ts":%d,"rid":"r-%d-%x","name":"widget","price":%s}`,
			id(r), 1700000000000+n, n, rand.Uint64(), price))
	}
}

// 2. Fields that differ between two v1 instances are noise; without a
// secondary there is no noise information and they are regressions.
func TestRandomFieldsAreNoiseWithSecondary(t *testing.T) {
	t.Parallel()
	var seq atomic.Int64
	tr := newTrio(t, noisy("10", &seq), noisy("12", &seq))
	g := start(t, "", tr.expand(`routes:
  - name: with-secondary
    match: {path: "/a/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1b}
  - name: no-secondary
    match: {path: "/b/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {}
`))
	const n = 20
	g.getN(t, "/a/", n, nil)
	g.getN(t, "/b/", n, nil)

	e := g.wait(t, "with-secondary", "GET /a/{id}", n)
	if e.NoiseCompared != n {
		t.Errorf("noise_compared %d, want %d", e.NoiseCompared, n)
	}
	if got := names(e.Regressions); !slices.Equal(got, []string{"$.price"}) {
		t.Errorf("with a secondary: regressions %v, want only [$.price]", got)
	}
	for _, name := range []string{"$.ts", "$.rid"} {
		f, ok := field(e.Noise, name)
		if !ok || f.Regression || f.Raw != n || f.Noise != n || f.NoiseRate != 1 || f.MarkedNoise {
			t.Errorf("with a secondary: %s = %+v (found %v), want noise with raw = noise = %d", name, f, ok, n)
		}
	}
	if _, ok := field(e.Noise, "$.price"); ok {
		t.Errorf("$.price classified as noise")
	}

	e = g.wait(t, "no-secondary", "GET /b/{id}", n)
	if e.NoiseCompared != 0 || len(e.Noise) != 0 {
		t.Errorf("without a secondary: noise_compared %d, noise %v, want none", e.NoiseCompared, names(e.Noise))
	}
	got := names(e.Regressions)
	slices.Sort(got)
	if !slices.Equal(got, []string{"$.price", "$.rid", "$.ts"}) {
		t.Errorf("without a secondary: regressions %v, want $.price $.rid $.ts", got)
	}
	for _, f := range e.Regressions {
		if f.NoiseRate != 0 || f.RawRate != 1 {
			t.Errorf("without a secondary: %s raw rate %v noise rate %v, want 1 and 0", f.Field, f.RawRate, f.NoiseRate)
		}
	}
}

// 3. Arrays in another order: equal when declared unordered, otherwise
// one order difference.
func TestUnorderedArrays(t *testing.T) {
	t.Parallel()
	live := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, `{"id":"`+id(r)+`","tags":["a","b","c"]}`)
	}
	cand := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		tags := `["c","a","b"]`
		if id(r) == "changed" {
			tags = `["b","a","d"]`
		}
		writeJSON(w, `{"id":"`+id(r)+`","tags":`+tags+`}`)
	}
	tr := newTrio(t, live, cand)
	g := start(t, "", tr.expand(`routes:
  - name: ordered
    match: {path: "/o/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {}
  - name: unordered
    match: {path: "/u/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {unordered_arrays: ["$.tags"]}
`))
	g.getN(t, "/o/", 3, nil)
	g.getN(t, "/u/", 3, nil)

	e := g.wait(t, "unordered", "GET /u/{id}", 3)
	if e.Compared != 3 || e.Differing != 0 || len(e.Regressions)+len(e.Noise) != 0 {
		t.Errorf("unordered: compared %d differing %d fields %v %v, want 3 equal", e.Compared, e.Differing, names(e.Regressions), names(e.Noise))
	}
	// Unordered is not ignored: another element is still a difference.
	g.do(t, "GET", "/u/changed", nil)
	e = g.wait(t, "unordered", "GET /u/{id}", 4)
	if e.Differing != 1 {
		t.Errorf("unordered with a changed element: differing %d, want 1", e.Differing)
	}
	for _, f := range e.Regressions {
		if f.Kinds[compare.KindOrder] != 0 {
			t.Errorf("unordered array reported an order difference: %+v", f)
		}
	}

	e = g.wait(t, "ordered", "GET /o/{id}", 3)
	if e.Differing != 3 || len(e.Regressions) != 1 {
		t.Fatalf("ordered: differing %d regressions %v, want 3 and [$.tags]", e.Differing, names(e.Regressions))
	}
	if f := e.Regressions[0]; f.Field != "$.tags" || !reflect.DeepEqual(f.Kinds, map[string]int64{compare.KindOrder: 3}) {
		t.Errorf("ordered: %+v, want $.tags with kinds order:3", f)
	}
	s, _ := g.samples(t, "ordered", "GET /o/{id}", "$.tags")
	if len(s) == 0 || len(s[0].Differences) != 1 || s[0].Differences[0].Kind != compare.KindOrder || s[0].Differences[0].Path != "$.tags" {
		t.Errorf("ordered sample %+v, want one order difference at $.tags", s)
	}
}

// 4. Numeric tolerance is relative: 10.0 vs 10.0004 is equal within
// 0.001, 10 vs 11 is not; without a tolerance numbers compare exactly.
func TestNumericTolerance(t *testing.T) {
	t.Parallel()
	live := func(w http.ResponseWriter, r *http.Request, _ []byte) { writeJSON(w, `{"amount":10.0}`) }
	cand := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		amount := map[string]string{"close": "10.0004", "far": "11", "int": "10"}[id(r)]
		writeJSON(w, `{"amount":`+amount+`}`)
	}
	tr := newTrio(t, live, cand)
	g := start(t, "", tr.expand(`routes:
  - name: tol
    match: {path: "/t/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {numeric_tolerance: 0.001}
  - name: exact
    match: {path: "/e/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {}
`))
	for _, p := range []string{"/t/close", "/t/close", "/t/int", "/e/close", "/e/close", "/e/int"} {
		g.do(t, "GET", p, nil)
	}
	if e := g.wait(t, "tol", "GET /t/{id}", 3); e.Compared != 3 || e.Differing != 0 {
		t.Errorf("tolerance 0.001, 10.0 vs 10.0004 and 10: compared %d differing %d, want 3 equal; fields %v", e.Compared, e.Differing, names(e.Regressions))
	}
	g.do(t, "GET", "/t/far", nil)
	g.do(t, "GET", "/t/far", nil)
	e := g.wait(t, "tol", "GET /t/{id}", 5)
	if e.Differing != 2 || len(e.Regressions) != 1 || e.Regressions[0].Field != "$.amount" ||
		!reflect.DeepEqual(e.Regressions[0].Kinds, map[string]int64{compare.KindValue: 2}) {
		t.Errorf("tolerance 0.001, 10 vs 11: differing %d regressions %+v, want 2 value differences at $.amount", e.Differing, e.Regressions)
	}
	e = g.wait(t, "exact", "GET /e/{id}", 3)
	if e.Differing != 2 || len(e.Regressions) != 1 || e.Regressions[0].Field != "$.amount" {
		t.Errorf("no tolerance, 10.0 vs 10.0004 (twice) and 10: differing %d regressions %v, want 2 at $.amount", e.Differing, names(e.Regressions))
	}
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

// 5. gzip is decoded before comparing; Accept-Encoding reaches every
// backend as the client sent it (or not at all).
func TestGzipAnswers(t *testing.T) {
	t.Parallel()
	live := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("Content-Type", "application/json")
		body := itemJSON(id(r), "10")
		if strings.HasPrefix(r.URL.Path, "/z/") && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(gz(body))
			return
		}
		_, _ = w.Write([]byte(body))
	}
	cand := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/g/") {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(gz(itemJSON(id(r), "12")))
			return
		}
		_, _ = w.Write([]byte(itemJSON(id(r), "10")))
	}
	tr := newTrio(t, live, cand)
	g := start(t, "", tr.expand(`routes:
  - name: z
    match: {path: "/z/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1b}
  - name: g
    match: {path: "/g/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1b}
`))
	const ae = "gzip, br;q=0.8"
	for _, id := range []string{"gz0", "gz1", "gz2"} {
		r := g.do(t, "GET", "/z/"+id, nil, "Accept-Encoding", ae)
		if r.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(r.Body, gz(itemJSON(id, "10"))) {
			t.Fatalf("live gzip answer: encoding %q body %x, want v1's gzip bytes", r.Header.Get("Content-Encoding"), r.Body)
		}
	}
	for _, id := range []string{"plain0", "plain1"} {
		r := g.do(t, "GET", "/z/"+id, nil)
		if r.Header.Get("Content-Encoding") != "" || string(r.Body) != itemJSON(id, "10") {
			t.Fatalf("live plain answer: encoding %q body %q", r.Header.Get("Content-Encoding"), r.Body)
		}
	}
	e := g.wait(t, "z", "GET /z/{id}", 5)
	if e.Compared != 5 || e.Differing != 0 || e.NoiseCompared != 5 {
		t.Errorf("gzip vs plain, same JSON: compared %d differing %d noise_compared %d, want 5 0 5; fields %v",
			e.Compared, e.Differing, e.NoiseCompared, names(e.Regressions))
	}
	for _, u := range []*testkit.Upstream{tr.v1, tr.v1b, tr.v2} {
		got := 0
		for _, s := range u.Seen() {
			got++
			v, present := s.Header["Accept-Encoding"]
			switch {
			case strings.HasPrefix(s.Path, "/z/gz") && !slices.Equal(v, []string{ae}):
				t.Errorf("%s got Accept-Encoding %q for %s, want %q as the client sent it", u.Name, v, s.Path, ae)
			case strings.HasPrefix(s.Path, "/z/plain") && present:
				t.Errorf("%s got Accept-Encoding %q for %s, but the client sent none", u.Name, v, s.Path)
			}
		}
		if got != 5 {
			t.Errorf("%s saw %d requests, want 5", u.Name, got)
		}
	}

	// The gzip body is decoded, not compared as bytes: the changed field is found.
	g.do(t, "GET", "/g/1", nil, "Accept-Encoding", ae)
	g.do(t, "GET", "/g/2", nil, "Accept-Encoding", ae)
	e = g.wait(t, "g", "GET /g/{id}", 2)
	if got := names(e.Regressions); !slices.Equal(got, []string{"$.price"}) || e.Regressions[0].Kinds[compare.KindValue] != 2 {
		t.Errorf("plain vs gzip with a changed price: regressions %+v, want $.price value:2", e.Regressions)
	}
}

// 6. Non-JSON bodies: text is compared as text, other bytes as binary.
func TestTextAndBinaryBodies(t *testing.T) {
	t.Parallel()
	bin := []byte{0xff, 0xfe, 0x00, 0x01, 0x80, 0x81, 0xc3, 0x28}
	live := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if strings.HasPrefix(r.URL.Path, "/text/") {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("hello world\nsecond line\n"))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(bin)
	}
	cand := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		same := id(r) == "same"
		if strings.HasPrefix(r.URL.Path, "/text/") {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			body := "hello world\nsecond LINE\n"
			if same {
				body = "hello world\nsecond line\n"
			}
			_, _ = w.Write([]byte(body))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if same {
			_, _ = w.Write(bin)
			return
		}
		_, _ = w.Write(append(slices.Clone(bin), 0xfd))
	}
	tr := newTrio(t, live, cand)
	g := start(t, "", tr.expand(`routes:
  - name: text
    match: {path: "/text/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {}
  - name: bin
    match: {path: "/bin/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {}
`))
	for _, id := range []string{"same", "d1", "d2"} {
		if r := g.do(t, "GET", "/text/"+id, nil); string(r.Body) != "hello world\nsecond line\n" {
			t.Fatalf("live text answer %q", r.Body)
		}
	}
	for _, id := range []string{"same", "d1"} {
		if r := g.do(t, "GET", "/bin/"+id, nil); !bytes.Equal(r.Body, bin) {
			t.Fatalf("live binary answer %x, want %x", r.Body, bin)
		}
	}

	e := g.wait(t, "text", "GET /text/{id}", 3)
	if e.Compared != 3 || e.Differing != 2 || len(e.Regressions) != 1 || e.Regressions[0].Field != compare.FieldBody ||
		!reflect.DeepEqual(e.Regressions[0].Kinds, map[string]int64{compare.KindBodyText: 2}) {
		t.Errorf("text: compared %d differing %d regressions %+v, want 3, 2, body with body_text:2", e.Compared, e.Differing, e.Regressions)
	}
	if s, _ := g.samples(t, "text", "GET /text/{id}", "body"); len(s) == 0 || len(s[0].Differences) != 1 ||
		!strings.Contains(s[0].Differences[0].Live, "line 2, col 8") || !strings.Contains(s[0].Differences[0].Other, "LINE") {
		t.Errorf("text sample %+v, want the first difference at line 2, col 8", s)
	}

	e = g.wait(t, "bin", "GET /bin/{id}", 2)
	if e.Compared != 2 || e.Differing != 1 || len(e.Regressions) != 1 || e.Regressions[0].Field != compare.FieldBody ||
		!reflect.DeepEqual(e.Regressions[0].Kinds, map[string]int64{compare.KindBodyBinary: 1}) {
		t.Errorf("binary: compared %d differing %d regressions %+v, want 2, 1, body with body_binary:1", e.Compared, e.Differing, e.Regressions)
	}
	if s, _ := g.samples(t, "bin", "GET /bin/{id}", "body"); len(s) != 1 || len(s[0].Differences) != 1 ||
		!strings.Contains(s[0].Differences[0].Live, "8 bytes, sha256") || !strings.Contains(s[0].Differences[0].Other, "9 bytes, sha256") {
		t.Errorf("binary sample %+v, want lengths and hashes", s)
	}
}

// 7. Empty bodies and status codes are compared explicitly.
func TestEmptyBodiesAndStatus(t *testing.T) {
	t.Parallel()
	live := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/nc/"):
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == "/em/v2empty", strings.HasPrefix(r.URL.Path, "/st/"):
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}
	cand := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/nc/"):
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == "/em/v2body":
			_, _ = w.Write([]byte(`{"ok":true}`))
		case strings.HasPrefix(r.URL.Path, "/st/"):
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}
	tr := newTrio(t, live, cand)
	g := start(t, "", tr.expand(`routes:
  - name: nocontent
    match: {path: "/nc/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1b}
  - name: empty
    match: {path: "/em/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {}
  - name: status
    match: {path: "/st/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {}
`))
	for _, p := range []string{"/nc/1", "/nc/2", "/em/both", "/em/v2body", "/em/v2empty", "/st/1", "/st/2"} {
		r := g.do(t, "GET", p, nil)
		if strings.HasPrefix(p, "/st/") && (r.Status != 200 || string(r.Body) != `{"ok":true}`) {
			t.Fatalf("live answer to %s: %d %q, want v1's 200", p, r.Status, r.Body)
		}
	}

	if e := g.wait(t, "nocontent", "GET /nc/{id}", 2); e.Compared != 2 || e.Differing != 0 || e.NoiseCompared != 2 {
		t.Errorf("204 on both sides: compared %d differing %d, want 2 equal; fields %v", e.Compared, e.Differing, names(e.Regressions))
	}
	e := g.wait(t, "empty", "GET /em/{id}", 3)
	if e.Compared != 3 || e.Differing != 2 || len(e.Regressions) != 1 || e.Regressions[0].Field != compare.FieldBody ||
		!reflect.DeepEqual(e.Regressions[0].Kinds, map[string]int64{compare.KindExtra: 1, compare.KindMissing: 1}) {
		t.Errorf("200 empty vs 200 non-empty: compared %d differing %d regressions %+v, want 3, 2, body extra:1 missing:1",
			e.Compared, e.Differing, e.Regressions)
	}
	e = g.wait(t, "status", "GET /st/{id}", 2)
	if e.Compared != 2 || e.Differing != 2 || len(e.Regressions) != 1 || e.Regressions[0].Field != compare.FieldStatus ||
		!reflect.DeepEqual(e.Regressions[0].Kinds, map[string]int64{compare.KindStatus: 2}) {
		t.Errorf("200 vs 500: regressions %+v, want status with status:2", e.Regressions)
	}
	if s, _ := g.samples(t, "status", "GET /st/{id}", "status"); len(s) == 0 || s[0].Live.Status != 200 || s[0].Candidate.Status != 500 {
		t.Errorf("status sample %+v, want live 200 and candidate 500", s)
	}
}

// 8. Answers over compare.max_body are not compared but counted as too
// large, in the report and the metric; the client still gets all of it.
func TestBodiesOverMaxBodyAreCountedNotCompared(t *testing.T) {
	t.Parallel()
	big := `{"id":"x","blob":"` + strings.Repeat("a", 4096-len(`{"id":"x","blob":""}`)) + `"}`
	if len(big) != 4096 {
		t.Fatalf("big body is %d bytes", len(big))
	}
	small := `{"id":"x","blob":"a"}`
	live := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if id(r) == "small" || id(r) == "v2big" {
			writeJSON(w, small)
			return
		}
		writeJSON(w, big)
	}
	cand := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if id(r) == "small" {
			writeJSON(w, small)
			return
		}
		writeJSON(w, big)
	}
	tr := newTrio(t, live, cand)
	g := start(t, "", tr.expand(`routes:
  - name: big
    match: {path: "/big/{id}"}
    backend: v1
    shadow: [{backend: v2, percent: 100}]
    compare: {secondary: v1b, max_body: 1KiB}
`))
	for _, id := range []string{"b1", "b2", "b3"} {
		if r := g.do(t, "GET", "/big/"+id, nil); string(r.Body) != big {
			t.Fatalf("live answer of %d bytes, want v1's 4096", len(r.Body))
		}
	}
	g.do(t, "GET", "/big/v2big", nil)
	g.do(t, "GET", "/big/small", nil)

	const ep = "GET /big/{id}"
	e := g.wait(t, "big", ep, 5)
	if e.Compared != 1 || e.Differing != 0 || !reflect.DeepEqual(e.Skipped, map[string]int64{diffs.ResultTooLarge: 4}) {
		t.Errorf("compared %d differing %d skipped %v, want 1 compared and too_large:4", e.Compared, e.Differing, e.Skipped)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(g.rawReport(t))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(compact.String(), `"skipped":{"too_large":4}`) {
		t.Errorf("report JSON lacks skipped too_large 4: %s", compact.String())
	}
	if n := g.compareTotal(t, "big", ep, diffs.ResultTooLarge); n != 4 {
		t.Errorf("umbra_compare_total{result=too_large} = %v, want 4", n)
	}
	if n := g.compareTotal(t, "big", ep, diffs.ResultEqual); n != 1 {
		t.Errorf("umbra_compare_total{result=equal} = %v, want 1", n)
	}
}
