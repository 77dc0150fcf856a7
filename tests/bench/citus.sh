#!/usr/bin/env bash
# Benchmark (not a test): update_milestone and two progress reads through RLS as an authenticated
# foreman, the way PostgREST calls them (role and claims set in the transaction, then the
# pre-request), on a 3-node Citus cluster — a coordinator and two workers, all on this machine —
# beside the same data on one PostgreSQL node, in the same run: 4 projects of N components
# (default 50,000; 500 drawings each), the calls on the first. Each measurement is the median of
# the alternating rounds' medians. On one machine the cluster's three servers share its cores with
# pgbench: the ratios say what the routing costs (a shard's round trip from the coordinator), not
# what a cluster of machines would serve.
# Needs Citus: PIPETRAK_CITUS_SOURCE as for tests/scripts/citus_test.sh.
# Usage: bash tests/bench/citus.sh [seconds per run] [components per project]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/../scripts/citus.sh"
seconds=${1:-15}
per_project=${2:-50000}
rounds=3

citus_installed || [ -n "${PIPETRAK_CITUS_SOURCE:-}" ] ||
  { echo "needs Citus: set PIPETRAK_CITUS_SOURCE (see tests/scripts/citus_test.sh)" >&2; exit 1; }
bench_start quiet-install
citus_build
citus_cluster_start
bench_work 777
owner=c0000000-0000-4000-8000-000000000001
foreman=c0000000-0000-4000-8000-000000000004
plain=pipetrak_bench_plain
cluster_db=pipetrak_bench_citus
cluster="host=$CITUS_SOCKET port=${CITUS_PORTS[0]} user=postgres dbname=$cluster_db"

database_create "$plain" >/dev/null
citus_database_create "$cluster_db"
citus_psql 0 "$cluster_db" -c "create extension pipetrak cascade" >/dev/null
citus_psql 0 "$cluster_db" -c "select count(*) from pipetrak.distribute()" >/dev/null

# The same rows on both: joins by project and name only (each planned on one shard on Citus).
seed() {
  psql -qX -d "$1" -v ON_ERROR_STOP=1 <<SQL
select set_config('request.jwt.claims', '{"sub": "$owner"}', false);
select pipetrak.create_organization('Bench') as org \gset
insert into pipetrak.memberships (organization_id, user_id, role, created_by) values (:org, '$foreman', 'foreman', '$owner');
select count(pipetrak.create_project(:org, 'Bench ' || n, 'B-' || n, 'America/Chicago', 'flag', true)) from generate_series(1, 4) n;
insert into pipetrak.areas (project_id, name) select p.id, 'Area ' || a from pipetrak.projects p, generate_series(0, 19) a;
insert into pipetrak.systems (project_id, name) select p.id, 'System ' || s from pipetrak.projects p, generate_series(0, 49) s;
insert into pipetrak.test_packages (project_id, name) select p.id, 'TP-' || t from pipetrak.projects p, generate_series(0, 99) t;
select format(\$f\$
insert into pipetrak.drawings (project_id, drawing_no, area_id, system_id, test_package_id)
select %1\$s, 'DWG-' || d, a.id, s.id, t.id
from generate_series(0, 499) d
join pipetrak.areas a on a.project_id = %1\$s and a.name = 'Area ' || (d %% 20)
join pipetrak.systems s on s.project_id = %1\$s and s.name = 'System ' || (d %% 50)
join pipetrak.test_packages t on t.project_id = %1\$s and t.name = 'TP-' || (d %% 100)
\$f\$, id) from pipetrak.projects order by id \gexec
select format(\$f\$
insert into pipetrak.components (project_id, drawing_id, component_type, tag, seq, area_id, system_id, test_package_id,
                                 milestone_values, earned_total, earned_receive)
select d.project_id, d.id, 'valve', 'V-' || i, 1, d.area_id, d.system_id, d.test_package_id,
       case when i %% 3 = 0 then '{100,0,0,0,0}'::numeric[] else '{0,0,0,0,0}' end,
       case when i %% 3 = 0 then 100000 else 0 end, case when i %% 3 = 0 then 100000 else 0 end
from generate_series(0, $per_project - 1) i
join pipetrak.drawings d on d.project_id = %s and d.drawing_no = 'DWG-' || (i %% 500)
\$f\$, id) from pipetrak.projects order by id \gexec
SQL
}
echo "== seeding 4 projects x $per_project components, on one node and on the cluster"
seed "$plain"
seed "$cluster"
psql -qX -d "$plain" -c "vacuum analyze" >/dev/null
psql -qX -d "$cluster" -c "vacuum analyze" >/dev/null

