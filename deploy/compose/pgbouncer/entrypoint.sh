#!/bin/sh
# Writes PgBouncer's configuration from the environment, then runs it in the foreground.
#   DB_HOST, DB_PORT, DB_NAME    the PostgreSQL server and database (default postgres:5432/facetoface)
#   APP_DB_USER, APP_DB_PASSWORD the only login it accepts and forwards (the service's role)
#   LISTEN_ADDR, LISTEN_PORT     where it listens (default 0.0.0.0:6432)
set -eu
: "${DB_HOST:=postgres}" "${DB_PORT:=5432}" "${DB_NAME:=facetoface}"
: "${APP_DB_USER:=facetoface_app}" "${LISTEN_ADDR:=0.0.0.0}" "${LISTEN_PORT:=6432}"
: "${APP_DB_PASSWORD:?APP_DB_PASSWORD is required}"
umask 077
dir=/run/pgbouncer
cat >"$dir/pgbouncer.ini" <<INI
[databases]
${DB_NAME} = host=${DB_HOST} port=${DB_PORT} dbname=${DB_NAME}

[pgbouncer]
listen_addr = ${LISTEN_ADDR}
listen_port = ${LISTEN_PORT}
unix_socket_dir =
; Transaction pooling: the service sends each transaction as one message and keeps no
; session state (DB_POOLER_MODE=transaction).
pool_mode = transaction
; SCRAM both ways: clients prove the password to PgBouncer, PgBouncer to PostgreSQL.
auth_type = scram-sha-256
auth_file = ${dir}/userlist.txt
max_client_conn = 1000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,application_name
INI
# userlist.txt quotes with "", doubling any " inside.
escaped=$(printf '%s' "$APP_DB_PASSWORD" | sed 's/"/""/g')
printf '"%s" "%s"\n' "$APP_DB_USER" "$escaped" >"$dir/userlist.txt"
exec pgbouncer "$dir/pgbouncer.ini"
