// Package heal is the core of odoo_healer: it receives Alertmanager
// webhook notifications and runs healing actions (one file per action) on
// Odoo's PostgreSQL databases and containers, under safety rules: only
// configured alerts and allow-listed targets, resolved alerts never act,
// one action per alert episode (fingerprint + startsAt), one action at a
// time per target, a cooldown per action and target, hourly rate limits,
// dry-run modes, a deadline, a verify step, an audit log and metrics.
//
// An episode that could not act yet (the action failed before changing
// anything, or found nothing to do yet) stays open: the healer itself
// re-evaluates it with a bounded backoff until it acts, the alert
// resolves, or max_attempts is reached. What protects Odoo (episodes,
// cooldowns, rate limits) can be kept in a state file across restarts.
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
	// State, when set, keeps episodes, cooldowns and rate limits across
	// restarts; nil keeps them in memory only.
	State *StateFile
}

// Healer dispatches alerts to actions. It is an http.Handler for the
// webhook endpoint.
type Healer struct {
	opts   Options
	logger *slog.Logger

	mu       sync.Mutex
	cfg      *Config
	closed   bool
	episodes map[string]*episode // rule|fingerprint@startsAt
	busy     map[string]bool     // target -> an action runs on it
	lastRun  map[string]time.Time
	starts   []time.Time // starts in the last hour (reserved while running, kept if the action acted)
	ruleRuns map[string][]time.Time
	wg       sync.WaitGroup
}

// episode is one alert episode handled by one rule.
type episode struct {
	Rule  string `json:"rule"`
	Alert Alert  `json:"alert"`
	// Dry: the follow-up of a dry run is dry.
	Dry      bool      `json:"dry,omitempty"`
	First    time.Time `json:"first"`
	Attempts int       `json:"attempts"`
	Next     time.Time `json:"next,omitzero"`
	Done     bool      `json:"done"`
	DoneAt   time.Time `json:"done_at,omitzero"`
	Result   string    `json:"result,omitempty"`
	// Running is saved before an action starts: an episode found running
	// at start-up may have acted and is closed, never run again.
	Running bool `json:"running,omitempty"`

	timer    *time.Timer
	lastSkip string
}

// New returns a Healer running cfg. With opts.State, the saved episodes,
// cooldowns and rate limits are loaded and open episodes resume.
func New(cfg *Config, opts Options) (*Healer, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
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
	h := &Healer{
		opts:     opts,
		logger:   opts.Logger,
		cfg:      cfg,
		episodes: map[string]*episode{},
		busy:     map[string]bool{},
		lastRun:  map[string]time.Time{},
		ruleRuns: map[string][]time.Time{},
	}
	if opts.State == nil {
		return h, nil
	}
	st, err := opts.State.Load()
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if st.LastRun != nil {
		h.lastRun = st.LastRun
	}
	if st.RuleRuns != nil {
		h.ruleRuns = st.RuleRuns
	}
	h.starts = st.Starts
	open := 0
	for key, ep := range st.Episodes {
		h.episodes[key] = ep
		switch {
		case ep.Done:
		case ep.Running:
			// Stopped in the middle of an action: it may have acted.
			h.finish(ep, ResultInterrupted)
			h.audit(ep, "", ResultInterrupted, []string{"the healer stopped while this action ran: it may have acted, it is not run again"}, nil, 0)
		default:
			open++
			h.schedule(key, ep, time.Until(ep.Next))
		}
	}
	h.prune(now)
	h.opts.Metrics.setOpen(h.countOpen())
	h.logger.Info("state loaded", "file", opts.State.Path(), "episodes", len(h.episodes), "open", open, "cooldowns", len(h.lastRun))
	return h, h.persist()
}

// SetConfig replaces the configuration (SIGHUP). Running actions finish
// with the rules they started with; cooldowns, rate limits and episodes
// carry over (an open episode whose rule is gone is closed at its next
// evaluation).
func (h *Healer) SetConfig(cfg *Config) {
	h.mu.Lock()
	h.cfg = cfg
	h.mu.Unlock()
}

