package collector

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/postgres"
)

func init() {
	registerCollector("pg_locks", true, func(d Deps) (any, error) {
		if d.PG == nil {
			return nil, nil
		}
		return NewPGLocksCollector(d.PG), nil
	})
}

// PGLocksCollector reads lock waits (pg_locks), the backends that block
// them (pg_blocking_pids) and the deadlock counter (pg_stat_database) of
// each Odoo database: the runbook's "Database Deadlock" checks.
type PGLocksCollector struct {
	src *postgres.Source
}

// NewPGLocksCollector returns a collector reading src.
func NewPGLocksCollector(src *postgres.Source) *PGLocksCollector {
	return &PGLocksCollector{src: src}
}

var (
	pgLockWaitingDesc = prometheus.NewDesc("odoo_pg_lock_waiting_backends",
		"Backends waiting for a lock (a row of pg_locks not granted).",
		[]string{"database"}, nil)
	pgLockWaitMaxDesc = prometheus.NewDesc("odoo_pg_lock_wait_max_seconds",
		"Longest current lock wait (pg_locks.waitstart); 0 when none.",
		[]string{"database"}, nil)
	pgBlockingDesc = prometheus.NewDesc("odoo_pg_blocking_backends",
		"Distinct backends blocking at least one waiting backend (pg_blocking_pids).",
		[]string{"database"}, nil)
	pgDeadlocksDesc = prometheus.NewDesc("odoo_pg_deadlocks_total",
		"Deadlocks detected in the database since the statistics were reset (pg_stat_database.deadlocks).",
		[]string{"database"}, nil)
)

// pgLocksSQL reads, per database, the waiting backends and their blockers.
// pg_blocking_pids() briefly takes the lock manager's partition locks, so it
// is called only for backends that wait, once per scrape.
// pg_locks.waitstart exists from PostgreSQL 14; on older servers the
// backend's state_change (the wait began with the statement) stands in.
const pgLocksSQL = `WITH waiting AS (
  SELECT a.datname, a.pid, min(%s) AS waitstart
  FROM pg_catalog.pg_locks l
  JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
  WHERE NOT l.granted AND a.datname = ANY($1)
  GROUP BY a.datname, a.pid
), blockers AS (
  SELECT w.datname, count(DISTINCT b)::float8 AS n
  FROM waiting w, unnest(pg_catalog.pg_blocking_pids(w.pid)) AS b
  GROUP BY w.datname
)
SELECT d.datname, d.deadlocks::float8,
  (SELECT count(*) FROM waiting w WHERE w.datname = d.datname)::float8,
  COALESCE((SELECT EXTRACT(EPOCH FROM now() - min(w.waitstart)) FROM waiting w WHERE w.datname = d.datname), 0)::float8,
  COALESCE((SELECT n FROM blockers b WHERE b.datname = d.datname), 0)
FROM pg_catalog.pg_stat_database d
WHERE d.datname = ANY($1)`

// Describe implements Collector.
func (c *PGLocksCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pgLockWaitingDesc
	ch <- pgLockWaitMaxDesc
	ch <- pgBlockingDesc
	ch <- pgDeadlocksDesc
}

// Update implements Collector.
func (c *PGLocksCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	dbs, err := c.src.Databases(ctx)
	if err != nil {
		return err
	}
	return c.src.WithConn(ctx, "", func(q postgres.Queryer) error {
		var version int
		if err := q.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
			return err
		}
		waitstart := "COALESCE(l.waitstart, a.state_change)"
		if version < 140000 {
			waitstart = "a.state_change"
		}
		rows, err := q.Query(ctx, fmt.Sprintf(pgLocksSQL, waitstart), dbs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				db                                  string
				deadlocks, waiting, waitMax, blocks float64
			)
			if err := rows.Scan(&db, &deadlocks, &waiting, &waitMax, &blocks); err != nil {
				return err
			}
			ch <- prometheus.MustNewConstMetric(pgDeadlocksDesc, prometheus.CounterValue, deadlocks, db)
			ch <- prometheus.MustNewConstMetric(pgLockWaitingDesc, prometheus.GaugeValue, waiting, db)
			ch <- prometheus.MustNewConstMetric(pgLockWaitMaxDesc, prometheus.GaugeValue, waitMax, db)
			ch <- prometheus.MustNewConstMetric(pgBlockingDesc, prometheus.GaugeValue, blocks, db)
		}
		return rows.Err()
	})
}
