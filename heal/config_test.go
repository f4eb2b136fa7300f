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

// TestExampleHostRule: the example's commented host-mode rule is valid
// once uncommented.
func TestExampleHostRule(t *testing.T) {
	b, err := os.ReadFile("../examples/odoo_healer.yml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "  # - name: recycle-host\n")
	j := strings.Index(s[max(i, 0):], "\n\n")
	if i < 0 || j < 0 {
		t.Fatal("no commented recycle-host rule in the example")
	}
	var rule strings.Builder
	for line := range strings.Lines(s[i : i+j+1]) {
		rule.WriteString("  " + strings.TrimPrefix(line, "  # "))
	}
	c, err := ParseConfig([]byte(s[:i] + rule.String() + s[i+j+1:]))
	if err != nil {
		t.Fatalf("%v\n%s", err, rule.String())
	}
	p := c.Rule("recycle-host").action.(*RecycleWorkers).p
	if p.Mode != "host" || p.ProcRoot != "/proc" || p.PIDFile == "" {
		t.Errorf("params %+v", p)
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
		// Each value is checked at load (and on SIGHUP), with its range.
		{"verify_interval: 1ms\n" + ok, "verify_interval 1ms: must be between 10ms and 1m"},
		{"verify_interval: 2m\n" + ok, "verify_interval 2m: must be between"},
		{"episode_ttl: 1m\n" + ok, "episode_ttl 1m: must be between 1h and 30d"},
		{"defaults: {timeout: 500ms}\n" + ok, "defaults: timeout 500ms: must be between 1s and 1h"},
		{"defaults: {cooldown: 30d}\n" + ok, "defaults: cooldown 30d: must be between 0s (no cooldown) and 1w"},
		{"defaults: {max_actions_per_hour: -2}\n" + ok, "defaults: max_actions_per_hour -2"},
		{"defaults: {max_attempts: -1}\n" + ok, "defaults: max_attempts -1: must be between 1 and 1000"},
		{ok + "    timeout: 2h\n", "timeout 2h: must be between 1s and 1h"},
		{ok + "    verify_timeout: 0s\n" + "", ""}, // 0: the default
		{ok + "    max_actions_per_hour: 5000\n", "max_actions_per_hour 5000: must be between 1 and 3600"},
		{ok + "    max_attempts: 1001\n", "max_attempts 1001"},
		{ok + "    retry_interval: 500ms\n", "retry_interval 500ms: must be between 1s and 1d"},
		{ok + "    retry_interval: 10m\n    retry_max_interval: 1m\n", "retry_max_interval 1m is shorter than retry_interval 10m"},
		{strings.NewReplacer("clear_assets", "restart_container", "[odoo]", "[odoo-web-1]").Replace(ok), `no health_url for container "odoo-web-1"`},
		{strings.NewReplacer("clear_assets", "restart_container", "[odoo]", "[odoo-web-1]").Replace(ok) + "    params: {health_url: 'ftp://x/'}\n", "want an http(s) URL"},
		{strings.NewReplacer("clear_assets", "recycle_workers", "[odoo]", "[a, b]").Replace(ok) + "    params: {health_urls: {a: 'http://a:8069/web/health'}}\n", `no health_url for container "b"`},
		{strings.NewReplacer("clear_assets", "restart_container", "[odoo]", "[odoo-web-1]").Replace(ok) + "    params: {health_url: 'http://{target}:8069/web/health', stop_timeout: 1h}\n", "stop_timeout must be between 0s and 10m"},
		{strings.NewReplacer("clear_assets", "recycle_workers", "[odoo]", "[odoo-web-1]").Replace(ok) + "    params: {signal: SIGUSR1}\n", "only SIGHUP"},
		{strings.NewReplacer("clear_assets", "recycle_workers", "[odoo]", "[odoo-web-1]").Replace(ok) + "    params: {signal: SIGKILL}\n", "only SIGHUP"},
		// Host mode (Odoo without Docker): its own params, none of a container's.
		{strings.NewReplacer("clear_assets", "recycle_workers").Replace(ok) + "    params: {mode: host}\n", ""}, // health_url optional
		{strings.NewReplacer("clear_assets", "recycle_workers").Replace(ok) + "    params: {mode: host, proc_root: /host/proc, pid_file: '/run/odoo/{target}.pid', health_url: 'http://127.0.0.1:8069/web/health'}\n", ""},
		{strings.NewReplacer("clear_assets", "recycle_workers").Replace(ok) + "    params: {mode: hosts}\n", `mode "hosts": want signal`},
		{strings.NewReplacer("clear_assets", "recycle_workers").Replace(ok) + "    params: {mode: host, stop_timeout: 10s}\n", "mode host: stop_timeout is only for mode restart"},
		{strings.NewReplacer("clear_assets", "recycle_workers").Replace(ok) + "    params: {mode: host, proc_root: host/proc}\n", `proc_root "host/proc": want an absolute path`},
		{strings.NewReplacer("clear_assets", "recycle_workers").Replace(ok) + "    params: {mode: host, pid_file: odoo.pid}\n", `pid_file "odoo.pid": want an absolute path`},
		{strings.NewReplacer("clear_assets", "recycle_workers").Replace(ok) + "    params: {mode: host, signal: SIGTERM}\n", "only SIGHUP"},
		{strings.NewReplacer("clear_assets", "recycle_workers").Replace(ok) + "    params: {mode: host, health_url: 'ftp://x/'}\n", "want an http(s) URL"},
		{strings.NewReplacer("clear_assets", "recycle_workers", "[odoo]", "[odoo-web-1]").Replace(ok) + "    params: {health_url: 'http://{target}:8069/web/health', proc_root: /proc}\n", "mode signal: proc_root is only for mode host"},
		{strings.NewReplacer("clear_assets", "recycle_workers", "[odoo]", "[odoo-web-1]").Replace(ok) + "    params: {mode: restart, health_url: 'http://{target}:8069/web/health', pid_file: /run/odoo.pid}\n", "mode restart: pid_file is only for mode host"},
		{strings.NewReplacer("clear_assets", "recycle_workers", "[odoo]", "[odoo-web-1]").Replace(ok) + "    params: {health_url: 'http://{target}:8069/web/health', stop_timeout: 10s}\n", "mode signal: stop_timeout is only for mode restart"},
	} {
		_, err := ParseConfig([]byte(tc.cfg))
		if tc.err == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.cfg, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q:\n  err = %v\n want %q", tc.cfg, err, tc.err)
		}
	}
	if _, err := ParseConfig([]byte(ok)); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