// Shutdown stops accepting alerts and re-evaluations and waits for running
// actions (each is bounded by its rule's timeout and verify_timeout) or
// ctx.
func (h *Healer) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	for _, ep := range h.episodes {
		if ep.timer != nil {
			ep.timer.Stop()
		}
	}
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
// background. It never blocks on an action. A non-nil error with results
// is a failure of the healer itself (the audit log or the state file
// could not be written): the decisions stand, the caller answers 5xx.
func (h *Healer) Handle(m *Message) ([]AlertResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrShuttingDown
	}
	now := time.Now()
	h.prune(now)
	var out []AlertResult
	var errs []error
	for _, a := range m.Alerts {
		res := AlertResult{Alert: a.Name(), Fingerprint: a.Fingerprint}
		rule := h.cfg.match(a)
		switch {
		case a.Status != StatusFiring:
			res.Outcome, res.Reason = OutcomeResolved, "resolved alerts never act"
			if rule == nil {
				res.Outcome = OutcomeUnmatched
			} else {
				res.Rule = rule.Name
			}
			if n := h.closeResolved(a); n > 0 {
				res.Reason += fmt.Sprintf("; closed %d open episode(s)", n)
			}
		case rule == nil:
			res.Outcome, res.Result, res.Reason = OutcomeUnmatched, ResultNoRule, "no rule matches this alert"
			if err := h.record(nil, a, "", false, ResultNoRule, nil, errors.New(res.Reason), 0); err != nil {
				errs = append(errs, err)
			}
		default:
			var err error
			res, err = h.open(now, h.cfg, rule, a, res, false)
			if err != nil {
				errs = append(errs, err)
			}
		}
		h.opts.Metrics.alerts.WithLabelValues(res.Outcome).Inc()
		out = append(out, res)
	}
	if err := h.persist(); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// open starts a new episode of rule for alert a, or answers duplicate for
// one already known. h.mu is held.
func (h *Healer) open(now time.Time, cfg *Config, rule *Rule, a Alert, res AlertResult, dryParent bool) (AlertResult, error) {
	res.Rule = rule.Name
	key := rule.Name + "|" + a.Key()
	if ep := h.episodes[key]; ep != nil {
		res.Outcome = OutcomeDuplicate
		switch {
		case ep.Done:
			res.Result, res.Reason = ep.Result, "this alert episode (fingerprint and startsAt) was already handled"
		case ep.Running:
			res.Reason = "this alert episode is being handled now"
		default:
			res.Reason = fmt.Sprintf("this alert episode is open (%d of %d attempts): the healer re-evaluates it itself in %s",
				ep.Attempts, rule.MaxAttempts, time.Until(ep.Next).Round(time.Second))
		}
		return res, nil
	}
	// A new episode of the same alert ends the older one.
	for _, ep := range h.episodes {
		if !ep.Done && ep.Rule == rule.Name && ep.Alert.Fingerprint == a.Fingerprint && ep.Alert.StartsAt.Before(a.StartsAt) {
			h.close(ep, "a newer episode of the alert started")
		}
	}
	ep := &episode{Rule: rule.Name, Alert: a, Dry: dryParent, First: now}
	h.episodes[key] = ep
	res.Outcome = OutcomeAccepted
	var err error
	res.Result, res.Target, res.Reason, err = h.evaluate(now, cfg, key, ep)
	h.opts.Metrics.setOpen(h.countOpen())
	return res, err
}

