package main

// Alert thresholds of the group odoo.log of rules/alerts_odoo.yml.
const (
	logErrorsPerMinuteMax = 1 // OdooLogServerErrorsRising
	cronTimeoutsMax       = 2 // OdooLogCronTimeoutLoop, per hour
	memoryRecyclesMax     = 5 // OdooLogWorkersRecycledForMemory, per hour
	serverStartsMax       = 3 // OdooLogBootLoop, "Odoo version" lines per 15 minutes
)

func logs() *dashboard {
	incr := func(sel, window string) string { return `increase(` + sel + `[` + window + `])` }
	return &dashboard{
		uid: "odoo-logs", title: "Odoo / Log", database: true,
		description: "Odoo's own log, read by the odoo_log collector from a file or a container: records by level, the error catalog's matches, cron runs and failures (every Odoo version), worker limits, boot errors, and the sources themselves.",
		panels: []*panel{
			row("Errors"),
			ts("ERROR and CRITICAL records per minute", "short",
				q(`sum by (instance) (rate(`+t("odoo_log_records_total", `level=~"ERROR|CRITICAL"`)+`[`+rate+`])) * 60`, "{{instance}}")).
				red(logErrorsPerMinuteMax).link("OdooLogServerErrorsRising"),
			ts("Records per second by level", "ops", q(`sum by (level) (rate(`+t("odoo_log_records_total")+`[`+rate+`]))`, "{{level}}")),
			ts("Catalog matches by incident (15 min, not info)", "short",
				q(`sum by (incident) (`+incr(t("odoo_log_matches_total", `severity!="info"`), "15m")+`)`, "{{incident}}")),
			ts("Errors no catalog entry knows, by class (15 min)", "short",
				q(`sum by (class) (`+incr(t("odoo_log_unknown_errors_total"), "15m")+`)`, "{{class}}")),
			(&panel{kind: "table", title: "Catalog entries matched (1 h)", unit: "short", w: 24, h: 8,
				targets: []target{q(`topk(15, sum by (id, incident, severity) (`+incr(t("odoo_log_matches_total"), "1h")+`))`, "")}}),
			row("Cron"),
			ts("Failed cron runs (1 h)", "short",
				q(`sum by (database) (`+incr(db("odoo_log_cron_runs_total", `result="failed"`), "1h")+`)`, "{{database}}")).link("OdooLogCronFailing"),
			ts("Cron runs by result (15 min)", "short",
				q(`sum by (database, result) (`+incr(db("odoo_log_cron_runs_total"), "15m")+`)`, "{{database}} {{result}}")),
			ts("Cron worker killed by limit_time_real (1 h)", "short",
				q(`sum by (instance) (`+incr(t("odoo_log_worker_limit_events_total", `limit="time_real"`, `worker="cron"`), "1h")+`)`, "{{instance}}")).
				red(cronTimeoutsMax).link("OdooLogCronTimeoutLoop"),
			ts("Cron run duration (p50, p95)", "s",
				q(`histogram_quantile(0.5, sum by (database, le) (rate(`+db("odoo_log_cron_run_duration_seconds_bucket")+`[`+rate+`])))`, "p50 {{database}}"),
				q(`histogram_quantile(0.95, sum by (database, le) (rate(`+db("odoo_log_cron_run_duration_seconds_bucket")+`[`+rate+`])))`, "p95 {{database}}")),
			ts("Runs per job (top 10, 1 h, --collector.odoo_log.per-job)", "short",
				q(`topk(10, sum by (database, cron, result) (`+incr(db("odoo_log_cron_job_runs_total"), "1h")+`))`, "{{database}} {{cron}} {{result}}")).width(24),
			row("Workers and boot"),
			ts("Memory limit events by worker kind (1 h)", "short",
				q(`sum without (limit) (`+incr(t("odoo_log_worker_limit_events_total", `limit=~"memory_soft|memory_hard"`), "1h")+`)`, "{{worker}}")).
				red(memoryRecyclesMax).link("OdooLogWorkersRecycledForMemory"),
			ts("Worker limit events by limit and kind (15 min)", "short",
				q(`sum by (limit, worker) (`+incr(t("odoo_log_worker_limit_events_total"), "15m")+`)`, "{{limit}} {{worker}}")),
			ts("Boot errors (15 min)", "short",
				q(`sum by (id) (`+incr(t("odoo_log_matches_total", `incident="boot"`, `severity="critical"`), "15m")+`)`, "{{id}}")).link("OdooLogBootLoop"),
			ts("Odoo starts: \"Odoo version\" lines (15 min)", "short",
				q(`sum by (instance) (`+incr(t("odoo_log_matches_total", `id="server_start"`), "15m")+`)`, "{{instance}}")).
				red(serverStartsMax).link("OdooLogBootLoop"),
			row("Sources"),
			ts("Source read", "none", q(t("odoo_log_source_up"), "{{source}}")).upDown(),
			ts("Lines per second", "ops", q(`sum by (source) (rate(`+t("odoo_log_lines_total")+`[`+rate+`]))`, "{{source}}")),
			ts("Source events (15 min)", "short", q(`sum by (source, event) (`+incr(t("odoo_log_source_events_total"), "15m")+`)`, "{{source}} {{event}}")),
			ts("Truncated records and foreign lines (15 min)", "short",
				q(`sum by (source) (`+incr(t("odoo_log_truncated_records_total"), "15m")+`)`, "{{source}} truncated"),
				q(`sum by (source) (`+incr(t("odoo_log_foreign_lines_total"), "15m")+`)`, "{{source}} foreign")),
		},
	}
}
