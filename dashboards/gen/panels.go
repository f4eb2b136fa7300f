package main

import "fmt"

const firingAlerts = `ALERTS{alertstate="firing",alertname=~"Odoo.*",` + byTarget + `}`

// overview has one row per incident, each with its state at a glance.
func overview() *dashboard {
	return &dashboard{
		uid: "odoo-overview", title: "Odoo / Overview", database: true,
		description: "State of every Odoo incident at a glance: one row per incident, red when its alert's threshold is crossed. Each panel links to its runbook.",
		panels: []*panel{
			row("Alerts"),
			stat("Firing Odoo alerts", "short", q(`count(`+firingAlerts+`) or vector(0)`, "")).red(1).width(4),
			(&panel{kind: "table", title: "Firing alerts", unit: "none", w: 20, h: 4,
				targets: []target{q(`max by (alertname, severity, priority, instance, database, name, service, target) (`+firingAlerts+`)`, "")}}),

			row("Bus / longpoll stalls (P0)"),
			stat("Slow bus probes (> 2.5 s, 5m)", "percentunit", q(`max(`+t("odoo:longpoll_probes_slow:ratio_5m")+`)`, "")).red(longpollSlowMax).link("OdooLongpollLatencyHigh"),
			stat("Longpoll probe", "none", q(`min(`+t("odoo_longpoll_up")+`)`, "")).upDown().link("OdooLongpollDown"),
			ts("Longpoll p95 latency (objective 1 s)", "s", q(t("odoo:longpoll_latency_seconds:p95_5m"), "{{instance}}")).red(longpollP95Max).width(16).size(16, 4),

			row("Cron job jam (P1)"),
			stat("Worst cron lag", "s", q(`max(`+db("odoo_cron_lag_max_seconds")+`)`, "")).red(cronLagMax).link("OdooCronStuck"),
			stat("Overdue cron jobs", "short", q(`sum(`+db("odoo_cron_overdue_jobs")+`)`, "")),
			stat("Longest running cron job", "s", q(`max(`+db("odoo_cron_running_max_seconds")+`)`, "")).red(cronRunningMax).link("OdooCronJobRunningTooLong"),
			stat("Failing cron jobs (Odoo 18+)", "short", q(`sum(`+db("odoo_cron_failing_jobs")+`)`, "")).red(failingBundleMax).link("OdooCronFailing"),
			stat("Modules in transition", "short", q(`sum(`+db("odoo_modules_in_transition")+`)`, "")).red(1).link("OdooModulesStuckInTransition"),
			stat("Active cron jobs", "short", q(`sum(`+db("odoo_cron_jobs")+`)`, "")),
			stat("Interrupted cron runs (30m)", "short", q(`sum(increase(`+db("odoo_cron_interrupted_runs_total")+`[30m]))`, "")).red(cronInterrupted).link("OdooCronJobTimeoutLoop"),

			row("Database locks (P1)"),
			stat("PostgreSQL", "none", q(`min(`+t("odoo_pg_up")+`)`, "")).upDown().link("OdooDatabaseDown"),
			stat("Databases up", "none", q(`min(`+db("odoo_database_up")+`)`, "")).upDown().link("OdooDatabaseDown"),
			stat("Longest lock wait", "s", q(`max(`+db("odoo_pg_lock_wait_max_seconds")+`)`, "")).red(lockWaitMax).link("OdooDbLockContention"),
			stat("Deadlocks (last 10 min)", "short", q(`sum(increase(`+db("odoo_pg_deadlocks_total")+`[10m]))`, "")).red(deadlocksMax).link("OdooDbDeadlock"),
			stat("Longest idle transaction", "s", q(`max(`+db("odoo_pg_transaction_max_seconds", `state="idle in transaction"`)+`)`, "")).red(idleInTxMax).link("OdooIdleInTransaction"),
			stat("Longest query", "s", q(`max(`+db("odoo_pg_query_max_seconds")+`)`, "")).red(queryMax).link("OdooLongRunningQuery"),

			row("Memory leak / containers (P2)"),
			stat("Highest memory / limit", "percentunit", q(`max(`+t("odoo:container_memory_working_set:ratio")+`)`, "")).red(memoryRatioMax).link("OdooMemoryLeak"),
			stat("OOM kills (last 15 min)", "short", q(`sum(increase(`+t("odoo_container_oom_events_total")+`[15m])) or vector(0)`, "")).red(1).link("OdooContainerOOMKilled"),
			stat("Most starts (last 15 min)", "short", q(`max(changes(`+t("odoo_container_started_timestamp_seconds")+`[15m]))`, "")).red(restartsMax).link("OdooContainerRestarting"),
			stat("Containers running", "short", q(`sum(`+t("odoo_container_running")+`)`, "")),
			stat("Containers not running", "short", q(`count(`+t("odoo_container_running")+` == 0) or vector(0)`, "")).red(1),
			stat("Containers unhealthy", "short", q(`count(`+t("odoo_container_healthy")+` == 0) or vector(0)`, "")).red(1),

			row("HTTP 502: Odoo or proxy down (P0)"),
			stat("Odoo (direct)", "none", q(`min(`+t("odoo_http_up", `target="direct"`)+`)`, "")).upDown().link("OdooDown"),
			stat("Proxy (public URL)", "none", q(`min(`+t("odoo_http_up", `target="public"`)+`)`, "")).upDown().link("OdooProxyDown"),
			stat("Status (direct)", "none", q(`max(`+t("odoo_http_status_code", `target="direct"`)+`)`, "")),
			stat("Status (public URL)", "none", q(`max(`+t("odoo_http_status_code", `target="public"`)+`)`, "")),
			stat("Response time (direct)", "s", q(`max(`+t("odoo_http_duration_seconds", `target="direct"`)+`)`, "")),
			stat("Response time (public URL)", "s", q(`max(`+t("odoo_http_duration_seconds", `target="public"`)+`)`, "")),

			row("Assets 500 (P1)"),
			stat("Failing asset bundles", "short", q(`sum(`+t("odoo_asset_bundles_failing")+`)`, "")).red(failingBundleMax).link("OdooAssetsBroken"),
			stat("Asset bundles loading", "short", q(`sum(`+t("odoo_asset_bundle_up")+`)`, "")),
			stat("Asset attachments", "short", q(`sum(`+db("odoo_asset_attachments")+`)`, "")),

			row("Exporter health"),
			stat("Exporter scrape", "none", q(`min(`+t("up")+` and on (job, instance) `+t("odoo_exporter_build_info")+`)`, "")).upDown().link("OdooExporterDown"),
			stat("Failing collectors", "short", q(`count(`+t("odoo_exporter_collector_success")+` == 0) or vector(0)`, "")).red(1).link("OdooExporterCollectorFailing"),
			stat("Slowest collector", "s", q(`max(`+t("odoo_exporter_collector_duration_seconds")+`)`, "")),
			(&panel{kind: "table", title: "Exporter version", unit: "none", w: 12, h: 4,
				targets: []target{q(`max by (instance, version, revision, goversion) (`+t("odoo_exporter_build_info")+`)`, "")}}),
		},
	}
}

