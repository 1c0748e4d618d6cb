package rollouttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/rollout"

	"github.com/umbragw/umbra/test/testkit"
)

// servedBy is the header the test backends name themselves in.
const servedBy = "X-Served-By"

// top is the top of every test config: no access log (tests send
// thousands of requests and read no log line) and a shutdown grace above
// net/http's 5 s for fresh connections.
var top = testkit.Top{Grace: 10 * time.Second}

// backend is a test upstream. Every answer carries X-Served-By with its
// name and the same JSON body whatever the version (so comparisons find
// no difference); the test sets its delay and failure pattern at any time.
type backend struct {
	*httptest.Server
	name      string
	delay     atomic.Int64 // nanoseconds each answer waits
	jitter    atomic.Int64 // up to this many nanoseconds more, deterministic per request
	failEvery atomic.Int64 // 0: never; n: every n-th request answers 500
	hits      atomic.Int64
	fails     atomic.Int64 // 500s answered
	firstFail atomic.Int64 // unix nanos of the first 500
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	n := b.hits.Add(1)
	if d := b.delay.Load(); d > 0 {
		if j := b.jitter.Load(); j > 0 {
			d += (n * 7919 % 101) * j / 100
		}
		time.Sleep(time.Duration(d))
	}
	w.Header().Set(servedBy, b.name)
	w.Header().Set("Content-Type", "application/json")
	if every := b.failEvery.Load(); every > 0 && n%every == 0 {
		b.firstFail.CompareAndSwap(0, time.Now().UnixNano())
		b.fails.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":"boom"}`)
		return
	}
	fmt.Fprintf(w, `{"user":%q,"path":%q,"ok":true}`, r.Header.Get("X-User-ID"), r.URL.Path)
}

// failAll makes every later answer a 500 (counting from the next request).
func (b *backend) failAll() { b.failEvery.Store(1) }

// startGW starts a gateway on body after the standard top.
func startGW(t *testing.T, body string) *testkit.Gateway {
	t.Helper()
	return testkit.Launch(t, "rollouttest", top, body)
}

// get sends one request as user and returns the status and who served it.
func get(c *http.Client, url, user string, hdr ...string) (status int, by string, err error) {
	if user != "" {
		hdr = append([]string{"X-User-ID", user}, hdr...)
	}
	r, err := testkit.Send(c, http.MethodGet, url, nil, hdr...)
	return r.Status, r.Header.Get(servedBy), err
}

// assign sends one request per user, with workers in parallel, and returns
// who served each user.
func assign(t *testing.T, c *http.Client, url string, users []string, workers int) map[string]string {
	t.Helper()
	out := make([]string, len(users))
	errs := make([]error, len(users))
	testkit.Parallel(len(users), workers, func(i int) { _, out[i], errs[i] = get(c, url, users[i]) })
	return byUser(t, users, out, errs)
}

// byUser pairs users with who served them, failing on the first error.
func byUser(t *testing.T, users, served []string, errs []error) map[string]string {
	t.Helper()
	m := make(map[string]string, len(users))
	for i, u := range users {
		if errs[i] != nil {
			t.Fatalf("%s: %v", u, errs[i])
		}
		m[u] = served[i]
	}
	return m
}

// assignHandler is assign through the gateway's handler, called in
// process: the route's split and proxy run as for a request from the
// listener, and the backends are reached over HTTP.
func assignHandler(t *testing.T, g *testkit.Gateway, path string, users []string, workers int) map[string]string {
	t.Helper()
	h := g.Handler()
	out := make([]string, len(users))
	errs := make([]error, len(users))
	testkit.Parallel(len(users), workers, func(i int) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("X-User-ID", users[i])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		out[i] = rec.Header().Get(servedBy)
		if rec.Code != http.StatusOK {
			errs[i] = fmt.Errorf("status %d", rec.Code)
		}
	})
	return byUser(t, users, out, errs)
}

func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// traffic sends requests from many distinct users until stopped.
type traffic struct {
	*testkit.Loop
	sent    atomic.Int64
	errs    atomic.Int64
	failed  atomic.Int64 // answers with a 5xx status
	byName  sync.Map     // backend name -> *atomic.Int64
	lastErr atomic.Value
}

// startTraffic runs workers sending GET url as users prefix-0 ...
// prefix-(pool-1), round robin. It stops at cleanup at the latest.
func startTraffic(t *testing.T, url, prefix string, workers, pool int) *traffic {
	t.Helper()
	return startTrafficAll(t, []string{url}, prefix, workers, pool)
}

