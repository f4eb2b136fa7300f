package odoolog

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed catalog.yaml
var defaultCatalog []byte

// DefaultCatalogYAML returns the embedded catalog's YAML.
func DefaultCatalogYAML() []byte { return bytes.Clone(defaultCatalog) }

// Events an entry may stand for.
const (
	EventCronStart   = "cron_start"
	EventCronDone    = "cron_done"
	EventCronFailed  = "cron_failed"
	EventWorkerAlive = "worker_alive"
	EventWorkerLimit = "worker_limit"
)

// Limits of a worker_limit event.
var Limits = []string{"memory_soft", "memory_hard", "time_cpu", "time_real", "request", "age"}

// WorkerKinds are the kinds of Odoo processes a limit applies to.
var WorkerKinds = []string{"http", "cron", "gevent", "server", "unknown"}

// Severities of the entries.
var Severities = []string{"critical", "warning", "info"}

var (
	idRE     = regexp.MustCompile(`^[a-z0-9_]+$`)
	anchorRE = regexp.MustCompile(`^[a-z0-9-]*$`)
	groups   = map[string]bool{"job": true, "seconds": true, "pid": true, "worker": true, "thread": true, "module": true}
)

// Entry is one entry of the catalog; see catalog.yaml for the meaning of
// the fields.
type Entry struct {
	ID          string   `yaml:"id"`
	Logger      string   `yaml:"logger,omitempty"`
	Message     string   `yaml:"message,omitempty"`
	Exception   string   `yaml:"exception,omitempty"`
	Levels      []string `yaml:"levels,omitempty"`
	Incident    string   `yaml:"incident"`
	Severity    string   `yaml:"severity"`
	Runbook     string   `yaml:"runbook,omitempty"`
	Event       string   `yaml:"event,omitempty"`
	Limit       string   `yaml:"limit,omitempty"`
	Worker      string   `yaml:"worker,omitempty"`
	Versions    []string `yaml:"versions,omitempty"`
	Description string   `yaml:"description,omitempty"`
	Disabled    bool     `yaml:"disabled,omitempty"`

	message   *regexp.Regexp
	prefix    []byte // literal the message starts with (from message)
	exception *regexp.Regexp
	levels    uint8 // bit set of Level; 0 is any
	groups    bool  // message has named groups
}

type catalogFile struct {
	Entries []Entry `yaml:"entries"`
}

// Catalog is a compiled, ordered list of entries, indexed by logger.
type Catalog struct {
	entries  []*Entry
	byLogger map[string][]*Entry // entries of a logger plus those of any logger, in order
	any      []*Entry            // entries of any logger
}

// LoadCatalog compiles the embedded catalog extended by the YAML
// documents in extra (in order: an entry of a later document replaces the
// entry of the same id, or removes it with disabled: true; new entries
// come before the embedded ones, a later document's first).
func LoadCatalog(extra ...[]byte) (*Catalog, error) {
	base, err := parseCatalog(defaultCatalog, "embedded catalog")
	if err != nil {
		return nil, err
	}
	entries := base
	for i, doc := range extra {
		add, err := parseCatalog(doc, fmt.Sprintf("catalog %d", i+1))
		if err != nil {
			return nil, err
		}
		entries = merge(entries, add)
	}
	return newCatalog(entries)
}

// merge applies add over base.
func merge(base, add []Entry) []Entry {
	byID := map[string]int{}
	for i, e := range base {
		byID[e.ID] = i
	}
	var head []Entry
	removed := map[string]bool{}
	for _, e := range add {
		i, ok := byID[e.ID]
		switch {
		case ok && e.Disabled:
			removed[e.ID] = true
		case ok:
			base[i] = e
		case !e.Disabled:
			head = append(head, e)
		}
	}
	out := head
	for _, e := range base {
		if !removed[e.ID] {
			out = append(out, e)
		}
	}
	return out
}

func parseCatalog(doc []byte, name string) ([]Entry, error) {
	var f catalogFile
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	seen := map[string]bool{}
	for i := range f.Entries {
		e := &f.Entries[i]
		if seen[e.ID] {
			return nil, fmt.Errorf("%s: entry %q appears twice", name, e.ID)
		}
		seen[e.ID] = true
		if e.Disabled {
			if !idRE.MatchString(e.ID) {
				return nil, fmt.Errorf("%s: entry %d: id %q: want [a-z0-9_]+", name, i+1, e.ID)
			}
			continue
		}
		if err := e.compile(); err != nil {
			return nil, fmt.Errorf("%s: entry %d (%s): %w", name, i+1, e.ID, err)
		}
	}
	return f.Entries, nil
}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

