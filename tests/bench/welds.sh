#!/usr/bin/env bash
# Weld benchmark (not a test): in a database of 1,000,000 components whose measured project holds
# 100,000 field welds (200 welders, BW/SW, 5 % and 10 % tiers, most welded, some examined), assigning
# a welder as a foreman and recording NDE as a QC inspector through RLS, at 1 and 4 clients, beside
# the bare baseline of the milestone benchmark (one row update + one event insert), and the weld
# reports: a weld log page (50 rows by welder and by drawing), weld progress by welder and by area,
# the welder summary for a year, the sampling view of the project (medians). Writes
# tests/bench/welds-results.md. Usage: bash tests/bench/welds.sh [seconds per write run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
seconds=${1:-15}
db=pipetrak_bench_welds

bench_start
bench_work 777
database_create "$db"
owner=c0000000-0000-4000-8000-000000000001
foreman=c0000000-0000-4000-8000-000000000004
qc=c0000000-0000-4000-8000-000000000005

echo "== generating 100,000 welds in one project and 900,000 valves in four others"
psql -qX -d "$db" -v ON_ERROR_STOP=1 <<SQL
select set_config('request.jwt.claims', '{"sub": "$owner"}', false);
select pipetrak.create_organization('Bench') as org \gset
insert into pipetrak.memberships (organization_id, user_id, role, created_by)
values (:org, '$foreman', 'foreman', '$owner'), (:org, '$qc', 'qc_inspector', '$owner');
select count(pipetrak.create_project(:org, 'Bench ' || n, 'B-' || n, 'America/Chicago', 'flag', true)) from generate_series(1, 5) n;
select min(id) as project from pipetrak.projects \gset
insert into pipetrak.areas (project_id, name) select p.id, 'Area ' || a from pipetrak.projects p, generate_series(1, 20) a;
insert into pipetrak.drawings (project_id, drawing_no, area_id)
select p.id, 'DWG-' || d, (select id from pipetrak.areas where project_id = p.id order by id offset d % 20 limit 1)
from pipetrak.projects p, generate_series(0, 1999) d;
insert into pipetrak.welders (project_id, stencil, verified) select :project, 'K-' || w, true from generate_series(1, 200) w;
insert into pipetrak.components (project_id, drawing_id, component_type, tag, area_id, milestone_values, earned_total, earned_install)
select d.project_id, d.id, 'field_weld', 'W-' || i, d.area_id,
       case when i % 5 = 0 then '{0,0,0,0,0}'::numeric[] else '{100,100,0,0,0}' end,
       case when i % 5 = 0 then 0 else 700000 end, case when i % 5 = 0 then 0 else 700000 end
from generate_series(0, 99999) i
join pipetrak.drawings d on d.project_id = :project and d.drawing_no = 'DWG-' || (i % 2000);
insert into pipetrak.field_welds (component_id, project_id, weld_type, xray_percent, welder_id, date_welded, current_nde,
                                  first_examined_on, last_examined_on, status)
select c.id, c.project_id, case when c.id % 3 = 0 then 'SW' else 'BW' end, case when c.id % 2 = 0 then 5 else 10 end,
       case when c.id % 5 = 0 then null else (select min(id) from pipetrak.welders) + c.id % 200 end,
       case when c.id % 5 = 0 then null else current_date - (c.id % 365)::integer end,
       case when c.id % 5 = 0 or c.id % 10 <> 1 then '{}'::jsonb when c.id % 100 = 1 then '{"RT": "FAIL"}' else '{"RT": "PASS"}' end,
       case when c.id % 5 <> 0 and c.id % 10 = 1 then current_date - (c.id % 365)::integer + 2 end,
       case when c.id % 5 <> 0 and c.id % 10 = 1 then current_date - (c.id % 365)::integer + 2 end,
       case when c.id % 5 = 0 or c.id % 10 <> 1 then 'active' when c.id % 100 = 1 then 'rejected' else 'accepted' end
