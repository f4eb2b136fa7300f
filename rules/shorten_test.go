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
				if o.For != "" {
					want := mustDuration(t, o.For)
					if want > max {
						want = max
					}
					if d := mustDuration(t, r.For); d != want {
						t.Errorf("%s: for = %s, want %s (was %s)", o.Alert, r.For, want, o.For)
					}
				} else if r.For != "" {
					t.Errorf("%s: for %q added", o.Alert, r.For)
				}
				// Everything but the durations is unchanged.
				r.For, o.For = "", ""
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
