// Package rules ships the Prometheus alert and recording rules for Odoo
// (alerts_odoo.yml), the Alertmanager inhibit rules that go with them
// (inhibit_rules.yml) and helpers for tests that load them.
//
// The rule file is the product: operators copy it into Prometheus' rule
// directory. Tests that need alerts to fire quickly (the end-to-end suite)
// must not edit it; they load a copy through Shorten, which caps every
// "for" duration.
package rules

import (
	"bytes"
	_ "embed"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

//go:embed alerts_odoo.yml
var pack []byte

//go:embed inhibit_rules.yml
var inhibit []byte

// InhibitFileName is the name of the Alertmanager inhibit rules file.
const InhibitFileName = "inhibit_rules.yml"

// Inhibit returns the content of inhibit_rules.yml: an Alertmanager
// configuration fragment whose inhibit_rules list makes the cause's alert
// (Odoo down, the database down) silence its symptoms' alerts.
func Inhibit() []byte {
	return bytes.Clone(inhibit)
}

// InhibitRules returns the inhibit_rules list of inhibit_rules.yml,
// decoded, for a test's Alertmanager configuration.
func InhibitRules() ([]any, error) {
	var doc struct {
		InhibitRules []any `yaml:"inhibit_rules"`
	}
	if err := yaml.Unmarshal(inhibit, &doc); err != nil {
		return nil, fmt.Errorf("rules: parsing %s: %w", InhibitFileName, err)
	}
	if len(doc.InhibitRules) == 0 {
		return nil, fmt.Errorf("rules: no inhibit_rules in %s", InhibitFileName)
	}
	return doc.InhibitRules, nil
}

// FileName is the name of the rule file, as shipped.
const FileName = "alerts_odoo.yml"

// Pack returns the content of alerts_odoo.yml.
func Pack() []byte {
	return bytes.Clone(pack)
}

// Shorten returns a copy of the rule file in with every alert's "for" and
// "keep_firing_for" duration capped at max, so that a test sees alerts fire
// within seconds instead of minutes. Everything else is left as it is:
// range windows inside expressions (e.g. [10m]) still need that much data,
// so an end-to-end test should use alerts whose expressions it can satisfy.
// A max of 0 removes the delay altogether.
func Shorten(in []byte, max time.Duration) ([]byte, error) {
	if max < 0 {
		return nil, fmt.Errorf("rules: negative maximum duration %s", max)
	}
	capped := model.Duration(max)
	return mapDurations(in, func(d model.Duration) model.Duration { return min(d, capped) })
}

// Scale returns a copy of the rule file in with every alert's "for" and
// "keep_firing_for" duration divided by div, at least 1s and at most max.
// Unlike Shorten it keeps the order of the durations, which Alertmanager's
// inhibition relies on: a cause (OdooDown, for 2m) must fire before its
// symptoms (OdooLongpollDown, 3m) to silence them.
func Scale(in []byte, div int, limit time.Duration) ([]byte, error) {
	if div < 1 || limit < time.Second {
		return nil, fmt.Errorf("rules: divisor %d must be at least 1 and maximum %s at least 1s", div, limit)
	}
	return mapDurations(in, func(d model.Duration) model.Duration {
		if d == 0 {
			return 0
		}
		return min(max(d/model.Duration(div), model.Duration(time.Second)), model.Duration(limit))
	})
}

// mapDurations returns a copy of the rule file in with f applied to every
// alert's "for" and "keep_firing_for" duration.
func mapDurations(in []byte, f func(model.Duration) model.Duration) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(in, &doc); err != nil {
		return nil, fmt.Errorf("rules: parsing the rule file: %w", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("rules: the rule file is not a YAML mapping")
	}
	groups := mapValue(doc.Content[0], "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("rules: no groups list in the rule file")
	}
	for gi, g := range groups.Content {
		rules := mapValue(g, "rules")
		if rules == nil {
			continue
		}
		for ri, r := range rules.Content {
			for _, key := range []string{"for", "keep_firing_for"} {
				v := mapValue(r, key)
				if v == nil {
					continue
				}
				d, err := model.ParseDuration(v.Value)
				if err != nil {
					return nil, fmt.Errorf("rules: group %d rule %d: %s %q: %w", gi, ri, key, v.Value, err)
				}
				if n := f(d); n != d {
					v.Value = n.String()
					v.Style = 0
					v.Tag = "!!str"
				}
			}
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("rules: writing the rule file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rules: writing the rule file: %w", err)
	}
	return buf.Bytes(), nil
}

// mapValue returns the value of key in the mapping node m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
