package rules_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// promtool returns the path of promtool (Debian's prometheus package, see
// scripts/install-deps.sh). Without it the test fails in CI and is skipped
// elsewhere.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found in PATH: install Debian's prometheus package (make deps)")
		}
		t.Skip("promtool not found in PATH: install Debian's prometheus package (make deps) to run the rule tests")
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, "check", "rules", "alerts_odoo.yml")
}

// TestPromtoolTestRules runs every unit test file of rules/tests as a
// subtest, so that go test counts and names them.
func TestPromtoolTestRules(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no promtool test files in rules/tests")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			runPromtool(t, "test", "rules", f)
		})
	}
}

// TestPromtoolTestRulesCatchesChanges runs the cron unit tests against a
// copy of the pack whose OdooCronStuck threshold was changed: promtool must
// fail, or the unit tests would not guard the thresholds.
func TestPromtoolTestRulesCatchesChanges(t *testing.T) {
	p := promtool(t)
	pack, err := os.ReadFile("alerts_odoo.yml")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(pack), "odoo_cron_lag_max_seconds > 1800", "odoo_cron_lag_max_seconds > 2000", 1)
	if broken == string(pack) {
		t.Fatal("OdooCronStuck's expression not found in the pack")
	}
	unit, err := os.ReadFile(filepath.Join("tests", "cron_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tests"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_odoo.yml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tests", "cron_test.yml"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(p, "test", "rules", filepath.Join(dir, "tests", "cron_test.yml")).CombinedOutput()
	if err == nil {
		t.Fatalf("promtool accepted a changed threshold:\n%s", out)
	}
	if !strings.Contains(string(out), "OdooCronStuck") {
		t.Errorf("promtool failed, but not on OdooCronStuck:\n%s", out)
	}
}
