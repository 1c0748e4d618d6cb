package monitoringtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umbragw/umbra/test/testkit"
)

// TestMonitoringKitAgainstPrometheus starts a real Prometheus (Debian's
// package) with deploy/monitoring/umbra-rules.yml, scraping a running
// gateway (and a dead address, as a second instance of the job) every
// second while the fixture's traffic runs and its config and flag files
// are broken. Through Prometheus's HTTP API it then checks that every
// dashboard panel expression parses and returns data, that every rule
// loaded and evaluates without error, and that every alert is pending or
// firing, which is what its expression returning data means.
func TestMonitoringKitAgainstPrometheus(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (Debian package prometheus; .ci/run installs it): the kit's queries are not checked against a server")
	}
	rules := readRules(t)
	d := readDashboard(t)
	f := startFixture(t)
	p := startPrometheus(t, bin, f.AdminURL, testkit.DeadAddr(t))

	// Both targets of the job scraped once (one up, one down) before the
	// traffic, so counters are seen rising from their first values.
	testkit.Poll{Timeout: 60 * time.Second, Interval: 250 * time.Millisecond}.Until(t, "Prometheus to scrape both targets", func() (bool, string) {
		res, err := p.query(`count(up{job="umbra"} == 1) + count(up{job="umbra"} == 0)`)
		if err != nil {
			return false, err.Error()
		}
		return len(res) == 1 && res[0].Value[1] == "2", fmt.Sprint(res)
	})
	f.startTraffic(t)
	time.Sleep(3 * time.Second)
	f.breakFiles(t)

	queries := panelQueries(d)
	var last []string
	ok := false
	deadline := time.Now().Add(90 * time.Second)
	for !ok && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		last = last[:0]
		for _, q := range queries {
			res, err := p.query(q.expr)
			switch {
			case err != nil:
				// A query Prometheus refuses never gets better.
				t.Fatalf("%s: %s\n%v", q.name, q.expr, err)
			case len(res) == 0:
				last = append(last, fmt.Sprintf("%s returned no data: %s", q.name, q.expr))
			}
		}
		last = append(last, p.ruleProblems(t, rules)...)
		ok = len(last) == 0
	}
	if !ok {
		for _, l := range last {
			t.Error(l)
		}
		t.Logf("prometheus log:\n%s", testkit.Tail(p.log.String(), 30))
	}
	// Annotations are drawn only when something happens: they must parse.
	for _, a := range d.Annotations.List {
		if a.Expr == "" {
			continue
		}
		if _, err := p.query(grafanaVars.Replace(a.Expr)); err != nil {
			t.Errorf("annotation %q: %s\n%v", a.Name, a.Expr, err)
		}
	}
	t.Logf("%d panel queries and %d alerts checked against Prometheus", len(queries), len(rules))
}

// prometheus is a running Prometheus server.
type prometheus struct {
	url    string
	client *http.Client
	log    *testkit.LogBuffer
}

// startPrometheus writes a config that scrapes the gateway's admin
// listener and dead (both in job "umbra", as deploy/README.md names it)
// every second and evaluates the rules every second, starts Prometheus on
// a free loopback port and waits until it is ready.
func startPrometheus(t *testing.T, bin, adminURL, dead string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimPrefix(adminURL, "http://")
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: umbra
    static_configs:
      - targets: [%q, %q]
`, rules, admin, dead)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The free port may be taken by a parallel test before Prometheus
	// binds it: then try another.
	for attempt := 1; ; attempt++ {
		p, err := launchPrometheus(t, bin, cfgFile, filepath.Join(dir, "data"), testkit.FreeAddr(t))
		if err == nil {
			return p
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
	}
}

// launchPrometheus starts Prometheus on addr and waits until it is ready;
// the test's cleanup stops it.
func launchPrometheus(t *testing.T, bin, cfgFile, data, addr string) (*prometheus, error) {
	t.Helper()
	p := &prometheus{url: "http://" + addr, client: testkit.NewClient(t, 4, 10*time.Second), log: &testkit.LogBuffer{}}
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+data,
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			return nil, fmt.Errorf("prometheus exited: %v\n%s", err, p.log.String())
		default:
		}
		if r, err := testkit.Send(p.client, "GET", p.url+"/-/ready", nil); err == nil && r.Status == http.StatusOK {
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("prometheus not ready after 60s:\n%s", p.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// vectorSample is one sample of an instant vector.
type vectorSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query; an error means Prometheus refused it (a
// parse or evaluation error) or was unreachable. Scalars count as one
// sample.
func (p *prometheus) query(expr string) ([]vectorSample, error) {
	r, err := testkit.Send(p.client, "GET", p.url+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &resp); err != nil {
		return nil, fmt.Errorf("status %d: %v: %s", r.Status, err, r.Body)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("%s", resp.Error)
	}
	switch resp.Data.ResultType {
	case "vector":
		var v []vectorSample
		err := json.Unmarshal(resp.Data.Result, &v)
		return v, err
	case "scalar":
		var v [2]any
		err := json.Unmarshal(resp.Data.Result, &v)
		return []vectorSample{{Value: v}}, err
	}
	return nil, fmt.Errorf("unexpected result type %q", resp.Data.ResultType)
}

// ruleProblems lists what is wrong with the rules as Prometheus runs them:
// a rule of the file not loaded, a rule whose evaluation failed, an
// alert that is neither pending nor firing.
func (p *prometheus) ruleProblems(t *testing.T, want []rule) []string {
	t.Helper()
	r, err := testkit.Send(p.client, "GET", p.url+"/api/v1/rules?type=alert", nil)
	if err != nil {
		return []string{err.Error()}
	}
	var resp struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Query     string `json:"query"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
					State     string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &resp); err != nil {
		t.Fatalf("/api/v1/rules: %v: %s", err, r.Body)
	}
	seen := map[string]bool{}
	var problems []string
	for _, g := range resp.Data.Groups {
		for _, rl := range g.Rules {
			seen[rl.Name] = true
			if rl.Health == "err" {
				t.Fatalf("alert %s: evaluation failed: %s\n%s", rl.Name, rl.LastError, rl.Query)
			}
			if rl.State != "pending" && rl.State != "firing" {
				problems = append(problems, fmt.Sprintf("alert %s is %s (health %s): its expression returns no data:\n%s", rl.Name, rl.State, rl.Health, rl.Query))
			}
		}
	}
	for _, w := range want {
		if !seen[w.Alert] {
			problems = append(problems, fmt.Sprintf("alert %s of %s was not loaded by Prometheus", w.Alert, rulesFile))
		}
	}
	sort.Strings(problems)
	return problems
}
