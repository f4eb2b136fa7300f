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
	capped := model.Duration(max)
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
				if d > capped {
					v.Value = capped.String()
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
