#!/usr/bin/env bash
# Installs the Debian packages the tests need, when missing: PostgreSQL
# (ephemeral clusters), Docker's engine (docker.io), nginx, Prometheus
# (promtool, e2e), Alertmanager, a C compiler (go test -race needs cgo),
# busybox-static (the shell of the Odoo stand-in image) and docker-compose
# (1.29: e2e/compose_test.go brings examples/compose up). Safe to run again: it installs only what
# is missing. Needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
have dockerd || need+=(docker.io)
have nginx || [ -x /usr/sbin/nginx ] || need+=(nginx)
have promtool || need+=(prometheus)
have prometheus-alertmanager || need+=(prometheus-alertmanager)
have gcc || need+=(gcc libc6-dev)
[ -x /bin/busybox ] || have busybox || need+=(busybox-static)
have docker-compose || need+=(docker-compose)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-deps: all test dependencies present"
  exit 0
fi
echo "install-deps: installing ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if have sudo; then SUDO=sudo; else
    echo "install-deps: missing ${need[*]} and not root: install them, then run make test again" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
  echo "install-deps: apt-get update failed: cannot install ${need[*]}" >&2
  exit 1
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/tmp/install-deps.log 2>&1; then
  echo "install-deps: apt-get install ${need[*]} failed; last lines:" >&2
  tail -20 /tmp/install-deps.log >&2
  exit 1
fi
# Debian starts services on install; the tests start their own instances.
for svc in nginx prometheus prometheus-alertmanager docker; do
  $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true
done
echo "install-deps: done"
