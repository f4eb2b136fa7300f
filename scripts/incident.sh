#!/usr/bin/env bash
# make incident NAME=...: injects an incident into the running demo.
set -euo pipefail
dir=${DEMO_DIR:-/tmp/odoo_exporter_demo}
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: make incident NAME=<lock-contention|cron-jam|longpoll-stall|assets-broken|module-stuck|oom|proxy-down|odoo-down|fix>" >&2
  exit 2
fi
if [ ! -x "$dir/demo" ]; then
  echo "incident: no demo in $dir (run make demo first)" >&2
  exit 1
fi
exec "$dir/demo" -dir "$dir" -incident "$1"
