// Package heal is the core of odoo_healer: it receives Alertmanager
// webhook notifications and runs healing actions (one file per action) on
// Odoo's PostgreSQL databases and containers, under safety rules: only
// configured alerts and allow-listed targets, resolved alerts never act,
// one run per alert episode (fingerprint + startsAt), one action at a time
// per target, a cooldown per action and target, hourly rate limits,
// dry-run modes, a deadline, a verify step, an audit log and metrics.
package heal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Healer.
type Options struct {
	Env     *Env
	Audit   *AuditLog
	Metrics *Metrics
	Logger  *slog.Logger
	// MaxBodyBytes bounds a webhook body (default 1 MiB).
	MaxBodyBytes int64
	// SeenTTL is how long an alert episode key is remembered (default 48 h).
	SeenTTL time.Duration
}

// Healer dispatches alerts to actions. It is an http.Handler for the
// webhook endpoint.
type Healer struct {
	opts   Options
	logger *slog.Logger

	mu       sync.Mutex
	cfg      *Config
	closed   bool
	seen     map[string]time.Time // alert episode (+ rule) -> when acted
	busy     map[string]bool      // target -> an action runs on it
	lastRun  map[string]time.Time // action/target -> last start
	starts   []time.Time          // all starts in the last hour
	ruleRuns map[string][]time.Time
	wg       sync.WaitGroup
}

// New returns a Healer running cfg.
func New(cfg *Config, opts Options) *Healer {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.SeenTTL <= 0 {
		opts.SeenTTL = 48 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Env == nil {
		opts.Env = &Env{}
	}
	if opts.Env.Logger == nil {
		opts.Env.Logger = opts.Logger
	}
	return &Healer{
		opts:     opts,
		logger:   opts.Logger,
		cfg:      cfg,
		seen:     map[string]time.Time{},
		busy:     map[string]bool{},
		lastRun:  map[string]time.Time{},
		ruleRuns: map[string][]time.Time{},
	}
}

// SetConfig replaces the configuration (SIGHUP). Running actions finish
// with the rules they started with; cooldowns, rate limits and the
// episodes already acted on carry over.
func (h *Healer) SetConfig(cfg *Config) {
	h.mu.Lock()
	h.cfg = cfg
	h.mu.Unlock()
}

// Shutdown stops accepting alerts and waits for running actions (each is
// bounded by its rule's timeout and verify_timeout) or ctx.
func (h *Healer) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("actions still running: %w", ctx.Err())
	}
}

// Env returns the environment the actions run in.
func (h *Healer) Env() *Env { return h.opts.Env }

// Wait waits for the running actions to finish (tests).
func (h *Healer) Wait() { h.wg.Wait() }

