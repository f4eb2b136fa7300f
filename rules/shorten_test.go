package rules_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/odoo-exporter/odoo_exporter/rules"
)

func TestShorten(t *testing.T) {
	orig := loadRules(t)
	for _, max := range []time.Duration{0, 10 * time.Second, 3 * time.Minute, time.Hour} {
		t.Run(max.String(), func(t *testing.T) {
			out, err := rules.Shorten(rules.Pack(), max)
			if err != nil {
				t.Fatal(err)
			}
			got := parseRules(t, out)
			if len(got) != len(orig) {
				t.Fatalf("got %d rules, want %d", len(got), len(orig))
			}
			for i, r := range got {
				o := orig[i]
				for _, d := range []struct{ key, got, orig string }{{"for", r.For, o.For}, {"keep_firing_for", r.KeepFiringFor, o.KeepFiringFor}} {
					if d.orig == "" {
						if d.got != "" {
							t.Errorf("%s: %s %q added", o.Alert, d.key, d.got)
						}
						continue
					}
					want := min(mustDuration(t, d.orig), max)
					if got := mustDuration(t, d.got); got != want {
						t.Errorf("%s: %s = %s, want %s (was %s)", o.Alert, d.key, d.got, want, d.orig)
					}
				}
				// Everything but the durations is unchanged.
				r.For, o.For, r.KeepFiringFor, o.KeepFiringFor = "", "", "", ""
				if !reflect.DeepEqual(r, o) {
					t.Errorf("rule changed beyond for:\n got %+v\nwant %+v", r, o)
				}
			}
		})
	}
}

// TestShortenValidForPromtool checks that Prometheus accepts the shortened
// file.
func TestShortenValidForPromtool(t *testing.T) {
	p := promtool(t)
	out, err := rules.Shorten(rules.Pack(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), rules.FileName)
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(p, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the shortened pack: %v\n%s", err, b)
	}
}

// TestScale checks that Scale divides and bounds the durations and keeps
// their order (OdooDown's 2m before OdooLongpollDown's 3m).
func TestScale(t *testing.T) {
	out, err := rules.Scale(rules.Pack(), 12, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range parseRules(t, out) {
		got[r.Alert] = r.For + "/" + r.KeepFiringFor
	}
	for alert, want := range map[string]string{
		"OdooDown":                     "10s/10s",
		"OdooLongpollDown":             "15s/10s",
		"OdooExporterCollectorFailing": "50s/10s",
		"OdooModulesStuckInTransition": "1m/10s",
		"OdooContainerRestarting":      "/",
	} {
		if got[alert] != want {
			t.Errorf("%s: for/keep_firing_for %s, want %s", alert, got[alert], want)
		}
	}
	for _, bad := range []struct {
		div int
		max time.Duration
	}{{0, time.Minute}, {12, 0}} {
		if _, err := rules.Scale(rules.Pack(), bad.div, bad.max); err == nil {
			t.Errorf("Scale(%d, %s): no error", bad.div, bad.max)
		}
	}
}

func TestShortenErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  time.Duration
	}{
		{"negative max", "groups: []\n", -time.Second},
		{"not YAML", "groups: [\n", time.Second},
		{"not a mapping", "- a\n", time.Second},
		{"no groups", "rules: []\n", time.Second},
		{"bad duration", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: soon\n", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := rules.Shorten([]byte(tc.in), tc.max); err == nil {
				t.Fatalf("no error; got\n%s", out)
			}
		})
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := model.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return time.Duration(d)
}
