#!/usr/bin/env bash
# Shared helpers: a PostgreSQL 15 cluster of the project's own (own port and socket directory,
# run as the postgres user, since PostgreSQL refuses root), the extension build, throwaway databases.
# Source it; it defines functions and the PIPETRAK_* settings.

PIPETRAK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PIPETRAK_PORT=${PIPETRAK_PORT:-54329}
PIPETRAK_HOME=${PIPETRAK_HOME:-/var/tmp/pipetrak}
PIPETRAK_SOCKET=$PIPETRAK_HOME/socket
PIPETRAK_PGDATA=$PIPETRAK_HOME/pgdata
PG_BIN=/usr/lib/postgresql/15/bin
export PGHOST=$PIPETRAK_SOCKET PGPORT=$PIPETRAK_PORT PGUSER=postgres PGOPTIONS="-c client_min_messages=warning"

as_postgres() { sudo -u postgres "$@"; }

# Creates the cluster once and starts it when it is not running.
cluster_start() {
  mkdir -p "$PIPETRAK_HOME" "$PIPETRAK_SOCKET"
  chown postgres:postgres "$PIPETRAK_HOME" "$PIPETRAK_SOCKET"
  if [ ! -f "$PIPETRAK_PGDATA/PG_VERSION" ]; then
    as_postgres "$PG_BIN/initdb" -D "$PIPETRAK_PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PIPETRAK_PGDATA/postgresql.conf" <<CONF
port = $PIPETRAK_PORT
unix_socket_directories = '$PIPETRAK_SOCKET'
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 1GB
work_mem = 16MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
CONF
  fi
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$PIPETRAK_PGDATA" status >/dev/null 2>&1; then
    as_postgres "$PG_BIN/pg_ctl" -D "$PIPETRAK_PGDATA" -l "$PIPETRAK_HOME/postgres.log" -w start >/dev/null
  fi
}

# Builds the extension and installs it into the system PostgreSQL 15.
extension_install() {
  (cd "$PIPETRAK_ROOT" && cargo pgrx install --release --pg-config "$PG_BIN/pg_config" >/dev/null)
}

# (Re)creates database $1 with the PostgREST roles and the extension (plus pgTAP when $2 = with-pgtap).
database_create() {
  local db=$1
  psql -qX -d postgres -v ON_ERROR_STOP=1 <<SQL >/dev/null
select pg_terminate_backend(pid) from pg_stat_activity where datname = '$db' and pid <> pg_backend_pid();
drop database if exists "$db";
create database "$db";
select format('create role %I nologin noinherit%s', r, case when r = 'service_role' then ' bypassrls' else '' end)
from unnest(array['anon', 'authenticated', 'service_role']) r
where not exists (select from pg_roles where rolname = r) \gexec
select 'create role authenticator login noinherit' where not exists (select from pg_roles where rolname = 'authenticator') \gexec
grant anon, authenticated, service_role to authenticator;
SQL
  psql -qX -d "$db" -v ON_ERROR_STOP=1 -c "create extension pipetrak cascade" >/dev/null
  if [ "${2:-}" = with-pgtap ]; then
    psql -qX -d "$db" -v ON_ERROR_STOP=1 -c "create extension pgtap" >/dev/null
  fi
}

database_url() { echo "postgresql://postgres@localhost:$PIPETRAK_PORT/$1?host=$PIPETRAK_SOCKET"; }
