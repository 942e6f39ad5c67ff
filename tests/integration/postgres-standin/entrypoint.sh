#!/bin/sh
set -eu
D="$PGDATA"
if [ ! -s "$D/PG_VERSION" ]; then
  # shellcheck disable=SC2086
  initdb -D "$D" -U postgres ${POSTGRES_INITDB_ARGS:-} >/dev/null
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$D/pg_hba.conf"
  pg_ctl -D "$D" -o "-c listen_addresses=''" -w start >/dev/null
  psql -v ON_ERROR_STOP=1 -U postgres -q <<SQL
CREATE USER "${POSTGRES_USER:-postgres}" PASSWORD '${POSTGRES_PASSWORD}';
CREATE DATABASE "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" OWNER "${POSTGRES_USER:-postgres}";
SQL
  pg_ctl -D "$D" -m fast -w stop >/dev/null
fi
exec postgres -D "$D" -c listen_addresses='*'
