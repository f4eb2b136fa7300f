package heal

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../examples/odoo_healer.yml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if !c.DryRun || len(c.Rules) != 6 {
		t.Errorf("dry_run %v, %d rules", c.DryRun, len(c.Rules))
	}
	r := c.Rule("lock-blockers")
	if r == nil || r.Cooldown.String() != "15m" || r.MaxActionsPerHour != 3 || r.TargetLabel != "database" {
		t.Errorf("defaults not applied: %+v", r)
	}
	if p := r.action.(*EndBlockers).p; time.Duration(p.MinWait) != time.Minute || p.MaxBackends != 3 {
		t.Errorf("params: %+v", p)
	}
	// OdooAssetsBroken has no database label: the assets rule must fix it.
	if r := c.Rule("assets"); r == nil || r.Target == "" {
		t.Errorf("assets rule without a fixed target: %+v", r)
	}
	if c.Rule("restart").TargetLabel != "name" {
		t.Error("docker actions read the target from label name")
	}
}

func TestConfigErrors(t *testing.T) {
	const ok = "rules:\n  - name: a\n    match: {heal: clear_assets}\n    action: clear_assets\n    targets: [odoo]\n"
	for _, tc := range []struct{ cfg, err string }{
		{"", "empty configuration"},
		{"rules: []", "no rules"},
		{"bogus: 1\n" + ok, "field bogus not found"},
		{strings.Replace(ok, "targets: [odoo]", "targets: [odoo]\n    colldown: 1m", 1), "field colldown not found"},
		{strings.Replace(ok, "action: clear_assets", "action: rm_rf", 1), `unknown action "rm_rf"`},
		{strings.Replace(ok, "    targets: [odoo]\n", "", 1), "targets (the allow-list of databases) is required"},
		{strings.Replace(ok, "[odoo]", "[odoo*]", 1), "patterns are not allowed"},
		{strings.Replace(ok, "{heal: clear_assets}", "{severity: critical}", 1), "match needs alertname and/or heal (only"},
		{strings.Replace(ok, "name: a", "name: 'a b'", 1), "use letters"},
		{ok + "    params: {max_rows: 0}\n", "max_rows must be at least 1"},
		{ok + "    params: {max_row: 5}\n", "field max_row not found"},
		{ok + "    cooldown: -1m\n", "not a valid duration"},
		{ok + "    cooldown: soon\n", "not a valid duration"},
		{ok + "    follow_up: b\n", `follow_up "b" names no rule`},
		{ok + "    follow_up: a\n", "needs a fixed target"},
		{ok + strings.Replace(ok[len("rules:\n"):], "name: a", "name: a", 1), `duplicate rule name "a"`},
		{strings.Replace(ok, "targets: [odoo]", "target: x\n    targets: [odoo]", 1), `target "x" is not in targets`},
		{"max_actions_per_hour: -1\n" + ok, "must not be negative"},
		{strings.NewReplacer("clear_assets", "recycle_workers", "[odoo]", "[odoo-web-1]").Replace(ok) + "    params: {signal: SIGUSR1}\n", "only SIGHUP"},
		{strings.NewReplacer("clear_assets", "recycle_workers", "[odoo]", "[odoo-web-1]").Replace(ok) + "    params: {signal: SIGKILL}\n", "only SIGHUP"},
	} {
		_, err := ParseConfig([]byte(tc.cfg))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q:\n  err = %v\n want %q", tc.cfg, err, tc.err)
		}
	}
	if _, err := ParseConfig([]byte(ok)); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
