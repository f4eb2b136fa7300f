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
// settings, once per scrape on the reserved connection.
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

func (c *pgCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pgUpDesc
	ch <- pgConnectionsMaxDesc
	ch <- pgServerVersionDesc
}

func (c *pgCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	p, err := clusterSettings(ctx, c.src)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(pgUpDesc, prometheus.GaugeValue, 0)
		var connErr *postgres.ConnectError
		if errors.As(err, &connErr) {
			// The server is down or unreachable: that is the metric, not a
			// failure of the collector.
			return nil
		}
		return err
	}
	ch <- prometheus.MustNewConstMetric(pgUpDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(pgConnectionsMaxDesc, prometheus.GaugeValue, p.maxConnections)
	ch <- prometheus.MustNewConstMetric(pgServerVersionDesc, prometheus.GaugeValue, float64(p.versionNum))
	return nil
}
