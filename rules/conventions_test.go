package rules_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// wantAlerts is the alert of each incident and distinct cause (see the
// project's architecture) with its priority and healing action ("" = never
// healed automatically).
var wantAlerts = map[string]struct{ priority, heal string }{
	"OdooLongpollLatencyHigh":      {"P0", "restart_container"},
	"OdooLongpollDown":             {"P0", ""},
	"OdooCronStuck":                {"P1", "unlock_cron"},
	"OdooCronJobRunningTooLong":    {"P1", "unlock_cron"},
	"OdooCronJobTimeoutLoop":       {"P1", ""},
	"OdooCronFailing":              {"P2", ""},
	"OdooModulesStuckInTransition": {"P1", "reset_module_states"},
	"OdooDbDeadlock":               {"P1", ""},
	"OdooDbLockContention":         {"P1", "end_blockers"},
	"OdooLongRunningQuery":         {"P2", ""},
	"OdooIdleInTransaction":        {"P2", ""},
	"OdooMemoryLeak":               {"P2", "recycle_workers"},
	"OdooContainerOOMKilled":       {"P2", ""},
	"OdooContainerRestarting":      {"P1", ""},
	"OdooDown":                     {"P0", ""},
	"OdooProxyDown":                {"P0", ""},
	"OdooAssetsBroken":             {"P1", "clear_assets"},
	"OdooDatabaseDown":             {"P0", ""},
	"OdooExporterCollectorFailing": {"P2", ""},
	"OdooExporterDown":             {"P1", ""},
	// Odoo's log (group odoo.log).
	"OdooLogCronFailing":              {"P2", ""},
	"OdooLogCronTimeoutLoop":          {"P1", ""},
	"OdooLogWorkersRecycledForMemory": {"P2", ""},
	"OdooLogBootLoop":                 {"P0", ""},
	"OdooLogServerErrorsRising":       {"P2", ""},
	// Odoo's processes (group odoo.process).
	"OdooWorkersRecycledOften":  {"P2", ""},
	"OdooProcessMissing":        {"P1", ""},
	"OdooMasterRestarting":      {"P1", ""},
	"OdooWorkerMemoryNearLimit": {"P2", ""},
}

const runbookPrefix = "https://github.com/odoo-exporter/odoo_exporter/blob/main/docs/runbooks.md#"

func TestAlertConventions(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range alerts(loadRules(t)) {
		t.Run(r.Alert, func(t *testing.T) {
			if seen[r.Alert] {
				t.Fatal("duplicate alert name")
			}
			seen[r.Alert] = true
			want, ok := wantAlerts[r.Alert]
			if !ok {
				t.Fatal("alert not in the list of incidents (wantAlerts)")
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("severity %q", r.Labels["severity"])
			}
			if r.Labels["priority"] != want.priority {
				t.Errorf("priority %q, want %q", r.Labels["priority"], want.priority)
			}
			if r.Labels["heal"] != want.heal {
				t.Errorf("heal %q, want %q", r.Labels["heal"], want.heal)
			}
			if s := r.Annotations["summary"]; s == "" || !strings.HasSuffix(s, ".") || strings.Contains(s, "{{") {
				t.Errorf("summary %q must be static and end with a period", s)
			}
			if d := r.Annotations["description"]; !strings.Contains(d, "{{") {
				t.Errorf("description %q is not templated", d)
			}
			if u := r.Annotations["runbook_url"]; u != runbookPrefix+strings.ToLower(r.Alert) {
				t.Errorf("runbook_url %q, want %s%s", u, runbookPrefix, strings.ToLower(r.Alert))
			}
			if len(r.Labels) > 3 || len(r.Annotations) != 3 {
				t.Errorf("unexpected labels %v or annotations %v", r.Labels, r.Annotations)
			}
		})
	}
	for name := range wantAlerts {
		if !seen[name] {
			t.Errorf("alert %s missing from the pack", name)
		}
	}
}

// unitTests is the part of a promtool test file read here.
type unitTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertUnitTested checks that rules/tests has, for every alert, a
// case where it fires and a case where it must not.
func TestEveryAlertUnitTested(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var u unitTests
		if err := yaml.Unmarshal(b, &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range u.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	for _, r := range alerts(loadRules(t)) {
		if !firing[r.Alert] {
			t.Errorf("%s: no promtool case where it fires", r.Alert)
		}
		if !silent[r.Alert] {
			t.Errorf("%s: no promtool case where it must not fire", r.Alert)
		}
	}
}
