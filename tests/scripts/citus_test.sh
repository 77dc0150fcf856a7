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
# Stage 1 of scale-out: the schema shards by project; a request naming its project (the
# Pipetrak-Project header) runs each call on one shard, or the call refuses with
# not_supported_distributed. The checks: Citus and pipetrak install side by side; distribute()
# refuses a schema with an obstacle with the catalogued error, before changing anything, and
# places every table (foreign keys kept, on the shards too); the flow of tests/scripts/citus_flow.sql (two
# organizations' users, as PostgREST calls, imports of real files included) prints the same on the
# cluster as on a plain PostgreSQL, every statement of a request on one project on one shard; the
# screens' plans show one task; and no node's backend died.
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
# Where each node's log stands: the checks read what this run adds (the logs outlive a run).
declare -A log_from
for node in 0 1 2; do log_from[$node]=$(( $(wc -l <"$CITUS_HOME/node$node.log") + 1 )); done
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

# A schema with an obstacle (here a table nobody placed) is refused with pipetrak's catalogued
# error (never a raw Citus error halfway), naming the obstacles distribution_obstacles() lists,
# and nothing is distributed.
refuses_before_changing() {
  local out listed
  citus_psql 0 $db -c "create table pipetrak.probe_unplaced (id bigint primary key)" || return 1
  out=$(citus_psql 0 $db -c "select pipetrak.distribute()" 2>&1)
  local failed=$?
  listed=$(citus_psql 0 $db -c "select count(*) from pipetrak.distribution_obstacles()")
  citus_psql 0 $db -c "drop table pipetrak.probe_unplaced" || return 1
  [ $failed -ne 0 ] || { echo "distribute() succeeded: $out"; return 1; }
  grep -q '"code": "not_supported_distributed"' <<<"$out" || { echo "$out"; return 1; }
  grep -q "\"obstacles\": $listed[,}]" <<<"$out" && grep -q 'probe_unplaced' <<<"$out" || { echo "$out (listed: $listed)"; return 1; }
  [ "$(citus_psql 0 $db -c "select count(*) from pg_dist_partition")" = 0 ] || { echo "a table was distributed"; return 1; }
}
check "distribute() refuses a schema with an obstacle with not_supported_distributed, changing nothing" refuses_before_changing

# The schema itself has none, on the coordinator as on a single node: the list is the schema's,
# not the engine's.
no_obstacles() {
  database_create pipetrak_citus_plain >/dev/null || return 1
  local coordinator single
  coordinator=$(citus_psql 0 $db -c "select * from pipetrak.distribution_obstacles()")
  single=$(psql -qXAt -d pipetrak_citus_plain -c "select * from pipetrak.distribution_obstacles()")
  psql -qXAt -d postgres -c "drop database pipetrak_citus_plain"
  [ -z "$coordinator" ] && [ -z "$single" ] || { echo "coordinator: $coordinator; single node: $single"; return 1; }
}
check "the schema has no obstacle to distributing, on the coordinator as on a single node" no_obstacles

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

# Every table is placed as the plan says, the sharded ones co-located.
placed_as_planned() {
  local placed planned
  placed=$(citus_psql 0 $db -c "select count(*) from pipetrak.distribute()") || return 1
  planned=$(citus_psql 0 $db -c "select count(*) from pipetrak.distribution_plan() where placement <> 'coordinator'")
  [ "$placed" = "$planned" ] || { echo "placed $placed of $planned"; return 1; }
  [ "$(citus_psql 0 $db -c "select count(*) from pipetrak.distribution_plan() p where p.placement = 'distributed'
        and not exists (select from pg_dist_partition d where d.logicalrelid = ('pipetrak.' || p.table_name)::regclass
                        and d.partmethod = 'h' and d.colocationid = (select colocationid from pg_dist_partition
                                                                     where logicalrelid = 'pipetrak.components'::regclass))")" = 0 ] ||
    { echo "a sharded table is not co-located with components"; return 1; }
  [ "$(citus_psql 0 $db -c "select count(*) from pipetrak.distribution_plan() p where p.placement = 'reference'
        and not exists (select from pg_dist_partition d where d.logicalrelid = ('pipetrak.' || p.table_name)::regclass
                        and d.partmethod = 'n')")" = 0 ] || { echo "a reference table was not made one"; return 1; }
}
check "distribute() places every table, the sharded ones co-located" placed_as_planned || exit 1