func (e *Entry) compile() error {
	if !idRE.MatchString(e.ID) {
		return fmt.Errorf("id %q: want [a-z0-9_]+", e.ID)
	}
	if !idRE.MatchString(e.Incident) {
		return fmt.Errorf("incident %q: want [a-z0-9_]+", e.Incident)
	}
	if !oneOf(e.Severity, Severities) {
		return fmt.Errorf("severity %q: want one of %s", e.Severity, strings.Join(Severities, ", "))
	}
	if !anchorRE.MatchString(e.Runbook) {
		return fmt.Errorf("runbook %q: want an anchor ([a-z0-9-]*)", e.Runbook)
	}
	if e.Message == "" && e.Exception == "" {
		return errors.New("needs a message or an exception pattern")
	}
	switch e.Event {
	case "", EventCronStart, EventCronDone, EventCronFailed, EventWorkerAlive:
		if e.Limit != "" {
			return fmt.Errorf("limit %q is for event %s only", e.Limit, EventWorkerLimit)
		}
	case EventWorkerLimit:
		if !oneOf(e.Limit, Limits) {
			return fmt.Errorf("limit %q: want one of %s", e.Limit, strings.Join(Limits, ", "))
		}
	default:
		return fmt.Errorf("event %q: want cron_start, cron_done, cron_failed, worker_alive or worker_limit", e.Event)
	}
	if e.Worker != "" && !oneOf(e.Worker, WorkerKinds) {
		return fmt.Errorf("worker %q: want one of %s", e.Worker, strings.Join(WorkerKinds, ", "))
	}
	e.levels = 0
	for _, l := range e.Levels {
		lv := ParseLevel(l)
		if lv == LevelUnknown {
			return fmt.Errorf("level %q: want DEBUG, INFO, WARNING, ERROR or CRITICAL", l)
		}
		e.levels |= 1 << lv
	}
	if e.Message != "" {
		re, err := regexp.Compile(e.Message)
		if err != nil {
			return fmt.Errorf("message: %w", err)
		}
		for _, g := range re.SubexpNames()[1:] {
			if g == "" {
				continue
			}
			if !groups[g] {
				return fmt.Errorf("message: unknown group %q (want job, seconds, pid, worker, thread or module)", g)
			}
			e.groups = true
		}
		if (e.Event == EventCronStart || e.Event == EventCronDone || e.Event == EventCronFailed) && re.SubexpIndex("job") < 0 {
			return fmt.Errorf("message: event %s needs a job group", e.Event)
		}
		e.message = re
		e.prefix = literalPrefix(e.Message)
	} else if e.Event != "" && e.Event != EventWorkerLimit {
		return fmt.Errorf("event %s needs a message pattern", e.Event)
	}
	if e.Exception != "" {
		re, err := regexp.Compile(`^(?:` + e.Exception + `)$`)
		if err != nil {
			return fmt.Errorf("exception: %w", err)
		}
		e.exception = re
	}
	return nil
}

// literalPrefix returns the literal text a pattern anchored with ^ starts
// with, so that most records are rejected by a bytes.HasPrefix.
func literalPrefix(pattern string) []byte {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return nil
	}
	var b []byte
	for _, s := range re.Sub[1:] {
		if s.Op != syntax.OpLiteral || s.Flags&syntax.FoldCase != 0 {
			break
		}
		b = append(b, string(s.Rune)...)
	}
	return b
}

func newCatalog(entries []Entry) (*Catalog, error) {
	c := &Catalog{byLogger: map[string][]*Entry{}}
	for i := range entries {
		e := &entries[i]
		c.entries = append(c.entries, e)
	}
	for _, e := range c.entries {
		if e.Logger == "" {
			c.any = append(c.any, e)
		} else if _, ok := c.byLogger[e.Logger]; !ok {
			c.byLogger[e.Logger] = nil
		}
	}
	for logger := range c.byLogger {
		var list []*Entry
		for _, e := range c.entries {
			if e.Logger == "" || e.Logger == logger {
				list = append(list, e)
			}
		}
		c.byLogger[logger] = list
	}
	return c, nil
}

// Entries returns the entries in their order of matching.
func (c *Catalog) Entries() []*Entry { return c.entries }

// Match is a record matched by an entry, with the named groups of its
// message pattern (empty when absent).
type Match struct {
	Entry                                     *Entry
	Job, Seconds, PID, Worker, Thread, Module []byte
}

// Match returns the first entry that matches r, filling m with its
// groups, or nil.
func (c *Catalog) Match(r *Record, m *Match) *Entry {
	list, ok := c.byLogger[string(r.Logger)]
	if !ok {
		list = c.any
	}
	for _, e := range list {
		if e.levels != 0 && e.levels&(1<<r.Level) == 0 {
			continue
		}
		if e.exception != nil && (len(r.Exception) == 0 || !e.exception.Match(r.Exception)) {
			continue
		}
		if e.message != nil {
			if !bytes.HasPrefix(r.Message, e.prefix) {
				continue
			}
			if !e.groups {
				if !e.message.Match(r.Message) {
					continue
				}
			} else {
				idx := e.message.FindSubmatchIndex(r.Message)
				if idx == nil {
					continue
				}
				*m = Match{}
				for i, name := range e.message.SubexpNames() {
					if name == "" || idx[2*i] < 0 {
						continue
					}
					v := r.Message[idx[2*i]:idx[2*i+1]]
					switch name {
					case "job":
						m.Job = unquoteRepr(v)
					case "seconds":
						m.Seconds = v
					case "pid":
						m.PID = v
					case "worker":
						m.Worker = v
					case "thread":
						m.Thread = v
					case "module":
						m.Module = v
					}
				}
				m.Entry = e
				return e
			}
		}
		*m = Match{Entry: e}
		return e
	}
	*m = Match{}
	return nil
}

// unquoteRepr removes the quotes of a Python repr() of a string ('x' or
// "x"), as Odoo 18 writes job names; other values are returned as is.
func unquoteRepr(v []byte) []byte {
	if n := len(v); n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n-1] == v[0] {
		return v[1 : n-1]
	}
	return v
}
