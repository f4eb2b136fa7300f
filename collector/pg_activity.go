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

// PGActivityCollector reads pg_stat_activity (from the scrape's snapshot):
// client backends by state, the longest transaction per state and the
// longest running query of each Odoo database. It is the runbooks'
// "count(*), state FROM pg_stat_activity" and "long-running queries"
// checks.
type PGActivityCollector struct {
	src *postgres.Source
}

// NewPGActivityCollector returns a collector reading src.
func NewPGActivityCollector(src *postgres.Source) *PGActivityCollector {
	return &PGActivityCollector{src: src}
}

var (
	pgBackendsDesc = prometheus.NewDesc("odoo_pg_backends",
		"Client backends connected to the database, by pg_stat_activity state (the exporter's own sessions left out).",
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
	snap, err := ClusterSnapshot(ctx, c.src)
	if err != nil {
		return err
	}
	byDB := make(map[string]*activityRow, len(snap.Databases))
	for _, db := range snap.Databases {
		r := &activityRow{backends: map[string]float64{}, xactMax: map[string]float64{}}
		for _, s := range pgStates {
			r.backends[s] = 0
		}
		r.backends["idle"] = snap.Idle[db]
		byDB[db] = r
	}
	for _, b := range snap.Backends {
		r := byDB[b.Database]
		if r == nil {
			continue
		}
		state := b.State
		if state == "" {
			state = "unknown"
		}
		r.backends[state]++
		r.xactMax[state] = max(r.xactMax[state], snap.Age(b.XactStart))
		if state == "active" {
			r.queryMax = max(r.queryMax, snap.Age(b.QueryStart))
		}
	}
	for db, r := range byDB {
		for s, n := range r.backends {
			ch <- prometheus.MustNewConstMetric(pgBackendsDesc, prometheus.GaugeValue, n, db, s)
		}
		for _, s := range []string{"active", "idle in transaction"} {
			ch <- prometheus.MustNewConstMetric(pgTransactionMaxDesc, prometheus.GaugeValue, r.xactMax[s], db, s)
		}
		ch <- prometheus.MustNewConstMetric(pgQueryMaxDesc, prometheus.GaugeValue, r.queryMax, db)
	}
	// A discovery that failed is a failure, after the databases known.
	return snap.DatabasesErr
}
