// Package odoosql holds the SQL that recognises Odoo's own sessions and
// locks, shared by the exporter's collectors and the healer's actions so
// that what one reports is what the other acts on.
package odoosql

// CronWorkerStatement is true when the last statement of the
// pg_stat_activity row aliased "a" is Odoo's cron worker taking a job:
// SELECT ... FROM ir_cron ... FOR NO KEY UPDATE (FOR UPDATE in 14.0). The
// worker's lock session keeps that statement, idle in transaction, while
// the job runs in a second cursor. It depends on the query text, which
// track_activity_query_size may cut (Odoo 18's statement puts FOR NO KEY
// UPDATE at byte 806): it is evidence, never the only one.
const CronWorkerStatement = `(a.query ~* 'from\s+"?ir_cron\M' AND a.query ~* 'for\s+(no\s+key\s+)?update')`

// CronRowUpdateHolders is an SQL expression of type text[] on the ir_cron
// row aliased "c" and ir_cron's pg_class row aliased "r": the transaction
// ids that hold the row locked in an update mode (FOR NO KEY UPDATE, FOR
// UPDATE, or an update), read from a multixact xmax with
// pg_get_multixact_members. Odoo's cron worker holds its job's row FOR NO
// KEY UPDATE; when another transaction also share-locks the row (the job's
// own cursor inserting ir_cron_progress rows in 18.0, an ir_cron_trigger
// insert), xmax is a multixact whose members say who holds which mode, so
// the job is found without reading any query text. A KEY SHARE member (a
// foreign key check) is left out.
//
// It is empty when xmax is not a multixact: a value is asked about only
// when it lies between the table's oldest multixact (relminmxid) and the
// next one (mxid_age), so pg_get_multixact_members never fails on a plain
// transaction id. A plain xmax is the holder's own transaction id (see
// CronRowXmax).
const CronRowUpdateHolders = `CASE WHEN c.xmax <> '0'::xid AND mxid_age(c.xmax) > 0 AND mxid_age(c.xmax) <= mxid_age(r.relminmxid)
  THEN ARRAY(SELECT m.xid::text FROM pg_catalog.pg_get_multixact_members(c.xmax) m
    WHERE m.mode IN ('fornokeyupd', 'forupd', 'nokeyupd', 'upd'))
  ELSE '{}'::text[] END`

// CronClass is the FROM item that CronRowUpdateHolders needs: ir_cron's
// pg_class row, aliased "r".
const CronClass = `pg_catalog.pg_class r`

// CronClassCond joins CronClass to ir_cron.
const CronClassCond = `r.oid = 'ir_cron'::regclass`
