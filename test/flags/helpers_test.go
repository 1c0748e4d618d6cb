package flagstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/umbragw/umbra/internal/gateway"
	"github.com/umbragw/umbra/test/testkit"
)

// TestMain shuts the OpenFeature SDK's providers down after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	openfeature.Shutdown()
	os.Exit(code)
}

// base starts every test config: no access log (the load tests send
// thousands of requests) and a short grace. start adds the data_dir.
var base = testkit.Top{Grace: 2 * time.Second}.YAML()

// env is a running gateway started from files on disk.
type env struct {
	*testkit.Gateway
	CfgPath string // umbra.yaml
	Flags   string // flags.json
	C       *http.Client
	ups     map[string]*upstream
}

// configText is the full text start writes for cfg: base, data_dir and
// cfg with its placeholders expanded.
func (e *env) configText(cfg string) string {
	return base + "data_dir: " + filepath.Join(e.Dir, "data") + "\n" + expand(cfg, e.Dir, e.ups)
}

// expand replaces DIR (the test's temp dir) and BACKEND:name (an
// upstream's URL) placeholders in config text.
func expand(text, dir string, ups map[string]*upstream) string {
	text = strings.ReplaceAll(text, "DIR", dir)
	for name, u := range ups {
		text = strings.ReplaceAll(text, "URL_"+name+"_", strconv.Quote(u.URL))
	}
	return text
}