// evaluate applies the safety checks to an open episode and starts its
// action when they pass; otherwise it schedules the next evaluation (or
// closes the episode for good). h.mu is held.
func (h *Healer) evaluate(now time.Time, cfg *Config, key string, ep *episode) (result, target, reason string, err error) {
	rule := cfg.Rule(ep.Rule)
	a := ep.Alert
	if rule == nil {
		h.close(ep, "its rule was removed from the configuration")
		return ResultClosed, "", "the rule was removed from the configuration", nil
	}
	dry := cfg.DryRun || rule.DryRun || ep.Dry
	target, terr := rule.target(a)
	if terr != nil {
		h.finish(ep, ResultRejectedTarget)
		return ResultRejectedTarget, "", terr.Error(), h.record(rule, a, "", dry, ResultRejectedTarget, nil, terr, 0)
	}
	busyKey := rule.kind.TargetKind + "/" + target
	coolKey := rule.Action + "/" + target
	var wait time.Duration
	last, ran := h.lastRun[coolKey]
	cooldown := time.Duration(*rule.Cooldown)
	switch {
	case h.busy[busyKey]:
		result, reason = ResultSkippedBusy, "another action runs on this target"
		wait = time.Duration(rule.RetryInterval)
	case ran && now.Sub(last) < cooldown:
		result = ResultSkippedCooldown
		reason = fmt.Sprintf("%s acted on this target %s ago (cooldown %s)", rule.Action, now.Sub(last).Round(time.Second), rule.Cooldown)
		wait = cooldown - now.Sub(last)
	case len(h.ruleRuns[rule.Name]) >= rule.MaxActionsPerHour:
		result = ResultSkippedRateLimit
		reason = fmt.Sprintf("rule %s already ran %d times in the last hour", rule.Name, rule.MaxActionsPerHour)
		wait = h.ruleRuns[rule.Name][0].Add(time.Hour).Sub(now)
	case len(h.starts) >= cfg.MaxActionsPerHour:
		result = ResultSkippedRateLimit
		reason = fmt.Sprintf("the healer already ran %d actions in the last hour", cfg.MaxActionsPerHour)
		wait = h.starts[0].Add(time.Hour).Sub(now)
	}
	if result != "" {
		// Not an attempt: the episode waits until the reason is gone.
		wait = max(wait, time.Second)
		h.schedule(key, ep, wait)
		reason += fmt.Sprintf("; re-evaluated in %s", wait.Round(time.Second))
		if ep.lastSkip != result {
			// Audited once per reason, not at every re-evaluation.
			ep.lastSkip = result
			err = h.record(rule, a, target, dry, result, nil, errors.New(reason), 0)
		}
		return result, target, reason, err
	}
	ep.lastSkip = ""
	ep.Attempts++
	ep.Running = true
	h.busy[busyKey] = true
	h.starts = append(h.starts, now)
	h.ruleRuns[rule.Name] = append(h.ruleRuns[rule.Name], now)
	// Saved as running before it runs: a healer that stops during the
	// action finds it running and never runs it again.
	err = h.persist()
	h.wg.Add(1)
	h.opts.Metrics.running.Inc()
	go h.runEpisode(cfg, rule, key, ep, target, dry, now, busyKey, coolKey)
	return ResultStarted, target, fmt.Sprintf("attempt %d of %d", ep.Attempts, rule.MaxAttempts), err
}

// runEpisode runs one attempt of an episode and decides what follows:
// an action that acted (or a dry run) completes the episode and starts
// the cooldown; one that could not act yet is re-evaluated later, up to
// max_attempts.
func (h *Healer) runEpisode(cfg *Config, rule *Rule, key string, ep *episode, target string, dry bool, start time.Time, busyKey, coolKey string) {
	defer h.wg.Done()
	defer h.opts.Metrics.running.Dec()
	result, rep, d, err := h.run(withEpisodeBegan(context.Background(), ep.First), cfg, rule, ep.Alert, target, dry)
	// A dry run that would have acted counts as acting (cooldown, rate
	// limits), so that it shows what the healer would do; one that found
	// nothing to do is retried as the real one would be.
	acted := rep.hasActed() || result == ResultDryRun

	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.busy, busyKey)
	ep.Running = false
	steps := rep.Steps()
	if acted {
		h.lastRun[coolKey] = start
	} else {
		// Only actions that acted count for the rate limits.
		h.starts = removeTime(h.starts, start)
		h.ruleRuns[rule.Name] = removeTime(h.ruleRuns[rule.Name], start)
	}
	switch {
	case ep.Done:
		// Closed while it ran (the alert resolved).
	case acted || result == ResultSuccess || result == ResultDryRun:
		h.finish(ep, result)
	case ep.Attempts >= rule.MaxAttempts:
		h.finish(ep, ResultGaveUp)
	case h.closed:
	default:
		wait := backoff(rule, ep.Attempts)
		h.schedule(key, ep, wait)
		steps = append(steps, fmt.Sprintf("episode left open: re-evaluated in %s (attempt %d of %d)", wait.Round(time.Second), ep.Attempts, rule.MaxAttempts))
	}
	h.opts.Metrics.duration.WithLabelValues(rule.Action).Observe(d.Seconds())
	h.opts.Metrics.lastActionTime.WithLabelValues(rule.Action).SetToCurrentTime()
	_ = h.record(rule, ep.Alert, target, dry, result, steps, err, d)
	if ep.Result == ResultGaveUp {
		_ = h.record(rule, ep.Alert, target, dry, ResultGaveUp, nil,
			fmt.Errorf("gave up after %d attempts without acting (last: %s): a human should look", ep.Attempts, result), 0)
	}
	if rule.FollowUp != "" && (result == ResultSuccess || result == ResultDryRun) && !h.closed {
		if f := cfg.Rule(rule.FollowUp); f != nil {
			fr, _ := h.open(time.Now(), cfg, f, ep.Alert, AlertResult{Alert: ep.Alert.Name(), Fingerprint: ep.Alert.Fingerprint}, dry)
			h.logger.Info("follow-up", "rule", rule.Name, "follow_up", f.Name, "result", fr.Result, "reason", fr.Reason)
		}
	}
	h.opts.Metrics.setOpen(h.countOpen())
	if err := h.persist(); err != nil {
		h.logger.Error("cannot save the state", "err", err)
	}
}

