package rules_test

import (
	"os"
	"os/exec"
	"path/filepath"
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
