#!/usr/bin/env bash
# Test-package benchmark (not a test): in a database of 1,000,000 components whose measured project
# holds 200,000 (400 packages: one of 5,000 members, the rest about 490; a fifth of the members
# field welds; most members ready, some not, 2,000 open review items), as a QC inspector through
# RLS: readiness of every package of the project, readiness of one package with its blockers,
# completing Test Acceptance on the 5,000-member package beside its baseline (5,000 bare row
# updates + 5,000 event inserts in one transaction, and the same as two set statements; same run,
# all rolled back each time, tables vacuumed before each run), and the
# turnover report of that package (medians). Writes tests/bench/packages-results.md.
# Usage: bash tests/bench/packages.sh [runs per measurement]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
runs=${1:-15}
db=pipetrak_bench_packages

bench_start
bench_work 777
database_create "$db"
owner=c0000000-0000-4000-8000-000000000001
qc=c0000000-0000-4000-8000-000000000005

echo "== generating 5 projects x 200,000 components; 400 packages in the measured one"
psql -qX -d "$db" -v ON_ERROR_STOP=1 <<SQL
select set_config('request.jwt.claims', '{"sub": "$owner"}', false);
select pipetrak.create_organization('Bench') as org \gset
insert into pipetrak.memberships (organization_id, user_id, role, created_by) values (:org, '$qc', 'qc_inspector', '$owner');
select count(pipetrak.create_project(:org, 'Bench ' || n, 'B-' || n, 'America/Chicago', 'flag', true)) from generate_series(1, 5) n;
select min(id) as project from pipetrak.projects \gset
insert into pipetrak.test_packages (project_id, name) select :project, 'TP-' || t from generate_series(1, 400) t;
-- 4,000 drawings: the first 100 in TP-1 (5,000 members), the rest spread over TP-2..TP-400.
insert into pipetrak.drawings (project_id, drawing_no, test_package_id)
select p.id, 'DWG-' || d,
       case when p.id = :project then (select id from pipetrak.test_packages where project_id = p.id and name = 'TP-' ||
                                           case when d < 100 then 1 else 2 + (d - 100) % 399 end) end
from pipetrak.projects p, generate_series(0, 3999) d;
-- One statement per project: the statement trigger builds the progress parts as it goes. Every
-- fifth member is a field weld; members through Punch except every 97th (un-punched).
select format(\$f\$
insert into pipetrak.components (project_id, drawing_id, component_type, tag, seq, test_package_id, milestone_values,
                                 earned_total, earned_receive, earned_install, earned_punch)
select d.project_id, d.id, case when i %% 5 = 0 then 'field_weld' else 'valve' end, 'C-' || i, 1, d.test_package_id,
       case when i %% 97 = 0 then '{100,100,0,0,0}'::numeric[] else '{100,100,100,0,0}' end,
       case when i %% 97 = 0 then 700000 else 800000 end,
       case when i %% 5 = 0 then 0 else 100000 end,
       case when i %% 5 = 0 then 700000 else 600000 end,
       case when i %% 97 = 0 then 0 else 100000 end
from generate_series(0, 199999) i
join pipetrak.drawings d on d.project_id = %s and d.drawing_no = 'DWG-' || (i / 50)
\$f\$, id) from pipetrak.projects order by id \gexec
insert into pipetrak.welders (project_id, stencil, verified) select :project, 'K-' || w, true from generate_series(1, 50) w;
-- Welds of the measured project: welded, most needing no NDE; every 50th listed for RT and
-- examined (every 500th rejected), every 53rd listed for RT and not examined yet.
insert into pipetrak.field_welds (component_id, project_id, weld_type, welder_id, date_welded, nde_types, current_nde, status)
select c.id, c.project_id, 'BW', (select min(id) from pipetrak.welders) + c.id % 50, current_date - 10,
       case when c.id % 50 = 0 or c.id % 53 = 0 then '{RT}'::text[] else '{}' end,
       case when c.id % 500 = 0 then '{"RT": "FAIL"}'::jsonb when c.id % 50 = 0 then '{"RT": "PASS"}' else '{}' end,
       case when c.id % 500 = 0 then 'rejected' when c.id % 50 = 0 then 'accepted' else 'active' end
