package collector

import (
	"context"

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

// PGLocksCollector reads lock waits (pg_locks), the sessions at the root
// of each wait queue (pg_blocking_pids) and the deadlock counter
// (pg_stat_database) of each Odoo database, from the scrape's snapshot: the
// runbook's "Database Deadlock" checks.
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
		"Root blockers: distinct backends that block a waiting backend of the database and do not wait themselves (pg_blocking_pids less the waiters queued ahead).",
		[]string{"database"}, nil)
	pgDeadlocksDesc = prometheus.NewDesc("odoo_pg_deadlocks_total",
		"Deadlocks detected in the database since the statistics were reset (pg_stat_database.deadlocks).",
		[]string{"database"}, nil)
)

// Describe implements Collector.
func (c *PGLocksCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pgLockWaitingDesc
	ch <- pgLockWaitMaxDesc
	ch <- pgBlockingDesc
	ch <- pgDeadlocksDesc
}

type locksRow struct {
	waiting, waitMax float64
	roots            map[int32]bool
}

// Update implements Collector.
func (c *PGLocksCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	snap, err := ClusterSnapshot(ctx, c.src)
	if err != nil {
		return err
	}
	byDB := make(map[string]*locksRow, len(snap.Databases))
	for _, db := range snap.Databases {
		byDB[db] = &locksRow{roots: map[int32]bool{}}
	}
	for _, b := range snap.Backends {
		r := byDB[b.Database]
		if r == nil || !b.Waiting {
			continue
		}
		r.waiting++
		r.waitMax = max(r.waitMax, snap.Age(b.WaitStart))
		for _, pid := range b.RootBlockers {
			r.roots[pid] = true
		}
	}
	for db, r := range byDB {
		if n, ok := snap.Deadlocks[db]; ok {
			ch <- prometheus.MustNewConstMetric(pgDeadlocksDesc, prometheus.CounterValue, n, db)
		}
		ch <- prometheus.MustNewConstMetric(pgLockWaitingDesc, prometheus.GaugeValue, r.waiting, db)
		ch <- prometheus.MustNewConstMetric(pgLockWaitMaxDesc, prometheus.GaugeValue, r.waitMax, db)
		ch <- prometheus.MustNewConstMetric(pgBlockingDesc, prometheus.GaugeValue, float64(len(r.roots)), db)
	}
	return snap.DatabasesErr
}
