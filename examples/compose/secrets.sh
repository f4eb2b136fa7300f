#!/bin/sh
# Creates the secret files of docker-compose.monitoring.yml that do not
# exist yet, in examples/compose/secrets/ (mode 0700; files 0444 so that the
# containers' non-root users can read their bind mounts):
#   db_admin_password       the password of ODOO_DB_ADMIN_USER (default odoo),
#                           the superuser the one-shot init step connects as:
#                           taken from $ODOO_DB_ADMIN_PASSWORD, else "odoo"
#                           (the POSTGRES_PASSWORD of Odoo's Compose example)
#   exporter_pg_password    random: the odoo_exporter role
#   healer_pg_password      random: the odoo_healer role
#   healer_token            random: Alertmanager -> odoo_healer bearer token
#   grafana_admin_password  random: Grafana's admin user
set -eu
dir=$(dirname "$0")/secrets
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
put() {
  if [ -s "$dir/$1" ]; then
    echo "secrets.sh: $dir/$1 kept"
    return
  fi
  printf '%s\n' "$2" > "$dir/$1"
  chmod 0444 "$dir/$1"
  echo "secrets.sh: $dir/$1 written"
}
put db_admin_password "${ODOO_DB_ADMIN_PASSWORD:-odoo}"
put exporter_pg_password "$(rand)"
put healer_pg_password "$(rand)"
put healer_token "$(rand)"
put grafana_admin_password "$(rand)"