from pipetrak.components c where c.component_type = 'field_weld' and c.project_id = :project
  and c.test_package_id <> (select id from pipetrak.test_packages where project_id = :project and name = 'TP-1');
-- TP-1's welds need no NDE, and its members are all ready (Test Acceptance can complete).
insert into pipetrak.field_welds (component_id, project_id, weld_type, welder_id, date_welded)
select c.id, c.project_id, 'BW', (select min(id) from pipetrak.welders), current_date - 10
from pipetrak.components c where c.component_type = 'field_weld' and c.project_id = :project
  and c.test_package_id = (select id from pipetrak.test_packages where project_id = :project and name = 'TP-1');
update pipetrak.components set milestone_values = '{100,100,100,0,0}', earned_total = 800000,
    earned_install = case when component_type = 'field_weld' then 700000 else 600000 end, earned_punch = 100000
where test_package_id = (select id from pipetrak.test_packages where project_id = :project and name = 'TP-1')
  and earned_punch = 0;
insert into pipetrak.field_welds (component_id, project_id)
select c.id, c.project_id from pipetrak.components c where c.component_type = 'field_weld' and c.project_id <> :project;
insert into pipetrak.review_items (project_id, component_id, kind, details)
select c.project_id, c.id, 'weld_completed', '{}' from pipetrak.components c
where c.project_id = :project and c.component_type = 'field_weld' order by c.id limit 2000;
vacuum analyze;
SQL
project=$(psql -qXAt -d "$db" -c "select min(id) from pipetrak.projects")
big=$(psql -qXAt -d "$db" -c "select id from pipetrak.test_packages where project_id = $project and name = 'TP-1'")
small=$(psql -qXAt -d "$db" -c "select id from pipetrak.test_packages where project_id = $project and name = 'TP-7'")
total=$(psql -qXAt -d "$db" -c "select count(*) from pipetrak.components")
members=$(psql -qXAt -d "$db" -c "select count(*) from pipetrak.components where test_package_id = $big")
# The week that locked before the run is frozen once, as the project's first write after the lock
# does: each measured transaction rolls back, and would otherwise take it again every time.
psql -qXAt -d "$db" -c "select pipetrak.take_due_snapshots($project, null)" >/dev/null
echo "components: $total; TP-1 holds $members members"

# Test Acceptance ready to complete on TP-1 (through the API, as the owner).
psql -qX -d "$db" -v ON_ERROR_STOP=1 >/dev/null <<SQL
select set_config('request.jwt.claims', '{"sub": "$owner"}', false);
select pipetrak_api.update_test_package(test_package_id => $big, test_type => 'Sensitive Leak');
select pipetrak_api.start_stage(test_package_id => $big, stage => 'pre_hydro');
select pipetrak_api.sign_stage(test_package_id => $big, stage => 'pre_hydro', signoff => 'qc', name => 'Q', company_role => 'QC');
select pipetrak_api.complete_stage(test_package_id => $big, stage => 'pre_hydro', data => '{"inspector": "Q", "nde_complete": true}');
select pipetrak_api.start_stage(test_package_id => $big, stage => 'test');
select pipetrak_api.sign_stage(test_package_id => $big, stage => 'test', signoff => 'qc', name => 'Q', company_role => 'QC');
select pipetrak_api.sign_stage(test_package_id => $big, stage => 'test', signoff => 'client', name => 'C', company_role => 'Client');
select pipetrak_api.save_stage(test_package_id => $big, stage => 'test', data => jsonb_build_object('test_date', current_date - 1,
    'medium', 'water', 'pressure_held', 60, 'hold_time_min', 10, 'gauges', '[{"number": "G-1", "calibration_date": "2026-01-01"}]'::jsonb));
SQL

# The baseline: the same rows and events written bare, in one transaction.
baseline_tables "test_package_id = $big"

