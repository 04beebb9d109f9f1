package contrib

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// family is one metric family as a replica exposes it.
type family struct {
	typ    string
	labels []string
}

// scrapeFamilies reads a replica's /metrics (its --metrics-listen) into
// the families it exposes, with the label names each series carries.
func scrapeFamilies(t *testing.T, addr string) map[string]family {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics of %s: %v", addr, err)
	}
	out := map[string]family{}
	for name, mf := range mfs {
		set := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				set[l.GetName()] = true
			}
		}
		var labels []string
		for l := range set {
			labels = append(labels, l)
		}
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			labels = append(labels, "le")
		}
		sort.Strings(labels)
		out[name] = family{strings.ToLower(mf.GetType().String()), labels}
	}
	return out
}

// metricInventory is every op25b metric both replicas expose, as a
// Markdown table (logged by the test: the list of metrics with their
// types and labels comes from real output, not from the docs).
func metricInventory(fams ...map[string]family) (string, map[string]family) {
	all := map[string]family{}
	for _, f := range fams {
		for name, fam := range f {
			if prev, ok := all[name]; ok {
				fam.labels = slices.Compact(slices.Sorted(slices.Values(append(prev.labels, fam.labels...))))
			}
			all[name] = fam
		}
	}
	var names []string
	for name := range all {
		if strings.HasPrefix(name, "op25b_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("| metric | type | labels |\n|---|---|---|\n")
	for _, name := range names {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", name, all[name].typ, strings.Join(all[name].labels, ", "))
	}
	return b.String(), all
}

var metricNameRE = regexp.MustCompile(`\bop25b_[a-z0-9_]+`)

// referencedMetrics are the op25b metrics the dashboards and alert rules
// use, by file.
func referencedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("grafana", "*.json"))
	files = append(files, filepath.Join("prometheus", "op25b-rules.yml"))
	out := map[string][]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricNameRE.FindAllString(string(data), -1) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && strings.HasSuffix(base, "_seconds") {
					name = base
				}
			}
			if !slices.Contains(out[name], f) {
				out[name] = append(out[name], f)
			}
		}
	}
	return out
}

// notExposedHere: metrics the dashboards or rules use that this lab
// cannot show, and why. Empty: keep it so, a metric listed here is one
// no test sees.
var notExposedHere = map[string]string{}

// checkReferences fails for a metric used by a dashboard or a rule that
// no replica exposes: a renamed metric must not leave a silent panel or
// an alert that can never fire.
func checkReferences(t *testing.T, exposed map[string]family) {
	t.Helper()
	for name, files := range referencedMetrics(t) {
		if _, ok := exposed[name]; ok {
			continue
		}
		if why, ok := notExposedHere[name]; ok {
			t.Logf("%s (used by %v) not checked: %s", name, files, why)
			continue
		}
		t.Errorf("%s is used by %v but no replica exposes it", name, files)
	}
}
