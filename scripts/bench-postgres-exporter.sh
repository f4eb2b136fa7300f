#!/bin/sh
# Side-by-side benchmark of odoo_exporter and Debian's postgres_exporter
# (prometheus-postgres-exporter, 0.11 on Debian 12) on the same throw-away
# PostgreSQL cluster: scrape latency, exporter CPU and sessions opened per
# scrape, for one Odoo database (README setups), 200 databases and 1000
# backends. Figures: docs/benchmarks.md. SIDE_BY_SIDE_SCRAPES (40) scrapes
# of each exporter, alternated; CASE narrows the cases (a -bench pattern
# part, e.g. CASE=200-databases).
set -eu
cd "$(dirname "$0")/.."
if ! command -v prometheus-postgres-exporter >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "prometheus-postgres-exporter is missing: run as root or install it" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-postgres-exporter
fi
make build
POSTGRES_EXPORTER=$(command -v prometheus-postgres-exporter) \
ODOO_EXPORTER_BIN=$PWD/bin/odoo_exporter \
	go test -run '^$' -bench "SideBySide/${CASE:-}" -benchtime 1x -timeout 60m ./internal/sidebyside/ | tee bench-side-by-side.txt
