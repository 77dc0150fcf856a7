#!/usr/bin/env bash
# History and man-hour benchmark (not a test): in a database of 1,000,000 components whose measured
# project holds 200,000 (20 areas) and 2,000,000 milestone events spread over the past year, as a
# viewer through RLS: the delta by area for a 7-day window and for the whole year, as-of one date,
# the man-hour rollups of the project (by area and the project), spreading a budget over the
# 200,000 components, taking one weekly snapshot, and update_milestone with man-hours kept beside
# the bare baseline of the milestone benchmark (medians). Writes tests/bench/history-results.md.
# Usage: bash tests/bench/history.sh [seconds per write run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
seconds=${1:-10}
db=pipetrak_bench_history

bench_start
bench_work 777
database_create "$db"
owner=c0000000-0000-4000-8000-000000000001
foreman=c0000000-0000-4000-8000-000000000004
viewer=c0000000-0000-4000-8000-000000000007

echo "== generating 5 projects x 200,000 components and 2,000,000 events in the first"
seed_history "$owner" "$foreman" "$viewer" 0
q -c "vacuum analyze"
project=$(psql -qXAt -d "$db" -c "select min(id) from pipetrak.projects")
range=$(psql -qXAt -d "$db" -c "select min(id) || ' ' || max(id) from pipetrak.components where project_id = $project")
read -r lo hi <<<"$range"
total=$(psql -qXAt -d "$db" -c "select count(*) from pipetrak.components")
events=$(psql -qXAt -d "$db" -c "select count(*) from pipetrak.milestone_events where project_id = $project")
echo "components: $total; events in project $project: $events"

# Spreading a budget over the project's 200,000 components, five times (each a new version).
spread=$(for i in 1 2 3 4 5; do
  psql -qXAt -d "$db" -c "select set_config('request.jwt.claims', '{\"sub\": \"$owner\"}', false)" \
       -c "\\timing on" -c "select pipetrak_api.spread_budget(project_id => $project, total_mh => 250000 + $i, reason => 'bench $i')" \
    | grep -Eo 'Time: [0-9.]+' | tail -1 | awk '{print $2}'
done | sort -n | sed -n 3p)

# The baseline of the milestone benchmark: one row update and one event insert, no logic.
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
user_script "$viewer" delta_week "select * from pipetrak_api.progress_delta(project_id => $project, date_from => current_date - 6, date_to => current_date, group_by => 'area');"
user_script "$viewer" delta_year "select * from pipetrak_api.progress_delta(project_id => $project, date_from => current_date - 364, date_to => current_date, group_by => 'area');"
user_script "$viewer" as_of "select * from pipetrak_api.progress_as_of(project_id => $project, as_of => current_date - 100, group_by => 'area');"
user_script "$viewer" manhours "select * from pipetrak_api.manhour_progress(project_id => $project, group_by => 'area'); select * from pipetrak_api.manhour_progress(project_id => $project);"
sunday=$(psql -qXAt -d "$db" -c "select current_date - 100 + (7 - extract(isodow from current_date - 100)::integer)")
printf 'begin;\nselect pipetrak.take_snapshot(%s, %s);\nrollback;\n' "$project" "'$sunday'" >"$work/snapshot.sql"

echo "== running"
baseline=$(pgbench_median baseline.sql 1 "-T $seconds")
update=$(pgbench_median update.sql 1 "-T $seconds")
week=$(pgbench_median delta_week.sql 1 "-t 20")
year=$(pgbench_median delta_year.sql 1 "-t 10")
asof=$(pgbench_median as_of.sql 1 "-t 10")
manhours=$(pgbench_median manhours.sql 1 "-t 30")
snapshot=$(pgbench_median snapshot.sql 1 "-t 10")

report=$(cat <<TXT
| measurement ($total components in the database; 200,000 and $events events over a year in the project) | pipetrak | baseline / target | ratio |
|---|---|---|---|
| delta by area, 7-day window | $week ms | target 50 ms | $(ratio "$week" 50)x |
| delta by area, the whole year | $year ms | target 500 ms | $(ratio "$year" 500)x |
| as of one date, by area | $asof ms | target 500 ms | $(ratio "$asof" 500)x |
| man-hour rollups of the project (by area, and the project) | $manhours ms | target 20 ms | $(ratio "$manhours" 20)x |
| spreading a budget over 200,000 components | $spread ms | target 2000 ms | $(ratio "$spread" 2000)x |
| one weekly snapshot | $snapshot ms | target 1000 ms | $(ratio "$snapshot" 1000)x |
| update_milestone with man-hours kept, 1 client: median | $update ms | $baseline ms (row update + event insert) | $(ratio "$update" "$baseline")x |
TXT
)
{ echo "# History and man-hour benchmark (latest run)"; echo; echo "\`bash tests/bench/history.sh $seconds\`: medians; reads over 10–30 runs, spreads over 5, writes for ${seconds}s."; echo; echo "$report"; } >"$here/history-results.md"
echo "$report"
rm -rf "$work"
