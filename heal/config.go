package heal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Config is the healer's configuration file.
type Config struct {
	// DryRun, when true, makes every rule only say what it would do.
	DryRun bool `yaml:"dry_run"`
	// MaxActionsPerHour bounds the actions started (dry runs included)
	// across all rules in any sliding hour; 0 means the default (20).
	MaxActionsPerHour int `yaml:"max_actions_per_hour"`
	// VerifyInterval is the pause between two verify checks.
	VerifyInterval model.Duration `yaml:"verify_interval"`
	// SeenTTL is how long a completed alert episode is remembered (so that
	// Alertmanager's re-sends of it are duplicates); default 48h.
	SeenTTL model.Duration `yaml:"episode_ttl"`
	// Defaults apply to every rule that leaves a field unset.
	Defaults RuleDefaults `yaml:"defaults"`
	// Rules map alerts to actions. The first matching rule wins.
	Rules []*Rule `yaml:"rules"`
}

// RuleDefaults are the rule settings that have a default.
type RuleDefaults = RuleLimits

// RuleLimits are a rule's limits; the ones a rule leaves unset (zero)
// come from the defaults.
type RuleLimits struct {
	// Cooldown is the minimum time between an action that acted on a
	// target and the next start of the same action there; an explicit 0s
	// means none (a pointer, so that it is told apart from unset).
	Cooldown *model.Duration `yaml:"cooldown"`
	// MaxActionsPerHour bounds the rule's actions that acted in any
	// sliding hour.
	MaxActionsPerHour int `yaml:"max_actions_per_hour"`
	// Timeout is the deadline of the action itself.
	Timeout model.Duration `yaml:"timeout"`
	// VerifyTimeout is how long the verify step may wait for the condition
	// to clear.
	VerifyTimeout model.Duration `yaml:"verify_timeout"`
	// RetryInterval is the pause before the first re-evaluation of an
	// episode that could not act yet (failed before acting, or nothing to
	// do yet); it doubles up to RetryMaxInterval.
	RetryInterval    model.Duration `yaml:"retry_interval"`
	RetryMaxInterval model.Duration `yaml:"retry_max_interval"`
	// MaxAttempts bounds the runs of one episode that did not act; the
	// episode is then given up (result gave_up).
	MaxAttempts int `yaml:"max_attempts"`
}

// Rule says which alerts run which action on which targets.
type Rule struct {
	// Name identifies the rule in logs, audit lines and follow_up.
	Name string `yaml:"name"`
	// Match selects alerts by label equality; alertname and/or heal are
	// required, except for a rule that only runs as another's follow_up.
	Match map[string]string `yaml:"match"`
	// Action is the action kind (see Actions).
	Action string `yaml:"action"`
	// DryRun overrides the global dry_run for this rule; the rule is dry
	// when either is true.
	DryRun bool `yaml:"dry_run"`
	// Target fixes the target (database or container name); otherwise it
	// is read from the alert label TargetLabel.
	Target string `yaml:"target"`
	// TargetLabel is the alert label naming the target; the default is
	// "database" for PostgreSQL actions and "name" for Docker actions.
	TargetLabel string `yaml:"target_label"`
	// Targets is the allow-list of targets; required unless Target is set.
	Targets []string `yaml:"targets"`
	// RuleLimits: cooldown, rate limit, deadlines, re-evaluation.
	RuleLimits `yaml:",inline"`
	// FollowUp names a rule run after this one succeeded (or dry-ran),
	// with the same alert and through the same safety checks.
	FollowUp string `yaml:"follow_up"`
	// Params are the action's own settings.
	Params yaml.Node `yaml:"params"`

	kind   *ActionKind
	action Action
}

// Defaults of the settings left unset.
const (
	DefaultMaxActionsPerHour     = 20
	DefaultRuleMaxActionsPerHour = 4
	DefaultCooldown              = 15 * time.Minute
	DefaultTimeout               = 2 * time.Minute
	DefaultVerifyTimeout         = time.Minute
	DefaultVerifyInterval        = time.Second
	DefaultRetryInterval         = 30 * time.Second
	DefaultRetryMaxInterval      = 5 * time.Minute
	DefaultMaxAttempts           = 10
	DefaultSeenTTL               = 48 * time.Hour
)

