// Package sidebyside holds a benchmark of odoo_exporter against Debian's
// prometheus-postgres-exporter (postgres_exporter 0.11) on the same
// PostgreSQL cluster, scraped alternately over HTTP: scrape latency,
// exporter CPU and PostgreSQL sessions opened per scrape. Run it with
// scripts/bench-postgres-exporter.sh (it installs the package).
package sidebyside
