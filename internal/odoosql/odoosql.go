// Package odoosql holds the SQL that recognises Odoo's own sessions in
// pg_stat_activity, shared by the exporter's collectors and the healer's
// actions so that what one reports is what the other acts on.
package odoosql

// CronWorkerStatement is true when the last statement of the
// pg_stat_activity row aliased "a" is Odoo's cron worker taking a job:
// SELECT ... FROM ir_cron ... FOR NO KEY UPDATE (FOR UPDATE in 14.0). The
// worker's lock session keeps that statement, idle in transaction, while
// the job runs in a second cursor.
const CronWorkerStatement = `(a.query ~* 'from\s+"?ir_cron\M' AND a.query ~* 'for\s+(no\s+key\s+)?update')`
