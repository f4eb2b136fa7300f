package collector

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/postgres"
)

func init() {
	registerCollector("pg", true, func(d Deps) (any, error) {
		if d.PG == nil {
			return nil, nil
		}
		return &pgCollector{src: d.PG}, nil
	})
}

// pgCollector tells whether the cluster answers and reads cluster-wide
// settings.
type pgCollector struct {
	src *postgres.Source
}

var (
	pgUpDesc = prometheus.NewDesc("odoo_pg_up",
		"Whether the PostgreSQL server answered a query in this scrape (1) or not (0).", nil, nil)
	pgConnectionsMaxDesc = prometheus.NewDesc("odoo_pg_connections_max",
		"The server's max_connections setting.", nil, nil)
	pgServerVersionDesc = prometheus.NewDesc("odoo_pg_server_version_num",
		"The server's version as an integer (server_version_num).", nil, nil)
)

const pgSettingsSQL = `SELECT current_setting('max_connections')::float8,
current_setting('server_version_num')::float8`

func (c *pgCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pgUpDesc
	ch <- pgConnectionsMaxDesc
	ch <- pgServerVersionDesc
}

func (c *pgCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	var maxConns, versionNum float64
	err := c.src.WithConn(ctx, "", func(q postgres.Queryer) error {
		return q.QueryRow(ctx, pgSettingsSQL).Scan(&maxConns, &versionNum)
	})
	var connErr *postgres.ConnectError
	if errors.As(err, &connErr) {
		// The server is down or unreachable: that is the metric, not a
		// failure of the collector.
		ch <- prometheus.MustNewConstMetric(pgUpDesc, prometheus.GaugeValue, 0)
		return nil
	}
	if err != nil {
		ch <- prometheus.MustNewConstMetric(pgUpDesc, prometheus.GaugeValue, 0)
		return err
	}
	ch <- prometheus.MustNewConstMetric(pgUpDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(pgConnectionsMaxDesc, prometheus.GaugeValue, maxConns)
	ch <- prometheus.MustNewConstMetric(pgServerVersionDesc, prometheus.GaugeValue, versionNum)
	return nil
}
