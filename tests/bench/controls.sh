#!/usr/bin/env bash
# Project controls benchmark (not a test): in a database of 1,000,000 components whose measured
# project holds 200,000 (20 areas) and 2,000,000 milestone events spread over the past year, a
# baseline of 200 activities (10 a area, every curve) and 100,000 timesheet rows imported, as a
# viewer through RLS: the project's 52-week S-curve, SPI/CPI by area for a locked week and for
# this week, the forecasts (project and by area), a page of stalled components, and the dry run of
# a 100,000-row timesheet; and update_milestone beside the bare baseline of the milestone
# benchmark (medians). The project's weeks are frozen as a year under pipetrak freezes them (one
# snapshot a week, taken in order); the S-curve is also measured before any week was frozen (a
# year of history imported at once). Writes tests/bench/controls-results.md.
# Usage: bash tests/bench/controls.sh [seconds per write run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
seconds=${1:-10}
db=pipetrak_bench_controls

bench_start quiet-install
bench_work 777
database_create "$db"
owner=c0000000-0000-4000-8000-000000000001
foreman=c0000000-0000-4000-8000-000000000004
viewer=c0000000-0000-4000-8000-000000000007

echo "== generating 5 projects x 200,000 components and 2,000,000 events in the first"
seed_history "$owner" "$foreman" "$viewer" 1
q <<SQL
select set_config('request.jwt.claims', '{"sub": "$owner"}', false) is not null as signed_in;
select min(id) as project from pipetrak.projects \gset
-- A baseline by area: 10 activities an area over the year and the next, each curve, with budgets.
select pipetrak.set_baseline(:project, 'area', 'bench baseline', current_date - 400,
    (select jsonb_agg(jsonb_build_object('activity_code', 'A-' || a || '-' || k, 'group', 'Area ' || a,
                                         'planned_start', current_date - 380 + 20 * k, 'planned_finish', current_date + 60 * k,
                                         'budget_mh', 100 + k, 'curve', (array['linear', 's_curve', 'front_loaded', 'back_loaded'])[1 + k % 4]))
     from generate_series(1, 20) a, generate_series(1, 10) k)) is not null as baselined;
vacuum analyze;
SQL
project=$(q -c "select min(id) from pipetrak.projects")
range=$(q -c "select min(id) || ' ' || max(id) from pipetrak.components where project_id = $project")
read -r lo hi <<<"$range"
total=$(q -c "select count(*) from pipetrak.components")
events=$(q -c "select count(*) from pipetrak.milestone_events where project_id = $project")
echo "components: $total; events in project $project: $events"

# 100,000 timesheet rows over the past year: 200 people in 20 crews, 4 crafts, charged by area.
q -c "copy (select to_char(current_date - 1 - (i % 365), 'YYYY-MM-DD') as \"Date\", 'Worker ' || (i % 200) as \"Employee\",
              'Crew ' || (i % 20) as \"Crew\", (array['Pipefitter', 'Welder', 'Helper', 'Rigger'])[1 + i % 4] as \"Craft\",
              (4 + i % 9)::text || '.5' as \"Hours\", 'Area ' || (1 + i % 20) as \"Area\"
       from generate_series(1, 100000) i) to stdout with (format csv, header)" >"$work/timesheet.csv"
chmod 644 "$work/timesheet.csv"
# The dry run of the timesheet, five times, each of a fresh upload (as the imports benchmark times
# a takeoff's: a client uploads, then validates); the last one is committed.
import_ms=()
for i in 1 2 3 4 5; do
  import=$(q -c "select set_config('request.jwt.claims', '{\"sub\": \"$owner\"}', false) is null" \
             -c "select pipetrak_api.import_upload(project_id => $project, kind => 'timesheet', filename => 'timesheet.csv', content => pg_read_binary_file('$work/timesheet.csv'))" | tail -1)
  out=$(q -c "select set_config('request.jwt.claims', '{\"sub\": \"$owner\"}', false)" -c "\\timing on" \
          -c "select pipetrak_api.import_validate(import_id => $import) ->> 'status'")
  import_ms+=("$(echo "$out" | grep -Eo 'Time: [0-9.]+' | tail -1 | awk '{print $2}')")
  echo "$out" | grep -q '^validated$' || { echo "$out"; exit 1; }
done
validate=$(median "${import_ms[@]}")
commit=$(q -c "select set_config('request.jwt.claims', '{\"sub\": \"$owner\"}', false)" -c "\\timing on" \
           -c "select pipetrak_api.import_commit(import_id => (select max(id) from pipetrak.import_jobs)) ->> 'hours_rows_created'" \
         | grep -Eo 'Time: [0-9.]+' | tail -1 | awk '{print $2}')
q -c "vacuum analyze"

