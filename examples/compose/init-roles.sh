#!/bin/sh
# One-shot init of docker-compose.monitoring.yml: creates (or updates) the
# least-privilege PostgreSQL roles of the exporter and the healer (README:
# "Least privilege", docs/healer.md) with the passwords of the Compose
# secrets, grants them the few tables they read or change in every Odoo
# database of the cluster, and lets the healer (user 65534) write its state
# volume. Idempotent: run it again after creating a database
# (docker compose ... run --rm odoo-monitoring-init).
#
# Needs sh and psql (postgres:16-alpine); connects as $PGUSER (a superuser,
# or a role with CREATEROLE that may grant pg_monitor, pg_signal_backend and
# the tables) with the password of the secret odoo_db_admin_password.
set -eu

secret() { tr -d '\r\n' < "/run/secrets/$1"; }
PGPASSWORD=$(secret odoo_db_admin_password)
export PGPASSWORD
app_role=${ODOO_APP_ROLE:-odoo}

i=0
until psql -Atqc 'SELECT 1' >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge 60 ]; then
    echo "odoo-monitoring-init: PostgreSQL at $PGHOST:$PGPORT does not answer as $PGUSER:" >&2
    psql -Atqc 'SELECT 1' >&2 || true
    exit 1
  fi
  sleep 2
done

# Roles: created once, passwords set from the secrets every run.
psql -v ON_ERROR_STOP=1 -Aq \
  -v exporter_pw="$(secret odoo_exporter_pg_password)" \
  -v healer_pw="$(secret odoo_healer_pg_password)" <<'SQL'
SELECT 'CREATE ROLE odoo_exporter LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'odoo_exporter') \gexec
SELECT 'CREATE ROLE odoo_healer LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'odoo_healer') \gexec
ALTER ROLE odoo_exporter PASSWORD :'exporter_pw';
ALTER ROLE odoo_healer PASSWORD :'healer_pw';
GRANT pg_monitor TO odoo_exporter;
GRANT pg_signal_backend, pg_monitor TO odoo_healer;
SQL

# Every Odoo database (one with ir_module_module) of the cluster.
n=0
for db in $(psql -Atqc "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate AND datname <> 'postgres' ORDER BY 1"); do
  if [ "$(psql -d "$db" -Atqc "SELECT to_regclass('public.ir_module_module') IS NOT NULL")" != t ]; then
    continue
  fi
  psql -d "$db" -v ON_ERROR_STOP=1 -Aq <<'SQL'
GRANT SELECT ON ir_cron, ir_cron_trigger, ir_module_module, ir_attachment TO odoo_exporter;
SELECT 'GRANT SELECT ON ir_cron_progress TO odoo_exporter' WHERE to_regclass('public.ir_cron_progress') IS NOT NULL \gexec
GRANT SELECT ON ir_cron TO odoo_healer;
GRANT SELECT, DELETE ON ir_attachment TO odoo_healer;
GRANT SELECT, UPDATE (state) ON ir_module_module TO odoo_healer;
SQL
  echo "odoo-monitoring-init: granted odoo_exporter and odoo_healer in database $db"
  n=$((n + 1))
done
if [ "$n" -eq 0 ]; then
  echo "odoo-monitoring-init: no Odoo database yet: run this service again once one exists" >&2
fi
echo "odoo-monitoring-init: Odoo's role is $app_role (the healer's rules act on its sessions only)"

# The healer runs as nobody: its --state.file lives in this volume.
chown 65534 /healer-data
chmod 0700 /healer-data
echo "odoo-monitoring-init: done"