# A script per engine: the project's ids differ between them.
scripts() {
  local conn=$1 name=$2 project lo hi
  project=$(psql -qXAt -d "$conn" -c "select min(id) from pipetrak.projects")
  read -r lo hi <<<"$(psql -qXAt -F ' ' -d "$conn" -c "select min(id), max(id) from pipetrak.components where project_id = $project")"
  # PostgREST's request: role and claims, the Pipetrak-Project header the screens send, the
  # pre-request. Without the header a call taking an id finds its project on every shard.
  local anyid="begin;
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{\"sub\": \"$foreman\", \"role\": \"authenticated\"}', true), pipetrak.pre_request();"
  local open="begin;
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{\"sub\": \"$foreman\", \"role\": \"authenticated\"}', true), set_config('request.headers', '{\"pipetrak-project\": \"$project\"}', true), pipetrak.pre_request();"
  printf '\\set cid random(%s, %s)\n\\set v random(0, 1) * 100\n%s\nselect pipetrak_api.update_milestone(component_id => :cid, milestone => %s, value => :v);\ncommit;\n' \
    "$lo" "$hi" "$open" "'Receive'" >"$work/update-$name.sql"
  printf '\\set cid random(%s, %s)\n\\set v random(0, 1) * 100\n%s\nselect pipetrak_api.update_milestone(component_id => :cid, milestone => %s, value => :v);\ncommit;\n' \
    "$lo" "$hi" "$anyid" "'Receive'" >"$work/anyid-$name.sql"
  printf '%s\nselect * from pipetrak_api.project_progress where project_id = %s;\ncommit;\n' "$open" "$project" >"$work/project-$name.sql"
  printf '%s\nselect * from pipetrak_api.drawing_progress where project_id = %s order by drawing_no limit 50;\ncommit;\n' \
    "$open" "$project" >"$work/drawings-$name.sql"
}
scripts "$plain" plain
scripts "$cluster" cluster

# Rounds alternate between the engines; each measurement is the median of its rounds' medians.
declare -A single distributed
for what in "update 1" "update 4" "anyid 1" "project 1" "drawings 1"; do
  read -r name clients <<<"$what"
  echo "== $name, $clients client(s)"
  plain_runs=() cluster_runs=()
  for ((i = 0; i < rounds; i++)); do
    db=$plain
    plain_runs+=("$(pgbench_median "$work/$name-plain.sql" "$clients" "-T $seconds")")
    db=$cluster
    cluster_runs+=("$(pgbench_median "$work/$name-cluster.sql" "$clients" "-T $seconds")")
  done
  single[$what]=$(median "${plain_runs[@]}")
  distributed[$what]=$(median "${cluster_runs[@]}")
done

{
  echo "| measurement (4 projects × $per_project components; the first one's calls) | one node | 3-node Citus | ratio |"
  echo "|---|---|---|---|"
  row() { echo "| $1: median latency | ${single[$2]} ms | ${distributed[$2]} ms | $(ratio "${distributed[$2]}" "${single[$2]}" x) |"; }
  row "update_milestone, 1 client" "update 1"
  row "update_milestone, 4 clients" "update 4"
  row "update_milestone, 1 client, no project named (its id looked up on every shard)" "anyid 1"
  row "project_progress of the project, 1 client" "project 1"
  row "drawing_progress, a page of 50 drawings, 1 client" "drawings 1"
  echo
  echo "Run: \`PIPETRAK_CITUS_SOURCE=../shared/vendor/citus bash tests/bench/citus.sh $seconds $per_project\` on $(nproc) cores,"
  echo "$(date -u +%Y-%m-%d); $rounds alternating rounds of $seconds s each, the median of their medians. Each"
  echo "call is a transaction as PostgREST makes it (role and claims, the Pipetrak-Project header unless said,"
  echo "pipetrak.pre_request, the call)."
} >"$here/citus-results.md"
cat "$here/citus-results.md"
psql -qXAt -d postgres -c "drop database $plain" >/dev/null
