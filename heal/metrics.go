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
}

// NewMetrics creates and registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_healer_actions_total",
			Help: "Healing actions decided, by action and result (success, failed, dry_run, nothing_to_do, verify_failed, skipped_cooldown, skipped_rate_limit, skipped_busy, rejected_target).",
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
	}
	reg.MustRegister(m.actions, m.duration, m.alerts, m.webhooks, m.running, m.reloadSuccess, m.reloadTime, m.lastActionTime)
	return m
}

// ConfigLoaded records a configuration (re)load.
func (m *Metrics) ConfigLoaded(ok bool) {
	if ok {
		m.reloadSuccess.Set(1)
		m.reloadTime.SetToCurrentTime()
	} else {
		m.reloadSuccess.Set(0)
	}
}