from pipetrak.components c where c.project_id = :project;
insert into pipetrak.nde_results (project_id, component_id, method, result, examined_on, recorded_by)
select f.project_id, f.component_id, 'RT', f.current_nde ->> 'RT', f.first_examined_on, '$qc'
from pipetrak.field_welds f where f.current_nde ? 'RT';
select format(\$f\$
insert into pipetrak.components (project_id, drawing_id, component_type, tag, seq, area_id, milestone_values)
select d.project_id, d.id, 'valve', 'V-' || i, 1, d.area_id, '{0,0,0,0,0}'::numeric[]
from generate_series(0, 224999) i
join pipetrak.drawings d on d.project_id = %s and d.drawing_no = 'DWG-' || (i %% 2000)
\$f\$, id) from pipetrak.projects where id <> :project order by id \gexec
vacuum analyze;
SQL
project=$(psql -qXAt -d "$db" -c "select min(id) from pipetrak.projects")
range=$(psql -qXAt -d "$db" -c "select min(id) || ' ' || max(id) from pipetrak.components where project_id = $project")
read -r lo hi <<<"$range"
total=$(psql -qXAt -d "$db" -c "select count(*) from pipetrak.components")
area=$(psql -qXAt -d "$db" -c "select min(id) from pipetrak.areas where project_id = $project")
drawing=$(psql -qXAt -d "$db" -c "select min(id) from pipetrak.drawings where project_id = $project")
echo "components: $total; project $project holds welds $lo..$hi"

# The baseline of the milestone benchmark: one row update and one event insert, no logic.
baseline_tables "project_id = $project"

{ echo "\\set cid random($lo, $hi)"; as_user "$foreman"
  echo "select pipetrak_api.edit_welder(component_id => :cid, reason => 'bench', stencil => 'K-' || (:cid % 200 + 1)) from pipetrak.field_welds where component_id = :cid and welder_id is not null;"
  echo "commit;"; } >"$work/assign.sql"
{ echo "\\set cid random($lo, $hi)"; as_user "$qc"
  echo "select pipetrak_api.record_nde(component_id => :cid, method => 'VT', result => 'PASS', reason => 'bench') from pipetrak.field_welds where component_id = :cid and welder_id is not null;"
  echo "commit;"; } >"$work/nde.sql"
cat >"$work/baseline.sql" <<PGB
\set cid random($lo, $hi)
begin;
update bench.components set milestone_values[2] = 100, version = version + 1 where id = :cid;
insert into bench.milestone_events (project_id, component_id, milestone, old_value, new_value, work_date, user_id)
values ($project, :cid, 'Weld Complete', 0, 100, current_date, '$foreman');
commit;
PGB
user_script "$qc" log_welder "select * from pipetrak_api.weld_log where project_id = $project and welder = 'K-17' order by weld_number limit 50;"
user_script "$qc" log_drawing "select * from pipetrak_api.weld_log where project_id = $project and drawing_id = $drawing order by weld_number limit 50;"
# The screens' call: weld_log_page (index-driven, a page read at a time), by welder, by drawing,
# and the project's first page (no filter).
user_script "$qc" page_welder "select * from pipetrak_api.weld_log_page(project_id => $project, welder => 'K-17');"
user_script "$qc" page_drawing "select * from pipetrak_api.weld_log_page(project_id => $project, drawing_id => $drawing);"
user_script "$qc" page_first "select * from pipetrak_api.weld_log_page(project_id => $project);"
# The bare join a weld log page needs (weld, facts, drawing, welder), as the table owner: no RLS,
# no name lookups; in the same request shape (a transaction with the claims set), so that both
# sides pay PostgREST's round trips alike.
bare="select c.id, c.tag, d.drawing_no, f.weld_type, f.weld_size, f.welder_id, w.stencil, w.name, f.date_welded, f.status, f.current_nde
from pipetrak.components c join pipetrak.field_welds f on f.component_id = c.id join pipetrak.drawings d on d.id = c.drawing_id
left join pipetrak.welders w on w.id = f.welder_id where c.project_id = $project"
bare_script() { printf 'begin;\nset local role none;\nselect set_config(%s, %s, true);\n%s\ncommit;\n' "'request.jwt.claims'" "'{\"sub\": \"$qc\"}'" "$2" >"$work/$1.sql"; }
bare_script bare_welder "$bare and w.stencil = 'K-17' order by c.tag limit 50;"
bare_script bare_drawing "$bare and c.drawing_id = $drawing order by c.tag limit 50;"
bare_script bare_first "$bare and c.component_type = 'field_weld' order by c.tag limit 50;"
user_script "$qc" progress_welder "select * from pipetrak_api.weld_progress(project_id => $project, group_by => 'welder');"
user_script "$qc" progress_area "select * from pipetrak_api.weld_progress(project_id => $project, group_by => 'area');"
user_script "$qc" summary "select * from pipetrak_api.welder_summary(project_id => $project, date_from => current_date - 365, date_to => current_date);"
user_script "$qc" sampling "select * from pipetrak_api.sampling_lots where project_id = $project;"