// AlertResult is the decision taken for one alert of a notification.
type AlertResult struct {
	Alert       string `json:"alert"`
	Fingerprint string `json:"fingerprint"`
	Outcome     string `json:"outcome"`
	Rule        string `json:"rule,omitempty"`
	Target      string `json:"target,omitempty"`
	Result      string `json:"result,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// ErrShuttingDown is returned by Handle during shutdown.
var ErrShuttingDown = errors.New("shutting down")

// Handle decides for each alert of m and starts accepted actions in the
// background. It never blocks on an action.
func (h *Healer) Handle(m *Message) ([]AlertResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrShuttingDown
	}
	now := time.Now()
	h.prune(now)
	var out []AlertResult
	for _, a := range m.Alerts {
		res := AlertResult{Alert: a.Name(), Fingerprint: a.Fingerprint}
		rule := h.cfg.match(a)
		switch {
		case rule == nil:
			res.Outcome, res.Reason = OutcomeUnmatched, "no rule matches this alert"
		case a.Status != StatusFiring:
			res.Outcome, res.Rule, res.Reason = OutcomeResolved, rule.Name, "resolved alerts never act"
		default:
			res = h.admit(now, h.cfg, rule, a, a.Key(), res, false)
		}
		h.opts.Metrics.alerts.WithLabelValues(res.Outcome).Inc()
		out = append(out, res)
	}
	return out, nil
}

// admit applies the safety checks to rule for alert a and, when they
// pass, starts the action; dryParent makes it a dry run (the follow-up of
// a dry run is dry too). h.mu is held.
func (h *Healer) admit(now time.Time, cfg *Config, rule *Rule, a Alert, key string, res AlertResult, dryParent bool) AlertResult {
	res.Rule = rule.Name
	seenKey := rule.Name + "|" + key
	if _, dup := h.seen[seenKey]; dup {
		res.Outcome, res.Reason = OutcomeDuplicate, "this alert episode (fingerprint and startsAt) was already handled"
		return res
	}
	res.Outcome = OutcomeAccepted
	dry := cfg.DryRun || rule.DryRun || dryParent
	target, err := rule.target(a)
	if err != nil {
		res.Result, res.Reason = ResultRejectedTarget, err.Error()
		h.record(rule, a, "", dry, res.Result, nil, err, 0)
		return res
	}
	res.Target = target
	busyKey := rule.kind.TargetKind + "/" + target
	coolKey := rule.Action + "/" + target
	switch {
	case h.busy[busyKey]:
		res.Result, res.Reason = ResultSkippedBusy, "another action runs on this target"
	case now.Sub(h.lastRun[coolKey]) < time.Duration(rule.Cooldown):
		res.Result = ResultSkippedCooldown
		res.Reason = fmt.Sprintf("%s ran on this target %s ago (cooldown %s)", rule.Action, now.Sub(h.lastRun[coolKey]).Round(time.Second), rule.Cooldown)
	case len(h.ruleRuns[rule.Name]) >= rule.MaxActionsPerHour:
		res.Result = ResultSkippedRateLimit
		res.Reason = fmt.Sprintf("rule %s already ran %d times in the last hour", rule.Name, rule.MaxActionsPerHour)
	case len(h.starts) >= cfg.MaxActionsPerHour:
		res.Result = ResultSkippedRateLimit
		res.Reason = fmt.Sprintf("the healer already ran %d actions in the last hour", cfg.MaxActionsPerHour)
	}
	if res.Result != "" {
		h.record(rule, a, target, dry, res.Result, nil, errors.New(res.Reason), 0)
		return res
	}
	h.seen[seenKey] = now
	h.busy[busyKey] = true
	h.lastRun[coolKey] = now
	h.starts = append(h.starts, now)
	h.ruleRuns[rule.Name] = append(h.ruleRuns[rule.Name], now)
	res.Result = "started"
	h.wg.Add(1)
	h.opts.Metrics.running.Inc()
	go func() {
		defer h.wg.Done()
		defer h.opts.Metrics.running.Dec()
		result := h.run(cfg, rule, a, target, dry)
		h.mu.Lock()
		delete(h.busy, busyKey)
		if rule.FollowUp != "" && (result == ResultSuccess || result == ResultDryRun) && !h.closed {
			if f := cfg.Rule(rule.FollowUp); f != nil {
				fr := h.admit(time.Now(), cfg, f, a, key, AlertResult{Alert: a.Name(), Fingerprint: a.Fingerprint}, dry)
				h.logger.Info("follow-up", "rule", rule.Name, "follow_up", f.Name, "result", fr.Result, "reason", fr.Reason)
			}
		}
		h.mu.Unlock()
	}()
	return res
}

// run runs one action with its deadline and verify step and records the
// result.
func (h *Healer) run(cfg *Config, rule *Rule, a Alert, target string, dry bool) string {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rule.Timeout))
	defer cancel()
	rep := &Report{}
	h.logger.Info("running action", "rule", rule.Name, "action", rule.Action, "target", target, "alert", a.Name(), "fingerprint", a.Fingerprint, "dry_run", dry)
	verify, err := rule.action.Run(ctx, h.opts.Env, target, dry, rep)
	var result string
	switch {
	case err != nil:
		result = ResultFailed
	case dry:
		result = ResultDryRun
	case rep.isNothing():
		result = ResultNothingToDo
	case verify == nil:
		result = ResultSuccess
	default:
		vctx, vcancel := context.WithTimeout(context.Background(), time.Duration(rule.VerifyTimeout))
		err = pollUntil(vctx, time.Duration(cfg.VerifyInterval), verify)
		vcancel()
		if err != nil {
			result = ResultVerifyFailed
			err = fmt.Errorf("verify (within %s): %w", rule.VerifyTimeout, err)
		} else {
			result = ResultSuccess
			rep.Step("verified: the condition cleared")
		}
	}
	d := time.Since(start)
	h.opts.Metrics.duration.WithLabelValues(rule.Action).Observe(d.Seconds())
	h.opts.Metrics.lastActionTime.WithLabelValues(rule.Action).SetToCurrentTime()
	h.record(rule, a, target, dry, result, rep, err, d)
	return result
}

// record counts, logs and audits one decision.
func (h *Healer) record(rule *Rule, a Alert, target string, dry bool, result string, rep *Report, err error, d time.Duration) {
	h.opts.Metrics.actions.WithLabelValues(rule.Action, result).Inc()
	rec := AuditRecord{
		Time:            time.Now().UTC(),
		Alert:           a.Name(),
		Fingerprint:     a.Fingerprint,
		StartsAt:        a.StartsAt,
		Rule:            rule.Name,
		Action:          rule.Action,
		Target:          target,
		DryRun:          dry,
		Result:          result,
		DurationSeconds: d.Seconds(),
	}
	if rep != nil {
		rec.Steps = rep.Steps()
	}
	if err != nil {
		rec.Error = err.Error()
	}
	level := slog.LevelInfo
	if result == ResultFailed || result == ResultVerifyFailed {
		level = slog.LevelError
	}
	h.logger.Log(context.Background(), level, "action "+result, "rule", rule.Name, "action", rule.Action, "target", target,
		"alert", a.Name(), "fingerprint", a.Fingerprint, "dry_run", dry, "steps", strings.Join(rec.Steps, "; "), "err", rec.Error, "duration", d)
	if h.opts.Audit != nil {
		if werr := h.opts.Audit.Write(rec); werr != nil {
			h.logger.Error("cannot write the audit log", "err", werr)
		}
	}
}

// prune forgets what is older than the windows. h.mu is held.
func (h *Healer) prune(now time.Time) {
	hour := now.Add(-time.Hour)
	h.starts = dropBefore(h.starts, hour)
	for k, v := range h.ruleRuns {
		if v = dropBefore(v, hour); len(v) == 0 {
			delete(h.ruleRuns, k)
		} else {
			h.ruleRuns[k] = v
		}
	}
	for k, t := range h.seen {
		if now.Sub(t) > h.opts.SeenTTL {
			delete(h.seen, k)
		}
	}
	for k, t := range h.lastRun {
		if now.Sub(t) > 24*time.Hour && now.Sub(t) > h.opts.SeenTTL {
			delete(h.lastRun, k)
		}
	}
}

func dropBefore(ts []time.Time, t time.Time) []time.Time {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(t) })
	return ts[i:]
}

// ServeHTTP is the webhook endpoint: POST an Alertmanager notification.
// 200 once the alerts are decided (actions run in the background); 4xx
// with a reason for bad requests (not retried by Alertmanager); 503
// during shutdown.
func (h *Healer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code, body := h.serve(r)
	h.opts.Metrics.webhooks.WithLabelValues(strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

type errorBody struct {
	Error string `json:"error"`
}

type okBody struct {
	Alerts []AlertResult `json:"alerts"`
}

func (h *Healer) serve(r *http.Request) (int, any) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, errorBody{"use POST"}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return http.StatusUnsupportedMediaType, errorBody{fmt.Sprintf("content type %q: want application/json", ct)}
	}
	m, err := DecodeWebhook(r.Body, h.opts.MaxBodyBytes)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			h.logger.Warn("rejected webhook", "code", de.Code, "reason", de.Reason, "remote", r.RemoteAddr)
			return de.Code, errorBody{de.Reason}
		}
		return http.StatusBadRequest, errorBody{err.Error()}
	}
	results, err := h.Handle(m)
	if err != nil {
		return http.StatusServiceUnavailable, errorBody{err.Error()}
	}
	known := false
	for _, res := range results {
		if res.Outcome != OutcomeUnmatched {
			known = true
		}
	}
	if !known {
		var names []string
		for _, res := range results {
			names = append(names, res.Alert)
		}
		reason := fmt.Sprintf("no rule matches alert(s) %s", strings.Join(names, ", "))
		h.logger.Warn("rejected webhook", "code", http.StatusUnprocessableEntity, "reason", reason, "receiver", m.Receiver)
		return http.StatusUnprocessableEntity, errorBody{reason}
	}
	return http.StatusOK, okBody{results}
}
