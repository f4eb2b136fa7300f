package rules_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/odoo-exporter/odoo_exporter/rules"
)

// TestInhibitRulesValid has amtool (Debian's prometheus-alertmanager)
// check an Alertmanager configuration made of the shipped inhibit rules.
func TestInhibitRulesValid(t *testing.T) {
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("amtool not found in PATH: install Debian's prometheus-alertmanager package (make deps)")
		}
		t.Skip("amtool not found in PATH: install Debian's prometheus-alertmanager package")
	}
	conf := "route:\n  receiver: default\nreceivers:\n  - name: default\n" + string(rules.Inhibit())
	f := filepath.Join(t.TempDir(), "alertmanager.yml")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(amtool, "check-config", f).CombinedOutput()
	if err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "3 inhibit rules") {
		t.Errorf("amtool did not count the 3 inhibit rules:\n%s", out)
	}
}

// TestInhibitRulesNameAlerts checks that every alert name an inhibit rule
// matches is an alert of the pack, that each target pattern matches at
// least one, and that no rule could inhibit its own source.
func TestInhibitRulesNameAlerts(t *testing.T) {
	names := map[string]bool{}
	for _, r := range alerts(loadRules(t)) {
		names[r.Alert] = true
	}
	var doc struct {
		InhibitRules []struct {
			Source []string `yaml:"source_matchers"`
			Target []string `yaml:"target_matchers"`
			Equal  []string `yaml:"equal"`
		} `yaml:"inhibit_rules"`
	}
	if err := yaml.Unmarshal(rules.Inhibit(), &doc); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.InhibitRules(); err != nil {
		t.Fatal(err)
	}
	alertname := regexp.MustCompile(`^alertname(=~|=)"(.*)"$`)
	match := func(ms []string) []string {
		var out []string
		for _, m := range ms {
			g := alertname.FindStringSubmatch(m)
			if g == nil {
				continue
			}
			re := regexp.MustCompile("^(?:" + g[2] + ")$")
			if g[1] == "=" {
				re = regexp.MustCompile("^" + regexp.QuoteMeta(g[2]) + "$")
			}
			for n := range names {
				if re.MatchString(n) {
					out = append(out, n)
				}
			}
			for _, alt := range strings.Split(g[2], "|") {
				if !strings.ContainsAny(alt, ".*") && !names[alt] {
					t.Errorf("inhibit rule names %s, which is not an alert of the pack", alt)
				}
			}
		}
		return out
	}
	for i, r := range doc.InhibitRules {
		src, dst := match(r.Source), match(r.Target)
		if len(src) != 1 || len(dst) == 0 {
			t.Errorf("rule %d: source matches %v, target %v: want one source and some targets", i, src, dst)
		}
		for _, d := range dst {
			if len(src) == 1 && d == src[0] {
				t.Errorf("rule %d: %s would inhibit itself", i, d)
			}
		}
		if len(r.Equal) == 0 {
			t.Errorf("rule %d: no equal labels: one instance's outage would silence every other", i)
		}
	}
}