func dbLocks() *dashboard {
	return &dashboard{
		uid: "odoo-db-locks", title: "Odoo / Database locks", database: true, tags: []string{"postgresql"},
		description: "PostgreSQL activity, lock waits, blockers, deadlocks and long transactions of the Odoo databases.",
		panels: []*panel{
			row("Availability"),
			ts("Database up", "none", q(db("odoo_database_up"), "{{database}}"), q(t("odoo_pg_up"), "server {{instance}}")).upDown().link("OdooDatabaseDown"),
			ts("Connections used", "short",
				q(`sum by (instance) (`+db("odoo_pg_backends")+`)`, "used {{instance}}"),
				q(`max by (instance) (`+t("odoo_pg_connections_max")+`)`, "max_connections {{instance}}")),
			row("Locks"),
			ts("Longest lock wait", "s", q(db("odoo_pg_lock_wait_max_seconds"), "{{database}}")).red(lockWaitMax).link("OdooDbLockContention"),
			ts("Backends waiting on a lock", "short", q(db("odoo_pg_lock_waiting_backends"), "{{database}}")),
			ts("Root blockers", "short", q(db("odoo_pg_blocking_backends"), "{{database}}")),
			ts("Deadlocks per 10 minutes", "short", q(`increase(`+db("odoo_pg_deadlocks_total")+`[10m])`, "{{database}}")).red(deadlocksMax).link("OdooDbDeadlock"),
			row("Activity"),
			ts("Backends by state", "short", q(`sum by (database, state) (`+db("odoo_pg_backends")+`)`, "{{database}} {{state}}")),
			ts("Deadlock rate", "ops", q(`sum by (database) (rate(`+db("odoo_pg_deadlocks_total")+`[`+rate+`]))`, "{{database}}")),
			ts("Oldest idle transaction", "s", q(db("odoo_pg_transaction_max_seconds", `state="idle in transaction"`), "{{database}}")).red(idleInTxMax).link("OdooIdleInTransaction"),
			ts("Oldest active transaction", "s", q(db("odoo_pg_transaction_max_seconds", `state="active"`), "{{database}}")),
			ts("Longest running query", "s", q(db("odoo_pg_query_max_seconds"), "{{database}}")).red(queryMax).link("OdooLongRunningQuery"),
		},
	}
}

