package collector

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/postgres"
)

func init() {
	registerCollector("asset_attachments", true, func(Deps) (any, error) {
		return AssetAttachmentsCollector{}, nil
	})
}

// AssetAttachmentsCollector counts the compiled asset bundles stored as
// ir_attachment rows of each database (url LIKE '/web/assets/%'). The
// runbook's quick fix for a 500 on /web/assets deletes them; the count
// drops to 0 and climbs again as Odoo rebuilds the bundles.
type AssetAttachmentsCollector struct{}

var assetAttachmentsDesc = prometheus.NewDesc("odoo_asset_attachments",
	"ir_attachment rows holding compiled asset bundles (url LIKE '/web/assets/%').",
	[]string{"database"}, nil)

// Describe implements DatabaseCollector.
func (AssetAttachmentsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- assetAttachmentsDesc }

// UpdateDatabase implements DatabaseCollector.
func (AssetAttachmentsCollector) UpdateDatabase(ctx context.Context, q postgres.Queryer, db string, ch chan<- prometheus.Metric) error {
	var n float64
	if err := q.QueryRow(ctx, `SELECT count(*)::float8 FROM ir_attachment WHERE url LIKE '/web/assets/%'`).Scan(&n); err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(assetAttachmentsDesc, prometheus.GaugeValue, n, db)
	return nil
}
