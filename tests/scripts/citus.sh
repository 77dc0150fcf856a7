#!/usr/bin/env bash
# Shared helpers for the Citus tests: builds Citus from a source tarball into the system
# PostgreSQL 15 (once) and runs a real 3-node cluster on this machine (a coordinator and two
# workers, each its own data folder and port). Source it after cluster.sh.
#
# The source: PIPETRAK_CITUS_SOURCE names a folder holding citus-<version>.tar.gz (a `git archive`
# of a Citus release tag), its SHA256SUMS and any *.patch to apply with `patch -p1`; CI sets it to
# ../shared/vendor/citus. Citus packages are not in the registries these machines reach.

CITUS_HOME=$PIPETRAK_HOME/citus
CITUS_PORTS=(54330 54331 54332) # coordinator, worker 1, worker 2
CITUS_SOCKET=$CITUS_HOME/socket

# The build's own packages (apt); the rest comes with setup.sh.
citus_packages=(libcurl4-openssl-dev liblz4-dev libzstd-dev libssl-dev libkrb5-dev autoconf flex bison make gcc patch)

# True when Citus is installed in the system PostgreSQL 15.
citus_installed() { [ -f "$("$PG_BIN/pg_config" --pkglibdir)/citus.so" ]; }

# Builds and installs Citus from $PIPETRAK_CITUS_SOURCE unless it is installed already. About two
# minutes on a quiet 2-core machine, once.
citus_build() {
  citus_installed && return 0
  local source=${PIPETRAK_CITUS_SOURCE:?PIPETRAK_CITUS_SOURCE names the folder of a Citus source tarball}
  source=$(cd "$source" && pwd) || return 1
  local tarball
  tarball=$(ls "$source"/citus-*.tar.gz 2>/dev/null | head -1)
  [ -n "$tarball" ] || { echo "citus: no citus-*.tar.gz in $source" >&2; return 1; }
  if [ -f "$source/SHA256SUMS" ]; then
    (cd "$source" && sha256sum --quiet -c SHA256SUMS) || { echo "citus: $tarball does not match SHA256SUMS" >&2; return 1; }
  fi
  local missing=() p
  for p in "${citus_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "citus: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 1
  fi
  local build=$CITUS_HOME/build
  rm -rf "$build" && mkdir -p "$build" && tar -xzf "$tarball" -C "$build" || return 1
  local folder
  folder=$(find "$build" -mindepth 1 -maxdepth 1 -type d | head -1)
  [ -n "$folder" ] || folder=$build
  echo "citus: building $(basename "$tarball") (a few minutes, once)"
  (
    set -e
    cd "$folder"
    for p in "$source"/*.patch; do [ -f "$p" ] && patch -s -p1 <"$p"; done
    ./configure -q --without-libcurl PG_CONFIG="$PG_BIN/pg_config" >/dev/null
    # Without with_llvm=no PGXS also builds LLVM bitcode for every file: twice the time.
    make -s -j"$(nproc)" with_llvm=no >/dev/null 2>&1
    make -s install with_llvm=no >/dev/null
  ) >"$CITUS_HOME/build.log" 2>&1 || { tail -30 "$CITUS_HOME/build.log" >&2; return 1; }
  citus_installed
}

# Node $1 (0 = coordinator): its data folder.
citus_pgdata() { echo "$CITUS_HOME/node$1"; }

# psql on database $2 of node $1, unaligned, stopping at the first error; more arguments are psql's.
citus_psql() {
  local node=$1 db=$2
  shift 2
  psql -qXAt -h "$CITUS_SOCKET" -p "${CITUS_PORTS[$node]}" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"
}

# Starts the three nodes (created the first time: one initdb, copied), each with Citus preloaded,
# and registers the workers with the coordinator. The nodes run as postgres on 127.0.0.1.
citus_cluster_start() {
  mkdir -p "$CITUS_HOME" "$CITUS_SOCKET"
  chown postgres:postgres "$CITUS_HOME" "$CITUS_SOCKET"
  local node template=$CITUS_HOME/template
  if [ ! -f "$template/PG_VERSION" ]; then
    as_postgres "$PG_BIN/initdb" -N -D "$template" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null || return 1
  fi
  for node in 0 1 2; do
    local data
    data=$(citus_pgdata $node)
    if [ ! -f "$data/PG_VERSION" ]; then
      as_postgres cp -a "$template" "$data" || return 1
      cat >>"$data/postgresql.conf" <<CONF
port = ${CITUS_PORTS[$node]}
unix_socket_directories = '$CITUS_SOCKET'
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'citus'
max_connections = 200
shared_buffers = 256MB
fsync = off
citus.shard_count = 4
CONF
    fi
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$CITUS_HOME/node$node.log" -w start >/dev/null || return 1
    fi
  done
}

# Stops the three nodes.
citus_cluster_stop() {
  local node
  for node in 0 1 2; do
    as_postgres "$PG_BIN/pg_ctl" -D "$(citus_pgdata $node)" -m fast -w stop >/dev/null 2>&1 || true
  done
}

# (Re)creates database $1 on every node with the PostgREST roles and Citus, and on the coordinator
# registers the workers. pipetrak is then created on the coordinator only (Citus creates it on the
# workers when it distributes).
citus_database_create() {
  local db=$1 node
  for node in 0 1 2; do
    database_recreate_sql "$db" | citus_psql $node postgres >/dev/null || return 1
    citus_psql $node "$db" -c "create extension citus" >/dev/null || return 1
  done
  citus_psql 0 "$db" <<SQL >/dev/null
select citus_set_coordinator_host('127.0.0.1', ${CITUS_PORTS[0]});
select citus_add_node('127.0.0.1', ${CITUS_PORTS[1]});
select citus_add_node('127.0.0.1', ${CITUS_PORTS[2]});
SQL
}