func cron() *dashboard {
	return &dashboard{
		uid: "odoo-cron", title: "Odoo / Cron", database: true,
		description: "Odoo scheduled actions (ir_cron): lag of overdue jobs, running jobs, failures (Odoo 18+; invisible from SQL before), triggers and modules blocking the cron runner.",
		panels: []*panel{
			row("Lag"),
			ts("Most overdue job's lag", "s", q(db("odoo_cron_lag_max_seconds"), "{{database}}")).red(cronLagMax).link("OdooCronStuck"),
			ts("Overdue jobs", "short", q(db("odoo_cron_overdue_jobs"), "{{database}}")),
			ts("Lag per job (top 10, --collector.cron.per-job)", "s", q(`topk(10, `+db("odoo_cron_job_lag_seconds")+`)`, "{{database}} {{cron}}")).red(cronLagMax).link("OdooCronStuck"),
			ts("Pending triggers", "short", q(db("odoo_cron_pending_triggers"), "{{database}}")),
			ts("How late runs started (mean over 10m; the seed's increase(odoo_cron_job_age_seconds_sum[10m]) over the runs)", "s",
				q(`increase(`+db("odoo_cron_job_age_seconds_sum")+`[10m]) / increase(`+db("odoo_cron_job_age_seconds_count")+`[10m])`, "{{database}}")),
			ts("Runs completed", "ops", q(`rate(`+db("odoo_cron_job_age_seconds_count")+`[`+rate+`])`, "{{database}}")),
			row("Running jobs"),
			ts("Longest running job", "s", q(db("odoo_cron_running_max_seconds"), "{{database}}")).red(cronRunningMax).link("OdooCronJobRunningTooLong"),
			ts("Running time per job", "s", q(db("odoo_cron_job_running_seconds"), "{{database}} {{cron}}")).red(cronRunningMax).link("OdooCronJobRunningTooLong"),
			ts("Running jobs", "short", q(db("odoo_cron_running_jobs"), "{{database}}")),
			ts("Active jobs", "short", q(db("odoo_cron_jobs"), "{{database}}")),
			ts("Interrupted runs (30m: killed at limit_time_real_cron, terminated)", "short", q(`increase(`+db("odoo_cron_interrupted_runs_total")+`[30m])`, "{{database}}")).red(cronInterrupted).link("OdooCronJobTimeoutLoop"),
			row("Failures and blocked runner"),
			ts("Failing jobs (Odoo 18+)", "short", q(db("odoo_cron_failing_jobs"), "{{database}}")).red(1).link("OdooCronFailing"),
			ts("Modules in transition", "short", q(db("odoo_modules_in_transition"), "{{database}}")).red(1).link("OdooModulesStuckInTransition"),
			(&panel{kind: "table", title: "Odoo versions", unit: "none", w: 24, h: 6,
				targets: []target{q(`max by (instance, database, version, source) (`+db("odoo_version_info")+`)`, "")}}),
		},
	}
}