// start writes flagsJSON to DIR/flags.json, the extra files (name,
// content pairs) to DIR and base+cfg to DIR/umbra.yaml, loads the config
// with config.Load, builds the gateway with gateway.New and starts it.
// Cleanup shuts it down and prints its log tail on failure.
func start(t *testing.T, cfg, flagsJSON string, ups map[string]*upstream, extra ...string) *env {
	t.Helper()
	e, err := startE(t, cfg, flagsJSON, ups, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// startE is start for goroutines other than the test's (gherkin
// scenarios): it returns what went wrong instead of failing t.
func startE(t *testing.T, cfg, flagsJSON string, ups map[string]*upstream, extra ...string) (*env, error) {
	dir := t.TempDir()
	e := &env{CfgPath: filepath.Join(dir, "umbra.yaml"), Flags: filepath.Join(dir, "flags.json"), ups: ups}
	files := append([]string{}, extra...)
	if flagsJSON != "" {
		files = append(files, "flags.json", flagsJSON)
	}
	for i := 0; i+1 < len(files); i += 2 {
		if err := os.WriteFile(filepath.Join(dir, files[i]), []byte(files[i+1]), 0o644); err != nil {
			return nil, err
		}
	}
	text := base + "data_dir: " + filepath.Join(dir, "data") + "\n" + expand(cfg, dir, ups)
	g, err := testkit.TryStart(t, gateway.Options{Version: "flagstest"}, e.CfgPath, text)
	if err != nil {
		return nil, err
	}
	e.Gateway, e.C = g, testkit.NewClient(t, 32, testkit.Wait.Timeout)
	return e, nil
}

func sha(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// flagsInfo is GET /api/v1/flags.
type flagsInfo struct {
	Source  string `json:"source"`
	Hash    string `json:"hash"`
	Version uint64 `json:"version"`
	Flags   int    `json:"flags"`
	List    []struct {
		Key               string   `json:"key"`
		Variants          []string `json:"variants"`
		NeedsTargetingKey bool     `json:"needs_targeting_key"`
	} `json:"list"`
}

func (e *env) flagsInfo(t *testing.T) flagsInfo {
	t.Helper()
	var fi flagsInfo
	e.GetJSON(t, "/api/v1/flags", &fi)
	return fi
}

// waitFlags waits until the running flag set is the file text.
func (e *env) waitFlags(t *testing.T, text string) flagsInfo {
	t.Helper()
	want := sha(text)
	var fi flagsInfo
	testkit.Wait.Until(t, "the flag file to be loaded", func() (bool, string) {
		fi = e.flagsInfo(t)
		return fi.Hash == want, fmt.Sprintf("hash %.12s version %d, want hash %.12s", fi.Hash, fi.Version, want)
	})
	return fi
}

// get sends a GET with header name/value pairs.
func (e *env) get(t *testing.T, path string, hdr ...string) testkit.Response {
	t.Helper()
	return testkit.Do(t, e.C, "GET", e.URL+path, nil, hdr...)
}

// ofrepPost POSTs body to the main listener's path (an OFREP path).
func ofrepPost(c *http.Client, url, body string, hdr ...string) (testkit.Response, error) {
	return testkit.Send(c, "POST", url, strings.NewReader(body), append([]string{"Content-Type", "application/json"}, hdr...)...)
}

// evalBody is an OFREP request body for a context given as pairs.
func evalBody(kv ...string) string {
	ctx := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		ctx[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(map[string]any{"context": ctx})
	return string(b)
}

// ofrepAnswer is one OFREP evaluation (success or error).
type ofrepAnswer struct {
	Key          string         `json:"key"`
	Value        any            `json:"value"`
	Reason       string         `json:"reason"`
	Variant      string         `json:"variant"`
	Metadata     map[string]any `json:"metadata"`
	ErrorCode    string         `json:"errorCode"`
	ErrorDetails string         `json:"errorDetails"`
}

type bulkAnswer struct {
	Flags        []ofrepAnswer `json:"flags"`
	ErrorCode    string        `json:"errorCode"`
	ErrorDetails string        `json:"errorDetails"`
}

// decodeNoT is decode for goroutines that may not fail the test: a body
// that does not decode leaves the zero value, which no check accepts.
func decodeNoT[T any](b []byte) T {
	var v T
	_ = json.Unmarshal(b, &v)
	return v
}

// domains numbers the OpenFeature domains the tests register.
var domains atomic.Int64

// sdkClient registers the real OFREP provider pointed at the gateway's
// base URL (the provider appends /ofrep/v1/...) under a domain of its
// own and returns an OpenFeature client for it.
func sdkClient(t *testing.T, e *env, opts ...ofrep.Option) *openfeature.Client {
	t.Helper()
	c, err := sdkClientE(t.Name(), e, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sdkClientE is sdkClient for goroutines other than the test's.
func sdkClientE(name string, e *env, opts ...ofrep.Option) (*openfeature.Client, error) {
	domain := fmt.Sprintf("%s#%d", name, domains.Add(1))
	opts = append([]ofrep.Option{ofrep.WithClient(e.C)}, opts...)
	if err := openfeature.SetNamedProviderAndWait(domain, ofrep.NewProvider(e.URL, opts...)); err != nil {
		return nil, err
	}
	return openfeature.NewClient(domain), nil
}

// upstream is a backend echoing requests as JSON (testkit.Echo) with an
// X-Backend header naming it.
type upstream struct {
	*testkit.Upstream
	copies chan testkit.Echo // shadow copies received (X-Umbra-Shadow: 1), when there is room
}

func newUpstream(t *testing.T, name string) *upstream {
	t.Helper()
	u := &upstream{copies: make(chan testkit.Echo, 16)}
	echo := testkit.EchoHandler(name)
	u.Upstream = testkit.NewUpstream(t, name, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Header.Get("X-Umbra-Shadow") == "1" {
			select {
			case u.copies <- testkit.EchoOf(name, r, body):
			default:
			}
		}
		echo(w, r, body)
	})
	return u
}

// upstreams starts v1 and v2.
func upstreams(t *testing.T) map[string]*upstream {
	return map[string]*upstream{"v1": newUpstream(t, "v1"), "v2": newUpstream(t, "v2")}
}

// backendsYAML declares a backend per upstream, v1 and v2.
const backendsYAML = `backends:
  v1: {endpoints: [URL_v1_]}
  v2: {endpoints: [URL_v2_]}
`

// servedBy is the X-Backend of an answer, or "404" for umbra's own 404.
func servedBy(r testkit.Response) string {
	if b := r.Header.Get("X-Backend"); b != "" {
		return b
	}
	if r.Status == http.StatusNotFound && bytes.Contains(r.Body, []byte(`"no_route"`)) {
		return "404"
	}
	return fmt.Sprintf("status %d: %s", r.Status, r.Body)
}

// testkitSend is a GET to the main listener that may run on any goroutine.
func testkitSend(e *env, path string, hdr ...string) (testkit.Response, error) {
	return testkit.Send(e.C, "GET", e.URL+path, nil, hdr...)
}

// testkitDo sends a request without a body to the main listener.
func testkitDo(t *testing.T, e *env, method, path string, hdr ...string) testkit.Response {
	t.Helper()
	return testkit.Do(t, e.C, method, e.URL+path, nil, hdr...)
}
