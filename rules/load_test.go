package rules_test

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/odoo-exporter/odoo_exporter/rules"
)

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record        string            `yaml:"record"`
	Alert         string            `yaml:"alert"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

func parseRules(t *testing.T, b []byte) []rule {
	t.Helper()
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("parsing rules: %v", err)
	}
	var all []rule
	for _, g := range f.Groups {
		all = append(all, g.Rules...)
	}
	if len(all) == 0 {
		t.Fatal("no rules found")
	}
	return all
}

// loadRules reads the shipped rule file from disk and checks that the
// embedded copy is the same.
func loadRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(rules.FileName)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(rules.Pack()) {
		t.Fatal("rules.Pack() differs from alerts_odoo.yml")
	}
	return parseRules(t, b)
}

func alerts(rs []rule) []rule {
	var out []rule
	for _, r := range rs {
		if r.Alert != "" {
			out = append(out, r)
		}
	}
	return out
}