echo "== running (${seconds}s per write run)"
read -r b1 _ <<<"$(pgbench_run baseline.sql 1 "-T $seconds")"
read -r a1 _ <<<"$(pgbench_run assign.sql 1 "-T $seconds")"
read -r n1 _ <<<"$(pgbench_run nde.sql 1 "-T $seconds")"
read -r b4 _ <<<"$(pgbench_run baseline.sql 4 "-T $seconds")"
read -r a4 _ <<<"$(pgbench_run assign.sql 4 "-T $seconds")"
read -r n4 _ <<<"$(pgbench_run nde.sql 4 "-T $seconds")"
declare -A reads
# Prepared, as PostgREST sends its queries (db-prepared-statements, on by default): a screen's
# query is planned once per connection, not at every page. The bare joins are prepared alike.
# Four rounds of 50 per read, the reads interleaved, so a slow spell of the machine falls on all
# of them; the median is over the 200.
read_list=(log_welder page_welder bare_welder log_drawing page_drawing bare_drawing page_first bare_first
           progress_welder progress_area summary sampling)
for round in 1 2 3 4; do
  for r in "${read_list[@]}"; do
    pgbench_logged "$r.sql" 1 "-t 50 -M prepared"
    logged_latencies >>"$work/$r.latencies"
  done
done
for r in "${read_list[@]}"; do
  reads[$r]=$(median_ms <"$work/$r.latencies")
done

report=$(cat <<TXT
| measurement (100,000 welds in a project, $total components in the database) | pipetrak | baseline / target | ratio |
|---|---|---|---|
| edit a weld's welder (foreman, RLS), 1 client: median | $a1 ms | $b1 ms (row update + event insert) | $(ratio "$a1" "$b1")x |
| record NDE (QC, RLS), 1 client: median | $n1 ms | $b1 ms | $(ratio "$n1" "$b1")x |
| edit a weld's welder, 4 clients: median | $a4 ms | $b4 ms | $(ratio "$a4" "$b4")x |
| record NDE, 4 clients: median | $n4 ms | $b4 ms | $(ratio "$n4" "$b4")x |
| weld log page, 50 rows of one welder | ${reads[log_welder]} ms | ${reads[bare_welder]} ms (the bare join; target 20 ms) | $(ratio "${reads[log_welder]}" "${reads[bare_welder]}")x |
| weld log page, 50 rows of one drawing | ${reads[log_drawing]} ms | ${reads[bare_drawing]} ms (the bare join; target 20 ms) | $(ratio "${reads[log_drawing]}" "${reads[bare_drawing]}")x |
| weld_log_page, 50 rows of one welder | ${reads[page_welder]} ms | ${reads[bare_welder]} ms (the bare join; target ≤ 2x) | $(ratio "${reads[page_welder]}" "${reads[bare_welder]}")x |
| weld_log_page, 50 rows of one drawing | ${reads[page_drawing]} ms | ${reads[bare_drawing]} ms (the bare join; target ≤ 2x) | $(ratio "${reads[page_drawing]}" "${reads[bare_drawing]}")x |
| weld_log_page, the project's first 50 (no filter) | ${reads[page_first]} ms | ${reads[bare_first]} ms (the bare join) | $(ratio "${reads[page_first]}" "${reads[bare_first]}")x |
| weld progress by welder | ${reads[progress_welder]} ms | target 50 ms | $(ratio "${reads[progress_welder]}" 50)x |
| weld progress by area | ${reads[progress_area]} ms | target 50 ms | $(ratio "${reads[progress_area]}" 50)x |
| welder summary, one year | ${reads[summary]} ms | target 100 ms | $(ratio "${reads[summary]}" 100)x |
| sampling view of the project | ${reads[sampling]} ms | target 50 ms | $(ratio "${reads[sampling]}" 50)x |
TXT
)
{ echo "# Weld benchmark (latest run)"; echo; echo "\`bash tests/bench/welds.sh $seconds\`: medians; reads over 4 interleaved rounds of 50 each, prepared as PostgREST prepares them, writes for ${seconds}s each."; echo; echo "$report"; } >"$here/welds-results.md"
echo "$report"
rm -rf "$work"
