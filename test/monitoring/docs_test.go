package monitoringtest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// docFamily is one row of a metrics table in docs/metrics.md.
type docFamily struct {
	typ    string
	labels []string
	line   int
}

// docRow matches a table row: | `name` | type | labels | meaning |
var docRow = regexp.MustCompile("^\\| `([a-z_:][a-z0-9_:]*)` \\| ([a-z]+) \\| ([^|]*) \\|")

// readMetricDocs reads the metric tables of docs/metrics.md.
func readMetricDocs(t *testing.T) map[string]docFamily {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]docFamily{}
	for i, line := range strings.Split(string(b), "\n") {
		m := docRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var labels []string
		if col := strings.TrimSpace(m[3]); col != "none" {
			for _, l := range strings.Split(col, ",") {
				labels = append(labels, strings.Trim(strings.TrimSpace(l), "`"))
			}
		}
		sort.Strings(labels)
		if _, dup := docs[m[1]]; dup {
			t.Errorf("docs/metrics.md:%d: %s is documented twice", i+1, m[1])
		}
		docs[m[1]] = docFamily{typ: m[2], labels: labels, line: i + 1}
	}
	if len(docs) == 0 {
		t.Fatal("docs/metrics.md has no metric table rows")
	}
	return docs
}

// undocumentedPrefixes are the Go client's standard collectors, described
// in docs/metrics.md as a group.
var undocumentedPrefixes = []string{"go_", "process_"}

// TestMetricsDocumented: every family the gateway exports under traffic
// that touches every feature is in docs/metrics.md with its type and
// exactly its labels, and every documented family is exported. A family
// added later without a docs row fails here, by name.
func TestMetricsDocumented(t *testing.T) {
	t.Parallel()
	docs := readMetricDocs(t)
	f := startFixture(t)
	f.startTraffic(t)
	f.breakFiles(t) // the reload families' failure series

	// Some families appear only once their event happened (a comparison,
	// an adoption body, a rollback): wait until the documented ones are
	// all there, then compare.
	var families map[string]*dto.MetricFamily
	deadline := time.Now().Add(30 * time.Second)
	for {
		families = parseFamilies(t, f.ScrapeText(t))
		missing := 0
		for name := range docs {
			if families[name] == nil {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	var problems []string
	for name, mf := range families {
		if slices.ContainsFunc(undocumentedPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		d, ok := docs[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s (%s, labels %s) is exported but not in docs/metrics.md: add a row to its table",
				name, typeName(mf), strings.Join(labelsOf(mf), ", ")))
			continue
		}
		if typ := typeName(mf); typ != d.typ {
			problems = append(problems, fmt.Sprintf("docs/metrics.md:%d: %s is documented as a %s but is a %s", d.line, name, d.typ, typ))
		}
		if got := labelsOf(mf); !slices.Equal(got, d.labels) {
			problems = append(problems, fmt.Sprintf("docs/metrics.md:%d: %s has labels [%s], documented [%s]",
				d.line, name, strings.Join(got, ", "), strings.Join(d.labels, ", ")))
		}
	}
	for name, d := range docs {
		if families[name] == nil {
			problems = append(problems, fmt.Sprintf("docs/metrics.md:%d: %s is documented but the gateway did not export it (renamed or removed? or the fixture's traffic lacks its event)", d.line, name))
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

func parseFamilies(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

func typeName(mf *dto.MetricFamily) string {
	return strings.ToLower(mf.GetType().String())
}

// labelsOf is the sorted union of the label names of a family's metrics
// (a histogram's le is part of the type, not a label).
func labelsOf(mf *dto.MetricFamily) []string {
	set := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			set[l.GetName()] = true
		}
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}