// backoff is the pause after the n-th attempt: retry_interval doubled
// each attempt, at most retry_max_interval.
func backoff(rule *Rule, n int) time.Duration {
	d := time.Duration(rule.RetryInterval)
	for i := 1; i < n && d < time.Duration(rule.RetryMaxInterval); i++ {
		d *= 2
	}
	return min(d, time.Duration(rule.RetryMaxInterval))
}

// schedule re-evaluates ep after d. h.mu is held.
func (h *Healer) schedule(key string, ep *episode, d time.Duration) {
	if ep.timer != nil {
		ep.timer.Stop()
	}
	d = max(d, 0)
	ep.Next = time.Now().Add(d)
	ep.timer = time.AfterFunc(d, func() { h.reevaluate(key) })
}

// reevaluate is an open episode's timer.
func (h *Healer) reevaluate(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ep := h.episodes[key]
	if h.closed || ep == nil || ep.Done || ep.Running {
		return
	}
	result, target, reason, err := h.evaluate(time.Now(), h.cfg, key, ep)
	h.logger.Debug("episode re-evaluated", "rule", ep.Rule, "alert", ep.Alert.Name(), "fingerprint", ep.Alert.Fingerprint,
		"target", target, "result", result, "reason", reason, "err", err)
	h.opts.Metrics.setOpen(h.countOpen())
	if err := h.persist(); err != nil {
		h.logger.Error("cannot save the state", "err", err)
	}
}

// finish completes ep with result. h.mu is held.
func (h *Healer) finish(ep *episode, result string) {
	if ep.timer != nil {
		ep.timer.Stop()
		ep.timer = nil
	}
	ep.Done, ep.DoneAt, ep.Result, ep.Next = true, time.Now(), result, time.Time{}
}

// close ends an open episode without acting (the alert resolved, a newer
// episode started, its rule is gone) and audits why. h.mu is held.
func (h *Healer) close(ep *episode, why string) {
	if ep.Done {
		return
	}
	running := ep.Running
	h.finish(ep, ResultClosed)
	if running {
		why += " (its running attempt finishes)"
	}
	h.audit(ep, "", ResultClosed, []string{"episode closed: " + why}, nil, 0)
}

// closeResolved closes the open episodes of a resolved alert's episode.
func (h *Healer) closeResolved(a Alert) int {
	n := 0
	for _, ep := range h.episodes {
		if !ep.Done && ep.Alert.Key() == a.Key() {
			h.close(ep, "the alert resolved")
			n++
		}
	}
	h.opts.Metrics.setOpen(h.countOpen())
	return n
}

func (h *Healer) countOpen() int {
	n := 0
	for _, ep := range h.episodes {
		if !ep.Done {
			n++
		}
	}
	return n
}

// audit records a line about ep with its rule (when it still exists).
func (h *Healer) audit(ep *episode, target, result string, steps []string, err error, d time.Duration) {
	rule := h.cfg.Rule(ep.Rule)
	if rule == nil {
		rule = &Rule{Name: ep.Rule}
	}
	_ = h.record(rule, ep.Alert, target, ep.Dry, result, steps, err, d)
}

// run runs one action with its deadline and verify step.
func (h *Healer) run(ctx context.Context, cfg *Config, rule *Rule, a Alert, target string, dry bool) (string, *Report, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(rule.Timeout))
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
	return result, rep, time.Since(start), err
}