# The S-curve before any week is frozen: a year of history read from the days.
user_script "$viewer" s_curve "select * from pipetrak_api.s_curve(project_id => $project, weeks => 52);"
s_curve_days=$(pgbench_median s_curve.sql 1 "-t 10")

# A year under pipetrak: each locked week frozen in turn.
q <<SQL
select pipetrak.take_snapshot($project, w::date)
from generate_series(pipetrak.last_locked_week_end($project) - 7 * 51, pipetrak.last_locked_week_end($project), interval '7 days') w;
vacuum analyze;
SQL
locked=$(q -c "select pipetrak.last_locked_week_end($project)")
this_week=$(q -c "select pipetrak.week_end_of(current_date)")

baseline_tables "project_id = $project"
{ echo "\\set cid random($lo, $hi)"; echo "\\set v random(0, 1)"; as_user "$foreman"
  echo "select pipetrak_api.update_milestone(component_id => :cid, milestone => 'Receive', value => :v * 100);"
  echo "commit;"; } >"$work/update.sql"
cat >"$work/baseline.sql" <<PGB
\set cid random($lo, $hi)
begin;
update bench.components set milestone_values[1] = 100, version = version + 1 where id = :cid;
insert into bench.milestone_events (project_id, component_id, milestone, old_value, new_value, work_date, user_id)
values ($project, :cid, 'Receive', 0, 100, current_date, '$foreman');
commit;
PGB
user_script "$viewer" week_locked "select * from pipetrak_api.controls_week(project_id => $project, week_end => '$locked', group_by => 'area');"
user_script "$viewer" week_open "select * from pipetrak_api.controls_week(project_id => $project, week_end => '$this_week', group_by => 'area');"
user_script "$viewer" forecast_project "select * from pipetrak_api.forecasts(project_id => $project);"
user_script "$viewer" forecast_area "select * from pipetrak_api.forecasts(project_id => $project, group_by => 'area');"
user_script "$viewer" stalled "select * from pipetrak_api.stalled_components(project_id => $project, days => 14);"
user_script "$viewer" stalled_area "select * from pipetrak_api.stalled_components(project_id => $project, days => 21, group_by => 'area', group_key => (select min(id)::text from pipetrak_api.areas where project_id = $project));"

echo "== running"
s_curve=$(pgbench_median s_curve.sql 1 "-t 20")
week_locked=$(pgbench_median week_locked.sql 1 "-t 30")
week_open=$(pgbench_median week_open.sql 1 "-t 30")
forecast_project=$(pgbench_median forecast_project.sql 1 "-t 20")
forecast_area=$(pgbench_median forecast_area.sql 1 "-t 20")
stalled=$(pgbench_median stalled.sql 1 "-t 30")
stalled_area=$(pgbench_median stalled_area.sql 1 "-t 30")
baseline=$(pgbench_median baseline.sql 1 "-T $seconds")
update=$(pgbench_median update.sql 1 "-T $seconds")

report=$(cat <<TXT
| measurement ($total components in the database; 200,000, $events events over a year, 200 activities and 100,000 timesheet rows in the project) | pipetrak | baseline / target | ratio |
|---|---|---|---|
| S-curve of the project, 52 weeks (each week frozen) | $s_curve ms | target 50 ms | $(ratio "$s_curve" 50)x |
| same, before the year's weeks were frozen (read from the days) | $s_curve_days ms | (no target) | |
| SPI/CPI by area for a locked week | $week_locked ms | target 20 ms | $(ratio "$week_locked" 20)x |
| SPI/CPI by area for this week (open) | $week_open ms | target 20 ms | $(ratio "$week_open" 20)x |
| forecasts of the project | $forecast_project ms | target 50 ms | $(ratio "$forecast_project" 50)x |
| forecasts by area | $forecast_area ms | target 50 ms | $(ratio "$forecast_area" 50)x |
| stalled components page (14 days, 100 rows) | $stalled ms | target 20 ms | $(ratio "$stalled" 20)x |
| stalled components page of one area (21 days) | $stalled_area ms | target 20 ms | $(ratio "$stalled_area" 20)x |
| timesheet import of 100,000 rows, the dry run | $validate ms | target 1000 ms | $(ratio "$validate" 1000)x |
| same, commit | $commit ms | (no target) | |
| update_milestone, 1 client: median | $update ms | $baseline ms (row update + event insert) | $(ratio "$update" "$baseline")x |
TXT
)
{ echo "# Project controls benchmark (latest run)"; echo; echo "\`bash tests/bench/controls.sh $seconds\`: medians; reads over 10–30 runs, imports over 5, writes for ${seconds}s."; echo; echo "$report"; } >"$here/controls-results.md"
echo "$report"
rm -rf "$work"
