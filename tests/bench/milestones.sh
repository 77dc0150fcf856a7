#!/usr/bin/env bash
# Benchmark (not a test): update_milestone through RLS as an authenticated foreman, and the project
# dashboard read, on a project of 200,000 components in a database of 1,000,000 — each beside a
# baseline measured in the same run. Usage: bash tests/bench/milestones.sh [seconds per run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
seconds=${1:-20}
db=pipetrak_bench

bench_start
bench_work 777
database_create "$db"
owner=c0000000-0000-4000-8000-000000000001
foreman=c0000000-0000-4000-8000-000000000004

echo "== generating 5 projects x 200,000 components (2,000 drawings each)"
psql -qX -d "$db" -v ON_ERROR_STOP=1 <<SQL
select set_config('request.jwt.claims', '{"sub": "$owner"}', false);
select pipetrak.create_organization('Bench') as org \gset
insert into pipetrak.memberships (organization_id, user_id, role, created_by) values (:org, '$foreman', 'foreman', '$owner');
select count(pipetrak.create_project(:org, 'Bench ' || n, 'B-' || n, 'America/Chicago', 'flag', true)) from generate_series(1, 5) n;
insert into pipetrak.areas (project_id, name) select p.id, 'Area ' || a from pipetrak.projects p, generate_series(1, 20) a;
insert into pipetrak.systems (project_id, name) select p.id, 'System ' || s from pipetrak.projects p, generate_series(1, 50) s;
insert into pipetrak.test_packages (project_id, name) select p.id, 'TP-' || t from pipetrak.projects p, generate_series(1, 200) t;
insert into pipetrak.drawings (project_id, drawing_no, area_id, system_id, test_package_id)
select p.id, 'DWG-' || d,
       (select id from pipetrak.areas where project_id = p.id order by id offset d % 20 limit 1),
       (select id from pipetrak.systems where project_id = p.id order by id offset d % 50 limit 1),
       (select id from pipetrak.test_packages where project_id = p.id order by id offset d % 200 limit 1)
from pipetrak.projects p, generate_series(0, 1999) d;
-- One statement per project: the statement trigger builds the progress parts as it goes.
select format(\$f\$
insert into pipetrak.components (project_id, drawing_id, component_type, tag, seq, area_id, system_id, test_package_id,
                                 milestone_values, earned_total, earned_receive)
select d.project_id, d.id, 'valve', 'V-' || i, 1, d.area_id, d.system_id, d.test_package_id,
       case when i %% 3 = 0 then '{100,0,0,0,0}'::numeric[] else '{0,0,0,0,0}' end,
       case when i %% 3 = 0 then 100000 else 0 end, case when i %% 3 = 0 then 100000 else 0 end
from generate_series(0, 199999) i
join pipetrak.drawings d on d.project_id = %s and d.drawing_no = 'DWG-' || (i %% 2000)
\$f\$, id) from pipetrak.projects order by id \gexec
vacuum analyze;
SQL
project=$(psql -qXAt -d "$db" -c "select min(id) from pipetrak.projects")
range=$(psql -qXAt -d "$db" -c "select min(id) || ' ' || max(id) from pipetrak.components where project_id = $project")
read -r lo hi <<<"$range"
total=$(psql -qXAt -d "$db" -c "select count(*) from pipetrak.components")
echo "components: $total in the database, project $project holds ids $lo..$hi"

# Baseline tables: copies of the rows with their primary keys, no triggers, no RLS, no logic.
baseline_tables "project_id = $project"

{ echo "\\set cid random($lo, $hi)"; echo "\\set v random(0, 1) * 100"; as_user "$foreman"
  echo "select pipetrak_api.update_milestone(component_id => :cid, milestone => 'Receive', value => :v);"
  echo "commit;"; } >"$work/update.sql"
cat >"$work/baseline.sql" <<PGB
\set cid random($lo, $hi)
\set v random(0, 1) * 100
begin;
update bench.components set milestone_values[1] = :v, version = version + 1 where id = :cid;
insert into bench.milestone_events (project_id, component_id, milestone, old_value, new_value, work_date, user_id)
values ($project, :cid, 'Receive', 0, :v, current_date, '$foreman');
commit;
PGB
user_script "$foreman" dashboard \
  "select * from pipetrak_api.project_progress where project_id = $project;" \
  "select * from pipetrak_api.area_progress where project_id = $project;" \
  "select * from pipetrak_api.system_progress where project_id = $project;" \
  "select * from pipetrak_api.test_package_progress where project_id = $project;"
# The predecessor's way: aggregate every component of the project on each read.
cat >"$work/dashboard_baseline.sql" <<PGB
begin;
select count(*), avg(percent_complete) from pipetrak.components where project_id = $project and retired_at is null;
select area_id, count(*), avg(percent_complete) from pipetrak.components where project_id = $project and retired_at is null group by 1;
select system_id, count(*), avg(percent_complete) from pipetrak.components where project_id = $project and retired_at is null group by 1;
select test_package_id, count(*), avg(percent_complete) from pipetrak.components where project_id = $project and retired_at is null group by 1;
commit;
PGB

echo "== running (${seconds}s per write run)"
read -r b1 bt1 <<<"$(pgbench_run baseline.sql 1 "-T $seconds")"
read -r u1 ut1 <<<"$(pgbench_run update.sql 1 "-T $seconds")"
read -r b4 bt4 <<<"$(pgbench_run baseline.sql 4 "-T $seconds")"
read -r u4 ut4 <<<"$(pgbench_run update.sql 4 "-T $seconds")"
read -r dbase _ <<<"$(pgbench_run dashboard_baseline.sql 1 "-t 30")"
read -r dash _ <<<"$(pgbench_run dashboard.sql 1 "-t 200")"

report=$(cat <<TXT
| measurement (project of 200,000 in a database of $total) | pipetrak | baseline | ratio |
|---|---|---|---|
| update_milestone, 1 client: median latency | $u1 ms | $b1 ms | $(ratio "$u1" "$b1")x |
| update_milestone, 1 client: throughput | $ut1 tps | $bt1 tps | $(ratio "$bt1" "$ut1")x |
| update_milestone, 4 clients: median latency | $u4 ms | $b4 ms | $(ratio "$u4" "$b4")x |
| update_milestone, 4 clients: throughput | $ut4 tps | $bt4 tps | $(ratio "$bt4" "$ut4")x |
| dashboard (project + area + system + test package rollups): median | $dash ms | $dbase ms (aggregate all components) | $(ratio "$dash" "$dbase")x |
TXT
)
echo "$report" | tee "$here/milestones-results.md"
