#!/usr/bin/env bash
# pipetrak on a real Citus 13 cluster (a coordinator and two workers on this machine): builds Citus
# once from the source tarball in PIPETRAK_CITUS_SOURCE (CI: ../shared/vendor/citus, set by
# .ci/run), starts the nodes, installs pipetrak on the coordinator and asks it to distribute.
# Prints one "ok - …" / "not ok - …" line a check.
#
# Needs the project's own cluster running with the extension installed (test.sh does both first).
# Without PIPETRAK_CITUS_SOURCE (and no Citus installed) it says so loudly and checks nothing: set it
# to a folder holding citus-<version>.tar.gz (a `git archive` of a Citus release tag supporting
# PostgreSQL 15), its SHA256SUMS and any *.patch the release needs.
#
# Stage 1 of scale-out: the schema is not ready to shard yet, so the checks are that Citus and
# pipetrak install side by side, that distribute() refuses with the catalogued error and the same
# obstacles a single node lists, and that it refuses before changing anything.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/cluster.sh"
source "$here/citus.sh"

if ! citus_installed && [ -z "${PIPETRAK_CITUS_SOURCE:-}" ]; then
  echo "# SKIPPED: no Citus here and PIPETRAK_CITUS_SOURCE is not set (see the head of $0)" >&2
  echo "# SKIPPED: the Citus cluster test did not run"
  exit 0
fi

check "Citus builds from ${PIPETRAK_CITUS_SOURCE:-the installed copy}" citus_build || exit 1
trap citus_cluster_stop EXIT
check "a coordinator and two workers start" citus_cluster_start || exit 1
db=pipetrak_citus
check "a database with Citus on every node, the workers added" citus_database_create $db || exit 1

# Citus propagates CREATE EXTENSION to the workers: pipetrak must install there too.
installed_everywhere() {
  citus_psql 0 $db -c "create extension pipetrak cascade" || return 1
  local node
  for node in 1 2; do
    [ "$(citus_psql $node $db -c "select extversion from pg_extension where extname = 'pipetrak'")" = \
      "$(citus_psql 0 $db -c "select extversion from pg_extension where extname = 'pipetrak'")" ] || return 1
  done
}
check "CREATE EXTENSION pipetrak on the coordinator installs it on both workers" installed_everywhere || exit 1

# The refusal is pipetrak's catalogued error (never a raw Citus error halfway), it names the first
# of the obstacles distribution_obstacles() lists, and nothing was distributed.
refuses_before_changing() {
  local out
  out=$(citus_psql 0 $db -c "select pipetrak.distribute()" 2>&1) && { echo "distribute() succeeded: $out"; return 1; }
  grep -q '"code": "not_supported_distributed"' <<<"$out" || { echo "$out"; return 1; }
  local listed
  listed=$(citus_psql 0 $db -c "select count(*) from pipetrak.distribution_obstacles()")
  grep -q "\"obstacles\": $listed[,}]" <<<"$out" || { echo "$out (listed: $listed)"; return 1; }
}
check "distribute() refuses with not_supported_distributed, naming the obstacles listed" refuses_before_changing

# A single node with the same version lists the same obstacles: the list is the schema's, not the
# engine's.
same_obstacles() {
  database_create pipetrak_citus_plain >/dev/null || return 1
  diff <(citus_psql 0 $db -c "select * from pipetrak.distribution_obstacles()") \
       <(psql -qXAt -d pipetrak_citus_plain -c "select * from pipetrak.distribution_obstacles()") || return 1
  psql -qXAt -d postgres -c "drop database pipetrak_citus_plain"
}
check "the coordinator lists the obstacles a single node lists" same_obstacles

# As a superuser only: Citus changes every table.
refuses_others() {
  local out
  citus_psql 0 $db -c "drop role if exists pipetrak_dba" -c "create role pipetrak_dba login" \
    -c "grant usage on schema pipetrak to pipetrak_dba" || return 1
  out=$(psql -qXAt -h "$CITUS_SOCKET" -p "${CITUS_PORTS[0]}" -U pipetrak_dba -d $db -c "select pipetrak.distribute()" 2>&1)
  citus_psql 0 $db -c "revoke usage on schema pipetrak from pipetrak_dba; drop role pipetrak_dba" >/dev/null
  grep -q 'permission denied for function distribute' <<<"$out" || { echo "$out"; return 1; }
}
check "distribute() is granted to no other role" refuses_others
