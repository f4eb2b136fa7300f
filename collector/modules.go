package collector

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/postgres"
)

func init() {
	registerCollector("modules", true, func(Deps) (any, error) {
		return ModulesCollector{}, nil
	})
}

// ModulesCollector reads ir_module_module of each database: the Odoo
// version (base module) and the modules left in a 'to install', 'to
// upgrade' or 'to remove' state. While any module is in such a state Odoo's
// cron runner skips the whole database (ir_cron._check_modules_state), so
// every cron silently stalls until it is fixed or, after 5 hours, Odoo
// resets the states itself.
type ModulesCollector struct{}

var (
	modulesInTransitionDesc = prometheus.NewDesc("odoo_modules_in_transition",
		"Modules whose state is 'to install', 'to upgrade' or 'to remove'; while above 0, Odoo runs no cron job of the database.",
		[]string{"database"}, nil)
	versionInfoDesc = prometheus.NewDesc("odoo_version_info",
		"Odoo version, always 1: from the base module's latest_version (source=\"database\") or /web/webclient/version_info (source=\"http\").",
		[]string{"database", "version", "source"}, nil)
)

const modulesSQL = `SELECT
  (SELECT count(*) FROM ir_module_module WHERE state LIKE 'to %')::float8,
  COALESCE((SELECT latest_version FROM ir_module_module WHERE name = 'base'), '')`

// Describe implements DatabaseCollector.
func (ModulesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- modulesInTransitionDesc
	ch <- versionInfoDesc
}

// UpdateDatabase implements DatabaseCollector.
func (ModulesCollector) UpdateDatabase(ctx context.Context, q postgres.Queryer, db string, ch chan<- prometheus.Metric) error {
	var (
		transition float64
		version    string
	)
	if err := q.QueryRow(ctx, modulesSQL).Scan(&transition, &version); err != nil {
		return fmt.Errorf("reading ir_module_module: %w", err)
	}
	ch <- prometheus.MustNewConstMetric(modulesInTransitionDesc, prometheus.GaugeValue, transition, db)
	if version != "" {
		ch <- prometheus.MustNewConstMetric(versionInfoDesc, prometheus.GaugeValue, 1, db, version, "database")
	}
	return nil
}
