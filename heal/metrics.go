package heal

import "github.com/prometheus/client_golang/prometheus"

// Action results, the result label of odoo_healer_actions_total.
const (
	ResultSuccess          = "success"
	ResultFailed           = "failed"
	ResultDryRun           = "dry_run"
	ResultNothingToDo      = "nothing_to_do"
	ResultVerifyFailed     = "verify_failed"
	ResultSkippedCooldown  = "skipped_cooldown"
	ResultSkippedRateLimit = "skipped_rate_limit"
	ResultSkippedBusy      = "skipped_busy"
	ResultRejectedTarget   = "rejected_target"
	// ResultStarted is the answer for an action started in the background
	// (not a metric label).
	ResultStarted = "started"
	// ResultNoRule: no rule matches the alert (audited, answered 200).
	ResultNoRule = "no_rule"
	// ResultGaveUp: the episode reached max_attempts without acting.
	ResultGaveUp = "gave_up"
	// ResultClosed: an open episode was closed without acting (the alert
	// resolved, a newer episode started, its rule was removed).
	ResultClosed = "closed"
	// ResultInterrupted: the healer stopped while the action ran; the
	// episode is not run again (it may have acted).
	ResultInterrupted = "interrupted"
)

// Alert outcomes, the outcome label of odoo_healer_alerts_total.
const (
	OutcomeAccepted  = "accepted"
	OutcomeResolved  = "resolved"
	OutcomeUnmatched = "unmatched"
	OutcomeDuplicate = "duplicate"
)

// Metrics are the healer's own metrics.
type Metrics struct {
	actions        *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	alerts         *prometheus.CounterVec
	webhooks       *prometheus.CounterVec
	running        prometheus.Gauge
	reloadSuccess  prometheus.Gauge
	reloadTime     prometheus.Gauge
	lastActionTime *prometheus.GaugeVec
	authFailures   prometheus.Counter
	auditFailures  prometheus.Counter
	stateFailures  prometheus.Counter
	episodesOpen   prometheus.Gauge
}

// NewMetrics creates and registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_healer_actions_total",
			Help: "Healing decisions, by action and result (success, failed, dry_run, nothing_to_do, verify_failed, skipped_cooldown, skipped_rate_limit, skipped_busy, rejected_target, gave_up, closed, interrupted; no_rule with an empty action).",
		}, []string{"action", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "odoo_healer_action_duration_seconds",
			Help:    "Duration of healing actions that ran (dry runs included), verify step included.",
			Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"action"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_healer_alerts_total",
			Help: "Alerts received, by outcome (accepted, resolved, unmatched, duplicate).",
		}, []string{"outcome"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_healer_webhooks_total",
			Help: "Webhook requests answered, by HTTP status code.",
		}, []string{"code"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "odoo_healer_actions_running",
			Help: "Healing actions running now.",
		}),
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "odoo_healer_config_last_reload_successful",
			Help: "Whether the last configuration (re)load succeeded.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "odoo_healer_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful configuration (re)load.",
		}),
		lastActionTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "odoo_healer_last_action_timestamp_seconds",
			Help: "Time the last healing action that ran (dry runs included) ended, by action.",
		}, []string{"action"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "odoo_healer_auth_failures_total",
			Help: "Requests refused for a missing or wrong bearer token.",
		}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "odoo_healer_audit_write_failures_total",
			Help: "Audit records that could not be written.",
		}),
		stateFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "odoo_healer_state_write_failures_total",
			Help: "Failed saves of the state file (episodes, cooldowns, rate limits).",
		}),
		episodesOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "odoo_healer_episodes_open",
			Help: "Alert episodes the healer re-evaluates itself (they could not act yet).",
		}),
	}
	reg.MustRegister(m.actions, m.duration, m.alerts, m.webhooks, m.running, m.reloadSuccess, m.reloadTime, m.lastActionTime,
		m.authFailures, m.auditFailures, m.stateFailures, m.episodesOpen)
	return m
}

// AuthFailed counts a request refused for its credentials.
func (m *Metrics) AuthFailed() { m.authFailures.Inc() }

func (m *Metrics) setOpen(n int) { m.episodesOpen.Set(float64(n)) }

// ConfigLoaded records a configuration (re)load.
func (m *Metrics) ConfigLoaded(ok bool) {
	if ok {
		m.reloadSuccess.Set(1)
		m.reloadTime.SetToCurrentTime()
	} else {
		m.reloadSuccess.Set(0)
	}
}
