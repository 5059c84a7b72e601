#!/bin/bash
# What the official postgres image's entrypoint does, as far as deploy/compose/compose.yaml
# relies on it, for the Debian stand-in image (facetoface-test-services: Debian's
# postgresql-15): on an empty data directory, initdb with POSTGRES_USER/POSTGRES_PASSWORD
# (password auth over TCP, SCRAM) and create POSTGRES_DB; then run the command as `postgres`.
set -euo pipefail
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  # setpriv execs (runuser would stay as PID 1 between Docker's stop signal and PostgreSQL).
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH" "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    pg_ctl --silent --wait --options="-c listen_addresses=''" start
    psql --quiet -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
      --command="CREATE DATABASE \"$db\""
    pg_ctl --silent --wait --mode=fast stop
  fi
fi
exec "$@"
