package daemon

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/stats"
)

// alertRules is a Prometheus rule file, as much of it as the example uses.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// exampleRules returns the YAML block under "### Alert rules" in
// docs/operations.md.
func exampleRules(t *testing.T) []byte {
	t.Helper()
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(doc, []byte("\n### Alert rules\n"))
	if ok {
		_, rest, ok = bytes.Cut(rest, []byte("```yaml\n"))
	}
	block, _, closed := bytes.Cut(rest, []byte("\n```\n"))
	if !ok || !closed {
		t.Fatal(`docs/operations.md has no yaml block under "### Alert rules"`)
	}
	return block
}

// seriesLabels scrapes a daemon and returns
// every metric name it serves (histograms under their _bucket, _sum and
// _count names too) with its label names.
func seriesLabels(t *testing.T) map[string][]string {
	t.Helper()
	h := scrapeDaemon(t, 1, 1)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]string)
	for name, mf := range mfs {
		var labels []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		out[name] = labels
		if mf.GetType().String() == "HISTOGRAM" {
			out[name+"_bucket"] = append(slices.Clone(labels), "le")
			out[name+"_sum"], out[name+"_count"] = labels, labels
		}
	}
	return out
}

var (
	// selectorRE finds a metric name and its label matchers.
	selectorRE = regexp.MustCompile(`\b((?:splicer|process|go)_[a-z_]+)(\{[^}]*\})?`)
	matcherRE  = regexp.MustCompile(`([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	groupingRE = regexp.MustCompile(`\b(?:by|on|without|ignoring)\s*\(([^)]*)\)`)
	templateRE = regexp.MustCompile(`\$labels\.([a-z_]+)`)
)

// TestAlertRules parses the example alert rules of docs/operations.md and
// checks each against what a daemon serves: every metric it names exists,
// every label it matches, groups by or prints is one of its metrics', and
// every fixed label value it matches is one splicer emits.
func TestAlertRules(t *testing.T) {
	var rules alertRules
	dec := yaml.NewDecoder(bytes.NewReader(exampleRules(t)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("the alert rules do not parse: %v", err)
	}
	series := seriesLabels(t)
	var causes []string
	for _, c := range l4.Causes(false, false) {
		causes = append(causes, c.String())
	}
	values := map[string][]string{
		"cause":  causes,
		"state":  stats.States(),
		"reason": {"buffer_full", "write_error"},
		"result": {"success", "failure", "pass", "fail"},
		"to":     {"up", "down"},
	}
	seen := map[string]bool{}
	var wanted []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			wanted = append(wanted, r.Alert)
			if r.Alert == "" || seen[r.Alert] || strings.TrimSpace(r.Expr) == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %q: needs a unique name, an expression and a severity", r.Alert)
			}
			seen[r.Alert] = true
			if _, err := model.ParseDuration(r.For); r.For != "" && err != nil {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
			var labels []string // of every metric the expression names
			for _, m := range selectorRE.FindAllStringSubmatch(r.Expr, -1) {
				name, matchers := m[1], m[2]
				have, ok := series[name]
				if !ok {
					t.Errorf("%s: no metric %s", r.Alert, name)
					continue
				}
				labels = append(labels, have...)
				for _, mm := range matcherRE.FindAllStringSubmatch(matchers, -1) {
					label, value := mm[1], mm[3]
					if !slices.Contains(have, label) {
						t.Errorf("%s: %s has no label %s", r.Alert, name, label)
					}
					known, fixed := values[label]
					for _, v := range strings.Split(value, "|") {
						if fixed && !slices.Contains(known, v) {
							t.Errorf("%s: %s{%s} is never %q", r.Alert, name, label, v)
						}
					}
				}
			}
			var used []string
			for _, g := range groupingRE.FindAllStringSubmatch(r.Expr, -1) {
				for _, l := range strings.Split(g[1], ",") {
					used = append(used, strings.TrimSpace(l))
				}
			}
			for _, text := range r.Annotations {
				for _, m := range templateRE.FindAllStringSubmatch(text, -1) {
					used = append(used, m[1])
				}
			}
			for _, l := range used {
				if l != "" && !slices.Contains(labels, l) {
					t.Errorf("%s: label %s is not one of its metrics'", r.Alert, l)
				}
			}
		}
	}
	// The four the operations guide promises, at least.
	for _, name := range []string{"SplicerBackendDown", "SplicerNoBackendUp", "SplicerQueueGrowing", "SplicerReloadFailed"} {
		if !seen[name] {
			t.Errorf("no %s rule; have %v", name, wanted)
		}
	}
}
