package e2e

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/odoo-exporter/odoo_exporter/rules"
)

// symptoms returns the alerts of the pack that the shipped inhibit rules
// silence while cause fires.
func symptoms(t *testing.T, cause string) []string {
	t.Helper()
	var doc struct {
		InhibitRules []struct {
			Source []string `yaml:"source_matchers"`
			Target []string `yaml:"target_matchers"`
		} `yaml:"inhibit_rules"`
	}
	if err := yaml.Unmarshal(rules.Inhibit(), &doc); err != nil {
		t.Fatal(err)
	}
	target := regexp.MustCompile(`^alertname=~"(.*)"$`)
	var out []string
	for _, r := range doc.InhibitRules {
		if len(r.Source) != 1 || r.Source[0] != fmt.Sprintf("alertname=%q", cause) {
			continue
		}
		for _, m := range r.Target {
			if g := target.FindStringSubmatch(m); g != nil {
				out = append(out, regexp.MustCompile(`\|`).Split(g[1], -1)...)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no inhibit rule has %s as its source", cause)
	}
	return out
}

// pagesOnce checks that while cause fires (since start) only cause is
// notified: its symptoms that Prometheus fires too are listed inhibited by
// Alertmanager and never reach a receiver. At least one symptom must fire,
// or the inhibition was not put to the test.
func pagesOnce(t *testing.T, ctx context.Context, s *Stack, rec *recorder, cause string, start time.Time) {
	t.Helper()
	names := symptoms(t, cause)
	var fired []string
	waitFor(t, ctx, 90*time.Second, "a symptom of "+cause+" fired in Prometheus and inhibited in Alertmanager", func() (bool, string) {
		fired = fired[:0]
		for _, n := range names {
			if ok, err := firedSince(ctx, s, n, map[string]string{"job": "odoo"}, start); err == nil && ok {
				fired = append(fired, n)
			}
		}
		for _, n := range fired {
			inh, err := s.AM.Inhibited(ctx, n)
			if err == nil && len(inh) > 0 && len(inh[0].Status.InhibitedBy) > 0 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("fired in Prometheus: %v", fired)
	})
	time.Sleep(3 * time.Second) // a group_wait and a group_interval of the e2e Alertmanager
	for _, n := range names {
		if rec.has("firing", n, map[string]string{"job": "odoo"}, start) {
			t.Errorf("%s was notified while %s fired: it must be inhibited", n, cause)
		}
	}
	if !rec.has("firing", cause, nil, start) {
		t.Errorf("%s was not notified", cause)
	}
	t.Logf("%s paged alone; inhibited symptoms that fired: %v", cause, fired)
}