// record counts, logs and audits one decision; rule is nil for an alert
// no rule matches. Its error is a failure to write the audit log.
func (h *Healer) record(rule *Rule, a Alert, target string, dry bool, result string, steps []string, err error, d time.Duration) error {
	var ruleName, action string
	if rule != nil {
		ruleName, action = rule.Name, rule.Action
	}
	h.opts.Metrics.actions.WithLabelValues(action, result).Inc()
	rec := AuditRecord{
		Time:            time.Now().UTC(),
		Alert:           a.Name(),
		Fingerprint:     a.Fingerprint,
		StartsAt:        a.StartsAt,
		Rule:            ruleName,
		Action:          action,
		Target:          target,
		DryRun:          dry,
		Result:          result,
		Steps:           steps,
		DurationSeconds: d.Seconds(),
	}
	if err != nil {
		rec.Error = err.Error()
	}
	level := slog.LevelInfo
	switch result {
	case ResultFailed, ResultVerifyFailed, ResultGaveUp, ResultInterrupted:
		level = slog.LevelError
	case ResultNoRule:
		level = slog.LevelWarn
	}
	h.logger.Log(context.Background(), level, "action "+result, "rule", ruleName, "action", action, "target", target,
		"alert", a.Name(), "fingerprint", a.Fingerprint, "dry_run", dry, "steps", strings.Join(rec.Steps, "; "), "err", rec.Error, "duration", d)
	if h.opts.Audit == nil {
		return nil
	}
	if werr := h.opts.Audit.Write(rec); werr != nil {
		h.opts.Metrics.auditFailures.Inc()
		h.logger.Error("cannot write the audit log", "err", werr)
		return fmt.Errorf("writing the audit log: %w", werr)
	}
	return nil
}

// persist saves the state. h.mu is held.
func (h *Healer) persist() error {
	if h.opts.State == nil {
		return nil
	}
	err := h.opts.State.Save(&State{Episodes: h.episodes, LastRun: h.lastRun, Starts: h.starts, RuleRuns: h.ruleRuns})
	if err != nil {
		h.opts.Metrics.stateFailures.Inc()
		return err
	}
	return nil
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
	ttl := time.Duration(h.cfg.SeenTTL)
	for k, ep := range h.episodes {
		switch {
		case ep.Done && now.Sub(ep.DoneAt) > ttl:
			delete(h.episodes, k)
		case !ep.Done && !ep.Running && now.Sub(ep.First) > ttl:
			h.close(ep, "open for longer than episode_ttl")
		}
	}
	for k, t := range h.lastRun {
		if now.Sub(t) > 7*24*time.Hour {
			delete(h.lastRun, k)
		}
	}
}

func dropBefore(ts []time.Time, t time.Time) []time.Time {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(t) })
	return ts[i:]
}

// removeTime removes one occurrence of t from ts.
func removeTime(ts []time.Time, t time.Time) []time.Time {
	for i, v := range ts {
		if v.Equal(t) {
			return append(ts[:i:i], ts[i+1:]...)
		}
	}
	return ts
}

// ServeHTTP is the webhook endpoint: POST an Alertmanager notification.
// 200 once the alerts are decided (actions run in the background), also
// for alerts no rule matches (audited: a 4xx would make Alertmanager
// re-send the notification at every group_interval); 4xx with a reason
// for malformed requests; 500 when the healer could not write its audit
// log or state; 503 during shutdown.
func (h *Healer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code, body := h.serve(r)
	h.opts.Metrics.webhooks.WithLabelValues(strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

type errorBody struct {
	Error  string        `json:"error"`
	Alerts []AlertResult `json:"alerts,omitempty"`
}

type okBody struct {
	Alerts []AlertResult `json:"alerts"`
}

func (h *Healer) serve(r *http.Request) (int, any) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, errorBody{Error: "use POST"}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return http.StatusUnsupportedMediaType, errorBody{Error: fmt.Sprintf("content type %q: want application/json", ct)}
	}
	m, err := DecodeWebhook(r.Body, h.opts.MaxBodyBytes)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			h.logger.Warn("rejected webhook", "code", de.Code, "reason", de.Reason, "remote", r.RemoteAddr)
			return de.Code, errorBody{Error: de.Reason}
		}
		return http.StatusBadRequest, errorBody{Error: err.Error()}
	}
	results, err := h.Handle(m)
	switch {
	case errors.Is(err, ErrShuttingDown):
		return http.StatusServiceUnavailable, errorBody{Error: err.Error()}
	case err != nil:
		return http.StatusInternalServerError, errorBody{Error: err.Error(), Alerts: results}
	}
	return http.StatusOK, okBody{results}
}