# The foreign keys come back (distribute() drops them while it places the tables) and hold on
# the shards: a drawing can't name another project's area.
keys_kept() {
  database_create pipetrak_citus_plain >/dev/null || return 1
  local keys="select count(*) from pg_constraint k join pg_class c on c.oid = k.conrelid
              where k.contype = 'f' and c.relnamespace = 'pipetrak'::regnamespace"
  [ "$(citus_psql 0 $db -c "$keys")" = "$(psql -qXAt -d pipetrak_citus_plain -c "$keys")" ] ||
    { echo "coordinator: $(citus_psql 0 $db -c "$keys") foreign keys"; return 1; }
  local shard_keys
  shard_keys=$(psql -qXAt -h "$CITUS_SOCKET" -p "${CITUS_PORTS[1]}" -U postgres -d $db -c "set citus.override_table_visibility = off" \
    -c "select count(*) from pg_constraint k join pg_class c on c.oid = k.conrelid where k.contype = 'f' and c.relname ~ '^drawings_[0-9]+$'")
  [ "${shard_keys:-0}" -gt 0 ] || { echo "no foreign key on the drawings' shards of worker 1"; return 1; }
}
check "every foreign key is back, on the shards too" keys_kept

# The flow: each user's requests on the cluster print what they print on a plain PostgreSQL. The
# imports upload real files of tests/data.
same_flow() {
  local plain cluster files
  files=(-v takeoff="$(base64 -w0 "$here/../data/quantity-instances.csv")"
         -v weld_log="$(base64 -w0 "$here/../data/field-weld-log-664.xlsx")"
         -v welds="$(base64 -w0 "$here/../data/field-welds-complete.csv")")
  database_create pipetrak_citus_plain >/dev/null || return 1
  plain=$(psql -qXAt -d pipetrak_citus_plain "${files[@]}" -f "$here/citus_flow.sql" 2>&1)
  cluster=$(psql -qXAt -h "$CITUS_SOCKET" -p "${CITUS_PORTS[0]}" -U postgres -d $db "${files[@]}" -f "$here/citus_flow.sql" 2>&1)
  grep -q 'a: drawings|P-100, P-101' <<<"$plain" && grep -q 'a: project progress|30.00|5' <<<"$plain" &&
    grep -q 'a: frozen weeks|1|t' <<<"$plain" &&
    grep -q 'a: weld log|W-1|K-12|accepted' <<<"$plain" && grep -q 'a: search|component|V-1' <<<"$plain" &&
    grep -q 'a: weld log commit|{"status": "committed"' <<<"$plain" &&
    grep -q 'a: welds commit|{"status": "committed".*"welds_welded": 3' <<<"$plain" ||
    { echo "the plain flow itself failed: $plain"; return 1; }
  diff <(echo "$plain") <(echo "$cluster") || return 1
}
check "two organizations' users: the cluster answers as plain PostgreSQL, each request on one project on one shard (components, milestones single and bulk, welder, NDE, imports of a takeoff and two weld logs and a re-import, progress, readiness, weld log, delta, search, RLS, PT404)" same_flow

# The API's other calls on a project, after the flow (its data on both engines): each answers on
# the cluster as on plain PostgreSQL, on one shard, or refuses with not_supported_distributed —
# never a Citus error.
other_calls() {
  local plain cluster refused
  plain=$(psql -qXAt -d pipetrak_citus_plain -f "$here/citus_calls.sql" 2>&1)
  cluster=$(psql -qXAt -h "$CITUS_SOCKET" -p "${CITUS_PORTS[0]}" -U postgres -d $db -f "$here/citus_calls.sql" 2>&1)
  psql -qXAt -d postgres -c "drop database pipetrak_citus_plain"
  # Every call works on plain PostgreSQL (a call failing on both engines would prove nothing).
  ! grep -q 'ERROR' <<<"$plain" && grep -q '^progress_as_of|' <<<"$plain" || { echo "the plain calls failed: $plain"; return 1; }
  [ "$(wc -l <<<"$plain")" = "$(wc -l <<<"$cluster")" ] || { diff <(echo "$plain") <(echo "$cluster"); return 1; }
  refused=$(paste -d '\n' <(echo "$plain") <(echo "$cluster") | paste - - -d '\t' |
    awk -F '\t' '$1 != $2 && $2 !~ /(That is not supported on a distributed \(Citus\) installation yet|current transaction is aborted, commands ignored until end of transaction block)$/ { print "plain:   " $1; print "cluster: " $2 }')
  [ -z "$refused" ] || { echo "$refused"; return 1; }
}
check "the API's other calls on a project answer as on plain PostgreSQL, on one shard, or refuse with not_supported_distributed" other_calls