{ as_user "$qc"; echo "select pipetrak_api.complete_stage(test_package_id => $big, stage => 'test');"; echo "rollback;"; } >"$work/accept.sql"
# The baseline as the issue words it: 5,000 bare row updates + 5,000 event inserts in one
# transaction (the milestone benchmark's unit of work, once per member, run server-side); and the
# same rows written by one bare update and one insert statement, for comparison.
cat >"$work/baseline.sql" <<SQL
begin;
do \$\$
declare
    r record;
begin
    for r in select id, project_id from bench.components order by id loop
        update bench.components set milestone_values[4] = 100, earned_test = 150000, earned_total = earned_total + 150000,
            version = version + 1, updated_at = now()
        where id = r.id;
        insert into bench.milestone_events (project_id, component_id, milestone, old_value, new_value, work_date, user_id)
        values (r.project_id, r.id, 'Test', 0, 100, current_date, '$qc');
    end loop;
end
\$\$;
rollback;
SQL
cat >"$work/baseline_set.sql" <<SQL
begin;
with updated as (
    update bench.components set milestone_values[4] = 100, earned_test = 150000, earned_total = earned_total + 150000,
        version = version + 1, updated_at = now()
    returning id, project_id)
insert into bench.milestone_events (project_id, component_id, milestone, old_value, new_value, work_date, user_id)
select project_id, id, 'Test', 0, 100, current_date, '$qc' from updated;
rollback;
SQL
user_script "$qc" readiness_all "select * from pipetrak_api.test_package_readiness where project_id = $project;"
user_script "$qc" readiness_one "select * from pipetrak_api.test_package_readiness where test_package_id = $small; select * from pipetrak_api.test_package_blockers(test_package_id => $small);"
user_script "$qc" turnover "select pipetrak_api.turnover_report(test_package_id => $big);"

# A write run rolls back: each starts from freshly vacuumed tables, so no run pays for the dead
# rows of the ones before (pipetrak and baseline alike). Prints the median latency in ms.
run_vacuumed() {
  local i
  for i in $(seq "$runs"); do
    psql -qX -d "$db" -c "vacuum pipetrak.components, pipetrak.milestone_events, pipetrak.progress_parts, bench.components, bench.milestone_events"
    pgbench_logged "$1" 1 "-t 1"
    logged_latencies
  done | median_ms
}

echo "== running ($runs runs each)"
accept=$(run_vacuumed accept.sql)
baseline=$(run_vacuumed baseline.sql)
baseline_set=$(run_vacuumed baseline_set.sql)
all=$(pgbench_median readiness_all.sql 1 "-t $runs")
one=$(pgbench_median readiness_one.sql 1 "-t $runs")
turnover=$(pgbench_median turnover.sql 1 "-t $runs")
earned=$( { as_user "$qc"; echo "select pipetrak_api.complete_stage(test_package_id => $big, stage => 'test') ->> 'earned';"; echo "rollback;"; } \
  | psql -qXAt -d "$db" | grep -E '^[0-9]+$')

report=$(cat <<TXT
| measurement ($total components in the database, 200,000 and 400 packages in the project) | pipetrak | baseline / target | ratio |
|---|---|---|---|
| readiness of every package of the project | $all ms | target 20 ms | $(ratio "$all" 20)x |
| readiness of one package with its blockers | $one ms | target 20 ms | $(ratio "$one" 20)x |
| complete Test Acceptance, $earned members earn Test | $accept ms | $baseline ms (5,000 row updates + 5,000 event inserts, one transaction) | $(ratio "$accept" "$baseline")x |
| the same, against one bare update and one insert statement of the 5,000 rows | $accept ms | $baseline_set ms | $(ratio "$accept" "$baseline_set")x |
| turnover report of that package | $turnover ms | target 300 ms | $(ratio "$turnover" 300)x |
TXT
)
{ echo "# Test-package benchmark (latest run)"; echo; echo "\`bash tests/bench/packages.sh $runs\`: medians over $runs runs each."; echo; echo "$report"; } >"$here/packages-results.md"
echo "$report"
rm -rf "$work"