var ruleName = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// LoadConfig reads and validates the configuration file at path.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes (unknown keys are errors) and validates a
// configuration, and fills in the defaults.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty configuration")
		}
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) validate() error {
	if c.MaxActionsPerHour < 0 {
		return errors.New("max_actions_per_hour must not be negative (0 or unset: the default, 20)")
	}
	if c.MaxActionsPerHour == 0 {
		c.MaxActionsPerHour = DefaultMaxActionsPerHour
	}
	if c.VerifyInterval == 0 {
		c.VerifyInterval = model.Duration(DefaultVerifyInterval)
	}
	if err := inRange("verify_interval", c.VerifyInterval, 10*time.Millisecond, time.Minute); err != nil {
		return err
	}
	if c.SeenTTL == 0 {
		c.SeenTTL = model.Duration(DefaultSeenTTL)
	}
	if err := inRange("episode_ttl", c.SeenTTL, time.Hour, 30*24*time.Hour); err != nil {
		return err
	}
	d := &c.Defaults
	cooldown := model.Duration(DefaultCooldown)
	orDefault(&d.Cooldown, &cooldown)
	orDefault(&d.MaxActionsPerHour, DefaultRuleMaxActionsPerHour)
	orDefault(&d.Timeout, model.Duration(DefaultTimeout))
	orDefault(&d.VerifyTimeout, model.Duration(DefaultVerifyTimeout))
	orDefault(&d.RetryInterval, model.Duration(DefaultRetryInterval))
	orDefault(&d.RetryMaxInterval, model.Duration(DefaultRetryMaxInterval))
	orDefault(&d.MaxAttempts, DefaultMaxAttempts)
	if err := d.check("defaults: "); err != nil {
		return err
	}
	if len(c.Rules) == 0 {
		return errors.New("no rules: the healer would never act")
	}
	names := map[string]bool{}
	for i, r := range c.Rules {
		if r == nil {
			return fmt.Errorf("rules[%d]: empty rule", i)
		}
		if err := r.validate(d); err != nil {
			if r.Name != "" {
				return fmt.Errorf("rule %q: %w", r.Name, err)
			}
			return fmt.Errorf("rules[%d]: %w", i, err)
		}
		if names[r.Name] {
			return fmt.Errorf("rules[%d]: duplicate rule name %q", i, r.Name)
		}
		names[r.Name] = true
	}
	followed := map[string]bool{}
	for _, r := range c.Rules {
		followed[r.FollowUp] = true
	}
	for _, r := range c.Rules {
		if !r.direct() && !followed[r.Name] {
			return fmt.Errorf("rule %q: match needs alertname and/or heal (only a rule named by follow_up may have none)", r.Name)
		}
		if r.FollowUp == "" {
			continue
		}
		f := c.Rule(r.FollowUp)
		if f == nil {
			return fmt.Errorf("rule %q: follow_up %q names no rule", r.Name, r.FollowUp)
		}
		if f.Target == "" {
			return fmt.Errorf("rule %q: follow_up rule %q needs a fixed target (the alert's labels name the first rule's target)", r.Name, r.FollowUp)
		}
		if f.FollowUp != "" {
			return fmt.Errorf("rule %q: follow_up rule %q has a follow_up itself (chains are not allowed)", r.Name, r.FollowUp)
		}
	}
	return nil
}

func (r *Rule) validate(d *RuleDefaults) error {
	if r.Name == "" {
		return errors.New("name is required")
	}
	if !ruleName.MatchString(r.Name) {
		return fmt.Errorf("name %q: use letters, digits, '_', '.', '-'", r.Name)
	}
	kind, ok := actionKinds[r.Action]
	if !ok {
		return fmt.Errorf("unknown action %q (known: %s)", r.Action, strings.Join(Actions(), ", "))
	}
	r.kind = kind
	if r.TargetLabel == "" {
		r.TargetLabel = kind.TargetLabel
	}
	if r.Target == "" && len(r.Targets) == 0 {
		return fmt.Errorf("targets (the allow-list of %ss) is required unless target is set", kind.TargetKind)
	}
	for _, t := range append(slices.Clone(r.Targets), r.Target) {
		if strings.ContainsAny(t, "*?") {
			return fmt.Errorf("target %q: patterns are not allowed, list the %ss", t, kind.TargetKind)
		}
	}
	if r.Target != "" && len(r.Targets) > 0 && !slices.Contains(r.Targets, r.Target) {
		return fmt.Errorf("target %q is not in targets", r.Target)
	}
	orDefault(&r.Cooldown, d.Cooldown)
	orDefault(&r.MaxActionsPerHour, d.MaxActionsPerHour)
	orDefault(&r.Timeout, d.Timeout)
	orDefault(&r.VerifyTimeout, d.VerifyTimeout)
	orDefault(&r.RetryInterval, d.RetryInterval)
	orDefault(&r.RetryMaxInterval, d.RetryMaxInterval)
	orDefault(&r.MaxAttempts, d.MaxAttempts)
	if err := r.check(""); err != nil {
		return err
	}
	a, err := kind.New(&r.Params)
	if err != nil {
		return fmt.Errorf("params: %w", err)
	}
	if tc, ok := a.(targetChecker); ok {
		ts := slices.Clone(r.Targets)
		if r.Target != "" && !slices.Contains(ts, r.Target) {
			ts = append(ts, r.Target)
		}
		if err := tc.checkTargets(ts); err != nil {
			return fmt.Errorf("params: %w", err)
		}
	}
	r.action = a
	return nil
}

