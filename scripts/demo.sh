#!/usr/bin/env bash
# make demo: starts the end-to-end stack (e2e/cmd/demo) in the background
# and prints its URLs. Needs root (dockerd) and the packages of
# scripts/install-deps.sh. DEMO_DIR (default /tmp/odoo_exporter_demo)
# holds its files; DEMO_FOR_MAX caps the alerts' "for" (default 30s,
# "shipped" keeps the rule pack's durations); DEMO_LONGPOLL_INTERVAL the
# bus prober's interval (default 1s, "shipped" the exporter's 15s: the
# interval the alerts are judged against); DEMO_ODOO_VERSION the Odoo
# series imitated (16.0, 17.0, default 18.0).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DEMO_DIR:-/tmp/odoo_exporter_demo}
pidfile=$dir/demo.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "demo: already running (pid $(cat "$pidfile")); make demo-stop first to restart it"
  cat "$dir/urls.txt" 2>/dev/null || true
  exit 0
fi
start=$(date +%s)
rm -rf "$dir"
mkdir -p "$dir"
go build -o "$dir/demo" ./e2e/cmd/demo
# setsid: the demo outlives this shell; it stops on SIGTERM (make demo-stop).
setsid "$dir/demo" -dir "$dir" -for-max "${DEMO_FOR_MAX:-30s}" -version "${DEMO_ODOO_VERSION:-18.0}" -longpoll-interval "${DEMO_LONGPOLL_INTERVAL:-1s}" >"$dir/demo.log" 2>&1 </dev/null &
echo $! >"$pidfile"
for _ in $(seq 1 240); do
  if [ -f "$dir/urls.txt" ]; then
    cat "$dir/urls.txt"
    echo
    echo "(up in $(($(date +%s) - start))s; log: $dir/demo.log)"
    exit 0
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "demo: failed to start; last lines of $dir/demo.log:" >&2
    tail -30 "$dir/demo.log" >&2
    rm -f "$pidfile"
    exit 1
  fi
  sleep 0.5
done
echo "demo: not up after 120s; see $dir/demo.log" >&2
exit 1
