package collector

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/postgres"
)

func init() {
	registerCollector("pg_activity", true, func(d Deps) (any, error) {
		if d.PG == nil {
			return nil, nil
		}
		return NewPGActivityCollector(d.PG), nil
	})
}

// PGActivityCollector reads pg_stat_activity: client backends by state, the
// longest transaction per state and the longest running query of each Odoo
// database. It is the runbooks' "count(*), state FROM pg_stat_activity" and
// "long-running queries" checks.
type PGActivityCollector struct {
	src *postgres.Source
}

// NewPGActivityCollector returns a collector reading src.
func NewPGActivityCollector(src *postgres.Source) *PGActivityCollector {
	return &PGActivityCollector{src: src}
}

var (
	pgBackendsDesc = prometheus.NewDesc("odoo_pg_backends",
		"Client backends connected to the database, by pg_stat_activity state.",
		[]string{"database", "state"}, nil)
	pgTransactionMaxDesc = prometheus.NewDesc("odoo_pg_transaction_max_seconds",
		"Age of the oldest open transaction, by backend state (active, idle in transaction); 0 when none.",
		[]string{"database", "state"}, nil)
	pgQueryMaxDesc = prometheus.NewDesc("odoo_pg_query_max_seconds",
		"Run time of the longest running active query; 0 when none.",
		[]string{"database"}, nil)
)

// The states always exposed (with 0), so that alerts and dashboards see a
// series even when no backend is in that state.
var pgStates = []string{"active", "idle", "idle in transaction", "idle in transaction (aborted)"}

// pgActivitySQL groups client backends by database and state. The exporter's
// own sessions are left out. One row per (database, state).
const pgActivitySQL = `SELECT datname, COALESCE(state, 'unknown'), count(*)::float8,
  COALESCE(EXTRACT(EPOCH FROM max(now() - xact_start)), 0)::float8,
  COALESCE(EXTRACT(EPOCH FROM max(now() - query_start) FILTER (WHERE state = 'active')), 0)::float8
FROM pg_catalog.pg_stat_activity
WHERE backend_type = 'client backend' AND datname = ANY($1)
  AND application_name <> 'odoo_exporter'
GROUP BY datname, state`

// Describe implements Collector.
func (c *PGActivityCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pgBackendsDesc
	ch <- pgTransactionMaxDesc
	ch <- pgQueryMaxDesc
}

type activityRow struct {
	backends map[string]float64
	xactMax  map[string]float64
	queryMax float64
}

// Update implements Collector.
func (c *PGActivityCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	dbs, err := c.src.Databases(ctx)
	if err != nil {
		return err
	}
	byDB := make(map[string]*activityRow, len(dbs))
	for _, db := range dbs {
		byDB[db] = &activityRow{backends: map[string]float64{}, xactMax: map[string]float64{}}
	}
	err = c.src.WithConn(ctx, "", func(q postgres.Queryer) error {
		rows, err := q.Query(ctx, pgActivitySQL, dbs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				db, state            string
				n, xactMax, queryMax float64
			)
			if err := rows.Scan(&db, &state, &n, &xactMax, &queryMax); err != nil {
				return err
			}
			r := byDB[db]
			if r == nil {
				continue
			}
			r.backends[state] = n
			r.xactMax[state] = xactMax
			r.queryMax = max(r.queryMax, queryMax)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for db, r := range byDB {
		for _, s := range pgStates {
			if _, ok := r.backends[s]; !ok {
				r.backends[s] = 0
			}
		}
		for s, n := range r.backends {
			ch <- prometheus.MustNewConstMetric(pgBackendsDesc, prometheus.GaugeValue, n, db, s)
		}
		for _, s := range []string{"active", "idle in transaction"} {
			ch <- prometheus.MustNewConstMetric(pgTransactionMaxDesc, prometheus.GaugeValue, r.xactMax[s], db, s)
		}
		ch <- prometheus.MustNewConstMetric(pgQueryMaxDesc, prometheus.GaugeValue, r.queryMax, db)
	}
	return nil
}
