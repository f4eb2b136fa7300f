package main

// Thresholds of the process alerts (rules/alerts_odoo.yml, group
// odoo.process).
const (
	replacementsMax     = 6   // OdooWorkersRecycledOften, per hour
	masterStartsMax     = 3   // OdooMasterRestarting, per hour
	memorySoftRatioMax  = 0.9 // OdooWorkerMemoryNearLimit
	processesDashboard  = "odoo-processes"
	processKindsWorkers = `kind=~"http|cron|gevent"`
)

// processes is the dashboard of Odoo's processes (odoo_process collector):
// per kind (master, http, cron, gevent), on the host or per container.
func processes() *dashboard {
	return &dashboard{
		uid: processesDashboard, title: "Odoo / Processes", tags: []string{"processes"},
		description: "Odoo's prefork processes by kind (master, HTTP workers, cron workers, gevent), read by the odoo_process collector from /proc on the host or from Docker's container top: counts against the configuration, worker replacements, memory against limit_memory_soft (virtual memory, as Odoo measures it), master starts.",
		panels: []*panel{
			row("Processes"),
			ts("Processes by kind and configured count", "short",
				q(t("odoo_processes"), "{{name}} {{kind}}"),
				q(t("odoo_process_expected"), "{{name}} {{kind}} configured")).link("OdooProcessMissing"),
			ts("Worker replacements (1 h)", "short",
				q(`increase(`+t("odoo_process_replacements_total", processKindsWorkers)+`[1h])`, "{{name}} {{kind}}")).
				red(replacementsMax).link("OdooWorkersRecycledOften"),
			ts("Youngest process age", "s", q(t("odoo_process_youngest_age_seconds", processKindsWorkers), "{{name}} {{kind}}")),
			ts("Oldest process age", "s", q(t("odoo_process_oldest_age_seconds"), "{{name}} {{kind}}")),
			row("Memory"),
			ts("Largest virtual memory / limit_memory_soft", "percentunit",
				q(t("odoo_process_virtual_memory_max_bytes", processKindsWorkers)+` / on (job, instance, name, kind) (`+t("odoo_process_limit_memory_soft_bytes")+` > 0)`, "{{name}} {{kind}}")).
				red(memorySoftRatioMax).link("OdooWorkerMemoryNearLimit"),
			ts("Resident memory by kind (sum)", "bytes", q(t("odoo_process_resident_memory_bytes"), "{{name}} {{kind}}")),
			ts("Largest process resident memory", "bytes", q(t("odoo_process_resident_memory_max_bytes"), "{{name}} {{kind}}")),
			ts("Largest process virtual memory", "bytes",
				q(t("odoo_process_virtual_memory_max_bytes"), "{{name}} {{kind}}"),
				q(t("odoo_process_limit_memory_soft_bytes", `kind="http"`)+` > 0`, "{{name}} limit_memory_soft")),
			row("Master"),
			ts("Master starts (1 h)", "short", q(`increase(`+t("odoo_process_master_starts_total")+`[1h])`, "{{name}}")).
				red(masterStartsMax).link("OdooMasterRestarting"),
			ts("Process list read", "none", q(t("odoo_process_list_up"), "{{name}}")).upDown(),
		},
	}
}
