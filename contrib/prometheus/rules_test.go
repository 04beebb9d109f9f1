// Package prometheus holds op25b's Prometheus alert rules, their promtool
// unit tests and an example scrape configuration (README.md). Its Go test
// runs promtool on them, so `go test ./...` and `make test` check the rules
// with the Prometheus that Debian ships.
package prometheus

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	rulesFile = "op25b-rules.yml"
	testsFile = "op25b-rules.test.yml"
	scrape    = "prometheus-scrape.yml"
)

// promtool returns the path of promtool; Debian's prometheus package
// brings it (`make deps` installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus; `make deps` installs it): %v", err)
	}
	return p
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheck(t *testing.T) {
	out := run(t, "check", "rules", rulesFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check rules:\n%s", out)
	}
	run(t, "check", "config", scrape)
}

func TestPromtoolUnitTests(t *testing.T) {
	out := run(t, "test", "rules", testsFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

// Every alert has a unit test in which it fires. promtool compares the
// expected alerts of an evaluation exactly, so the near-miss series of the
// same test are checked to stay quiet.
func TestEveryAlertHasAFiringTest(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, rulesFile, &rules)
	readYAML(t, testsFile, &tests)
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("alert %s has no test in %s in which it fires", r.Alert, testsFile)
			}
		}
	}
	if n < 9 {
		t.Errorf("only %d alerts in %s", n, rulesFile)
	}
}

func readYAML(t *testing.T, name string, out any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Clean(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