# The plans of a project's screens, as EXPLAIN shows them: one task, on the project's shard (the
# flow above proves every statement of its per-project requests so, as they run).
one_task_plans() {
  local project q out
  project=$(citus_psql 0 $db -c "select id from pipetrak.projects where name = 'Refinery A'") || return 1
  for q in "select * from pipetrak_api.project_progress where project_id = $project" \
           "select * from pipetrak_api.area_progress where project_id = $project" \
           "select * from pipetrak_api.drawing_progress where project_id = $project order by drawing_no limit 50" \
           "select * from pipetrak_api.test_package_readiness where project_id = $project" \
           "select * from pipetrak_api.weld_log where project_id = $project order by weld_number limit 50" \
           "select * from pipetrak_api.components where project_id = $project order by id limit 50" \
           "select * from pipetrak_api.import_issues where project_id = $project limit 50" \
           "select * from pipetrak_api.project_dashboard where project_id = $project" \
           "select * from pipetrak_api.activity_feed where project_id = $project limit 20" \
           "select * from pipetrak_api.qc_queue where project_id = $project limit 50" \
           "select * from pipetrak_api.nde_results where project_id = $project limit 50" \
           "select * from pipetrak_api.test_package_stages where project_id = $project" \
           "select * from pipetrak_api.field_welds where project_id = $project limit 50"; do
    out=$(citus_psql 0 $db -c "explain (costs off) $q") || return 1
    # One distributed scan, of one task (a subplan sent to other shards would show its own).
    [ "$(grep -c 'Task Count' <<<"$out")" = 1 ] && grep -q "Task Count: 1$" <<<"$out" ||
      { echo "$q: $(grep 'Task Count' <<<"$out")"; return 1; }
  done
}
check "EXPLAIN of a project's screens (progress, drawings, readiness, weld log, components, import issues, dashboard, activity, QC queue, NDE, stages) shows one task" one_task_plans

# A change a user makes on the cluster reaches a listener on the coordinator (PostgREST's,
# Realtime's): the project's signed event naming the component, as on one node. The coordinator's
# call announces it (a NOTIFY on the worker that wrote the row is not heard there).
event_heard() {
  local out valve
  out=$(psql -qXAt -h "$CITUS_SOCKET" -p "${CITUS_PORTS[0]}" -U postgres -d $db 2>&1 <<'SQL'
\set a '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated", "email": "a@example.com"}'
\set as_a 'select set_config(''role'', ''authenticated'', true), set_config(''request.jwt.claims'', :''a'', true), pipetrak.pre_request() \\g /dev/null'
begin; :as_a
select pipetrak_api.project_channel(project_id => c.project_id) as channel, c.id as valve
from pipetrak_api.components c where c.tag = 'V-2' and c.percent_complete = 0 order by c.id limit 1 \gset
commit;
listen :"channel";
begin; :as_a
select 'valve', :valve;
select pipetrak_api.update_milestone(component_id => :valve, milestone => 'Receive', value => 100) is not null;
commit;
select pg_sleep(2);
SQL
)
  valve=$(sed -n 's/^valve|\([0-9]*\)$/\1/p' <<<"$out")
  [ -n "$valve" ] && grep -q "^Asynchronous notification .*\"changes\":{\"milestones\":\[$valve\]}" <<<"$out" ||
    { echo "$out"; return 1; }
}
check "a change event reaches a listener on the coordinator" event_heard

# No node lost a backend to a signal while the flow ran (a worker crashed in COMMIT PREPARED once,
# when the derived tables' statements of a task opened connections of their own).
no_crash() {
  local crashed
  local node
  crashed=$(for node in 0 1 2; do tail -n +"${log_from[$node]}" "$CITUS_HOME/node$node.log"; done | grep "terminated by signal")
  [ -z "$crashed" ] || { echo "$crashed"; return 1; }
}
check "no backend of any node was terminated by a signal" no_crash

# Without the pre-request the claims stay on the coordinator: a user's reads of sharded tables
# find nothing on the workers, rather than someone else's rows.
claims_needed() {
  local out
  out=$(citus_psql 0 $db <<'SQL'
begin;
select set_config('role', 'authenticated', true),
       set_config('request.jwt.claims', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}', true) \g /dev/null
select count(*) from pipetrak_api.drawings;
commit;
SQL
)
  [ "$out" = 0 ] || { echo "read $out drawings without the pre-request"; return 1; }
}
check "without pipetrak.pre_request a user reads no shard's rows" claims_needed