// startTrafficAll is startTraffic over several gateways (a fleet's
// replicas behind a load balancer): request i goes to urls[i%len(urls)].
func startTrafficAll(t *testing.T, urls []string, prefix string, workers, pool int) *traffic {
	t.Helper()
	c := testkit.NewClient(t, 64, testkit.Wait.Timeout)
	tr := &traffic{}
	tr.Loop = testkit.StartLoop(t, workers, 0, func(i int, stop <-chan struct{}) {
		// Blocks of 5 requests per gateway: a user's requests land on
		// every gateway in turn.
		code, by, err := get(c, urls[(i/5)%len(urls)], prefix+strconv.Itoa(i%pool))
		if err != nil {
			tr.errs.Add(1)
			tr.lastErr.Store(err)
			select { // the gateway may be shutting down; do not spin
			case <-stop:
			case <-time.After(10 * time.Millisecond):
			}
			return
		}
		tr.sent.Add(1)
		if code >= 500 {
			tr.failed.Add(1)
		}
		v, _ := tr.byName.LoadOrStore(by, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	})
	return tr
}

func (tr *traffic) served(name string) int64 {
	if v, ok := tr.byName.Load(name); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// whileRunning is testkit.Wait.UntilTrue, failing at once (with the decisions) if the
// route's rollout ends meanwhile.
func whileRunning(t *testing.T, g *testkit.Gateway, route, what string, cond func() bool) {
	t.Helper()
	testkit.Wait.UntilTrue(t, what, func() bool {
		if cond() {
			return true
		}
		if st := status(t, g, route); st.Phase != rollout.Running && st.Phase != rollout.Paused {
			t.Fatalf("rollout %s ended %s while waiting for %s:\n%s", route, st.Phase, what, dump(st.Decisions))
		}
		return false
	})
}

// calm is the analysis of plans whose v2 is healthy: the latency judgement
// demands more evidence, so that scheduling noise of two shared cores
// under -race, which lands on both versions alike but not always evenly
// in small windows, is not read as a regression. The default judgement
// is exercised by the unit tests and TestLatencyRollsBack.
const calm = "analysis: {latency: {confidence: 0.999, max_p99_ratio: 5}}"

// status is GET /api/v1/rollouts/{route}.
func status(t *testing.T, g *testkit.Gateway, route string) rollout.Status {
	t.Helper()
	return decodeStatus(t, g.GetJSON(t, "/api/v1/rollouts/"+route, nil))
}

// decodeStatus reads a rollout status (the API numbers steps from 1;
// rollout.Status reads them back as indexes).
func decodeStatus(t *testing.T, body []byte) rollout.Status {
	t.Helper()
	var st rollout.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("decoding rollout status: %v\n%s", err, body)
	}
	return st
}

// command is POST /api/v1/rollouts/{route}/{cmd}.
func command(t *testing.T, g *testkit.Gateway, route, cmd string) (int, []byte) {
	t.Helper()
	return g.AdminDo(t, http.MethodPost, "/api/v1/rollouts/"+route+"/"+cmd, nil)
}

func mustCommand(t *testing.T, g *testkit.Gateway, route, cmd string) rollout.Status {
	t.Helper()
	code, body := command(t, g, route, cmd)
	if code != http.StatusOK {
		t.Fatalf("POST %s/%s: %d %s", route, cmd, code, body)
	}
	return decodeStatus(t, body)
}

// waitPhase polls the rollout until it leaves running (or reaches phase).
func waitPhase(t *testing.T, g *testkit.Gateway, route string, phase rollout.Phase) rollout.Status {
	t.Helper()
	var st rollout.Status
	testkit.Wait.UntilTrue(t, "rollout "+route+" phase "+string(phase), func() bool {
		st = status(t, g, route)
		if st.Phase != phase && st.Phase != rollout.Running && st.Phase != rollout.Paused {
			t.Fatalf("rollout %s ended %s, want %s:\n%s", route, st.Phase, phase, dump(st.Decisions))
		}
		return st.Phase == phase
	})
	return st
}

// waitStep polls the rollout until it is at step (0-based) or beyond.
func waitStep(t *testing.T, g *testkit.Gateway, route string, step int) rollout.Status {
	t.Helper()
	var st rollout.Status
	testkit.Wait.UntilTrue(t, fmt.Sprintf("rollout %s step %d", route, step+1), func() bool {
		st = status(t, g, route)
		if st.Phase != rollout.Running && st.Phase != rollout.Paused && st.Phase != rollout.Promoted {
			t.Fatalf("rollout %s ended %s waiting for step %d:\n%s", route, st.Phase, step+1, dump(st.Decisions))
		}
		return st.Step >= step
	})
	return st
}

func last(st rollout.Status) rollout.Decision {
	if len(st.Decisions) == 0 {
		return rollout.Decision{}
	}
	return st.Decisions[len(st.Decisions)-1]
}

// moves lists the decisions other than holds.
func moves(ds []rollout.Decision) []rollout.Decision {
	var out []rollout.Decision
	for _, d := range ds {
		if d.Action != "hold" {
			out = append(out, d)
		}
	}
	return out
}

func actions(ds []rollout.Decision) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Action)
	}
	return strings.Join(out, ",")
}

func dump(ds []rollout.Decision) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "  %s step %d %g%% %s: %s %v\n", d.At.Format("15:04:05.000"), d.Step+1, d.Weight, d.Action, d.Reason, d.Inputs)
	}
	return b.String()
}
