package monitoringtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDashboardWellFormed checks what Grafana needs to import the
// dashboard and what keeps it portable: a stable uid, unique panel ids,
// every query panel on the ${datasource} variable with an expression and
// a unique refId, panels inside the 24-column grid and not overlapping,
// and the job and route variables the expressions use.
func TestDashboardWellFormed(t *testing.T) {
	t.Parallel()
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed for a stable import", d.UID, d.Title)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, v := range []string{"datasource", "job", "route"} {
		if !vars[v] {
			t.Errorf("no %q template variable", v)
		}
	}
	ids := map[int]string{}
	var placed []panel
	queries := 0
	for _, p := range d.allPanels() {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d is used by %q and %q", p.ID, other, p.Title)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, q := range placed {
			o := q.GridPos
			if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap: %+v and %+v", p.Title, q.Title, g, o)
			}
		}
		placed = append(placed, p)
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: datasource %+v, want the prometheus ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: query %q with refId %q (empty or repeated)", p.Title, tg.Expr, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.Contains(tg.Expr, "umbra_") && !strings.Contains(tg.Expr, `job=~"$job"`) {
				t.Errorf("panel %q: %s does not filter on $job", p.Title, tg.Expr)
			}
		}
	}
	if queries < 20 {
		t.Errorf("only %d queries: the dashboard lost panels", queries)
	}
}

// TestRulesPromtool runs promtool's own checks (as .ci/run does) so that
// go test alone catches a broken rule or unit test too.
func TestRulesPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian package prometheus; .ci/run installs it): rules not checked by promtool")
	}
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	rules := readRules(t)
	tests, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
			t.Errorf("alert %s has no firing case in %s", r.Alert, rulesTestFile)
		}
		if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("rule %q: every alert needs a name, a severity label, a summary and a description", r.Alert)
		}
	}
}
