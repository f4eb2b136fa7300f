#!/usr/bin/env bash
# make demo-stop: stops the demo started by make demo (SIGTERM: it stops
# its containers, dockerd, nginx, Prometheus, Alertmanager and PostgreSQL).
set -euo pipefail
dir=${DEMO_DIR:-/tmp/odoo_exporter_demo}
pidfile=$dir/demo.pid
if [ ! -f "$pidfile" ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "demo: not running"
  rm -f "$pidfile"
  exit 0
fi
pid=$(cat "$pidfile")
kill -TERM "$pid"
for _ in $(seq 1 180); do
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$pidfile"
    echo "demo: stopped"
    exit 0
  fi
  sleep 0.5
done
echo "demo: pid $pid still running after 90s; see $dir/demo.log" >&2
exit 1