func bus() *dashboard {
	quantile := func(v float64) target {
		return q(fmt.Sprintf(`histogram_quantile(%g, sum by (job, instance, le) (rate(%s[%s])))`, v, t("odoo_longpoll_latency_seconds_bucket"), rate),
			fmt.Sprintf("p%g {{instance}}", v*100))
	}
	return &dashboard{
		uid: "odoo-bus", title: "Odoo / Bus and longpoll",
		description: "Round trip of a real bus message through Odoo's gevent process (websocket 16.0+, /longpolling/poll before), as measured by the exporter's prober.",
		panels: []*panel{
			row("Latency"),
			ts("Latency quantiles", "s", quantile(0.5), quantile(0.95), quantile(0.99)).red(longpollP95Max),
			ts("p95 over 5 minutes (the seed's objective: 1 s)", "s", q(t("odoo:longpoll_latency_seconds:p95_5m"), "{{instance}}")).red(longpollP95Max),
			ts("Probes slower than 2.5 s, share over 5 minutes (the alert's)", "percentunit", q(t("odoo:longpoll_probes_slow:ratio_5m"), "{{instance}}")).red(longpollSlowMax).link("OdooLongpollLatencyHigh"),
			ts("Mean latency", "s", q(`sum by (instance) (rate(`+t("odoo_longpoll_latency_seconds_sum")+`[`+rate+`])) / sum by (instance) (rate(`+t("odoo_longpoll_latency_seconds_count")+`[`+rate+`]))`, "{{instance}}")),
			ts("Probes per second", "ops", q(`sum by (instance) (rate(`+t("odoo_longpoll_latency_seconds_count")+`[`+rate+`]))`, "{{instance}}")),
			row("Failures"),
			ts("Probe up", "none", q(t("odoo_longpoll_up"), "{{instance}}")).upDown().link("OdooLongpollDown"),
			ts("Probe failures by reason", "ops", q(`sum by (instance, reason) (rate(`+t("odoo_longpoll_probe_failures_total")+`[`+rate+`]))`, "{{instance}} {{reason}}")),
		},
	}
}

func httpAssets() *dashboard {
	return &dashboard{
		uid: "odoo-http", title: "Odoo / HTTP and assets", database: true,
		description: "HTTP probes of Odoo directly and through the public URL (502 diagnosis), and of every asset bundle of the login page (500 on /web/assets).",
		panels: []*panel{
			row("HTTP: direct vs public URL"),
			ts("Probe up (direct: Odoo, public: proxy)", "none", q(t("odoo_http_up", `target="direct"`), "direct {{instance}}")).upDown().link("OdooDown"),
			ts("Public URL up", "none", q(t("odoo_http_up", `target="public"`), "public {{instance}}")).upDown().link("OdooProxyDown"),
			ts("Status code", "none", q(t("odoo_http_status_code"), "{{target}} {{instance}}")),
			ts("Response time", "s", q(t("odoo_http_duration_seconds"), "{{target}} {{instance}}")),
			row("Assets"),
			ts("Failing asset bundles", "short", q(t("odoo_asset_bundles_failing"), "{{instance}}")).red(failingBundleMax).link("OdooAssetsBroken"),
			ts("Asset bundles up", "none", q(t("odoo_asset_bundle_up"), "{{bundle}}")).upDown().link("OdooAssetsBroken"),
			ts("Asset attachments per database", "short", q(db("odoo_asset_attachments"), "{{database}}")),
		},
	}
}

func containers() *dashboard {
	return &dashboard{
		uid: "odoo-containers", title: "Odoo / Containers", tags: []string{"docker"},
		description: "Memory, OOM kills and restarts of the Odoo stack's containers, from the Docker Engine API.",
		panels: []*panel{
			row("Memory"),
			ts("Working set / limit", "percentunit", q(t("odoo:container_memory_working_set:ratio"), "{{name}}")).red(memoryRatioMax).link("OdooMemoryLeak"),
			ts("Working set and limit", "bytes",
				q(t("odoo_container_memory_working_set_bytes"), "{{name}}"),
				q(t("odoo_container_memory_limit_bytes")+` > 0`, "{{name}} limit")).link("OdooMemoryLeak"),
			ts("Working set trend (1 h)", "Bps", q(`deriv(`+t("odoo_container_memory_working_set_bytes")+`[1h])`, "{{name}}")),
			ts("Memory usage (with page cache)", "bytes", q(t("odoo_container_memory_usage_bytes"), "{{name}}")),
			row("Kills and restarts"),
			ts("OOM kills (15 min)", "short", q(`increase(`+t("odoo_container_oom_events_total")+`[15m])`, "{{name}}"), q(t("odoo_container_oom_killed"), "{{name}} OOMKilled")).red(1).link("OdooContainerOOMKilled"),
			ts("Starts in 15 minutes", "short", q(`changes(`+t("odoo_container_started_timestamp_seconds")+`[15m])`, "{{name}}")).red(restartsMax).link("OdooContainerRestarting"),
			ts("Restart count (restart policy; reset by manual restarts)", "short", q(t("odoo_container_restart_count"), "{{name}}")),
			ts("Running and healthy", "none", q(t("odoo_container_running"), "{{name}} running"), q(t("odoo_container_healthy"), "{{name}} healthy")).upDown(),
		},
	}
}