// orDefault sets *v to def when it is unset (the zero value; nil for a
// pointer, so that an explicit zero is kept).
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// targetChecker is an Action whose params must cover each target of its
// rule (e.g. a health URL per container).
type targetChecker interface {
	checkTargets(targets []string) error
}

// inRange checks a duration setting against [lo, hi].
func inRange(name string, v model.Duration, lo, hi time.Duration) error {
	if d := time.Duration(v); d < lo || d > hi {
		return fmt.Errorf("%s %s: must be between %s and %s", name, v, model.Duration(lo), model.Duration(hi))
	}
	return nil
}

// check checks the limits of a rule (or of the defaults, with prefix
// "defaults: ") against their ranges.
func (l *RuleLimits) check(prefix string) error {
	cooldown, maxPerHour, retry, retryMax, attempts := *l.Cooldown, l.MaxActionsPerHour, l.RetryInterval, l.RetryMaxInterval, l.MaxAttempts
	if cooldown < 0 || time.Duration(cooldown) > 7*24*time.Hour {
		return fmt.Errorf("%scooldown %s: must be between 0s (no cooldown) and 1w", prefix, cooldown)
	}
	if maxPerHour < 0 || maxPerHour > 3600 {
		return fmt.Errorf("%smax_actions_per_hour %d: must be between 1 and 3600 (0 or unset: the default)", prefix, maxPerHour)
	}
	for _, c := range []struct {
		name   string
		v      model.Duration
		lo, hi time.Duration
	}{
		{"timeout", l.Timeout, time.Second, time.Hour},
		{"verify_timeout", l.VerifyTimeout, time.Second, time.Hour},
		{"retry_interval", retry, time.Second, 24 * time.Hour},
		{"retry_max_interval", retryMax, time.Second, 24 * time.Hour},
	} {
		if err := inRange(prefix+c.name, c.v, c.lo, c.hi); err != nil {
			return err
		}
	}
	if retryMax < retry {
		return fmt.Errorf("%sretry_max_interval %s is shorter than retry_interval %s", prefix, retryMax, retry)
	}
	if attempts < 1 || attempts > 1000 {
		return fmt.Errorf("%smax_attempts %d: must be between 1 and 1000 (0 or unset: the default)", prefix, attempts)
	}
	return nil
}

// Rule returns the rule named name, or nil.
func (c *Config) Rule(name string) *Rule {
	for _, r := range c.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// match returns the first rule matching a, or nil.
func (c *Config) match(a Alert) *Rule {
	for _, r := range c.Rules {
		if r.matches(a) {
			return r
		}
	}
	return nil
}

// direct reports whether alerts can match the rule itself (rules without
// alertname or heal in match run only as a follow_up).
func (r *Rule) direct() bool { return r.Match["alertname"] != "" || r.Match["heal"] != "" }

func (r *Rule) matches(a Alert) bool {
	if !r.direct() {
		return false
	}
	for k, v := range r.Match {
		if a.Labels[k] != v {
			return false
		}
	}
	return true
}

// target returns the rule's target for alert a, or an error saying why
// the alert names none that is allowed.
func (r *Rule) target(a Alert) (string, error) {
	if r.Target != "" {
		return r.Target, nil
	}
	t := a.Labels[r.TargetLabel]
	if t == "" {
		return "", fmt.Errorf("alert has no label %q naming the %s", r.TargetLabel, r.kind.TargetKind)
	}
	if !slices.Contains(r.Targets, t) {
		return "", fmt.Errorf("%s %q is not in the rule's targets", r.kind.TargetKind, t)
	}
	return t, nil
}

// decodeParams decodes an action's params strictly (unknown keys are
// errors) into v; an absent params block leaves v as is.
func decodeParams(n *yaml.Node, v any) error {
	if n == nil || n.Kind == 0 {
		return nil
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// Actions lists the known action kinds.
func Actions() []string {
	var names []string
	for n := range actionKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TargetKind is what the rule's targets name: TargetDatabase or
// TargetContainer.
func (r *Rule) TargetKind() string { return r.kind.TargetKind }
