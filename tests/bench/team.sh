#!/usr/bin/env bash
# Benchmark (not a test): change events and search. update_milestone with its change event (one
# signed NOTIFY at commit) against the same call with the event triggers disabled, alternating in
# the same run; search over a project of 200,000 components and 20,000 welds in a database of
# 1,000,000 components against a plain ILIKE scan of the same project.
# Usage: bash tests/bench/team.sh [seconds per write run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
seconds=${1:-10}
db=pipetrak_bench_team

bench_start
bench_work 777
database_create "$db"
owner=c0000000-0000-4000-8000-000000000001
foreman=c0000000-0000-4000-8000-000000000004

echo "== generating 5 projects x 200,000 components (2,000 drawings each), 20,000 welds in the first"
psql -qX -d "$db" -v ON_ERROR_STOP=1 <<SQL
select set_config('request.jwt.claims', '{"sub": "$owner"}', false);
select pipetrak.create_organization('Bench') as org \gset
insert into pipetrak.memberships (organization_id, user_id, role, created_by) values (:org, '$foreman', 'foreman', '$owner');
select count(pipetrak.create_project(:org, 'Bench ' || n, 'B-' || n, 'America/Chicago', 'flag', true)) from generate_series(1, 5) n;
insert into pipetrak.test_packages (project_id, name) select p.id, 'TP-' || t from pipetrak.projects p, generate_series(1, 200) t;
insert into pipetrak.drawings (project_id, drawing_no, test_package_id)
select p.id, 'DWG-' || lpad(d::text, 4, '0'),
       (select id from pipetrak.test_packages where project_id = p.id order by id offset d % 200 limit 1)
from pipetrak.projects p, generate_series(0, 1999) d;
-- Commodity codes repeat on a handful of drawings, as in a takeoff.
select format(\$f\$
insert into pipetrak.components (project_id, drawing_id, component_type, tag, size, seq, test_package_id, milestone_values)
select d.project_id, d.id, 'valve', 'V' || (array['BALU', 'GATE', 'GLOB', 'CHK'])[i %% 4 + 1] || '-' || lpad((i / 8)::text, 6, '0'), '2', 1,
       d.test_package_id, '{0,0,0,0,0}'
from generate_series(0, 199999) i
join pipetrak.drawings d on d.project_id = %s and d.drawing_no = 'DWG-' || lpad((i %% 2000)::text, 4, '0')
\$f\$, id) from pipetrak.projects order by id \gexec
select min(id) as project from pipetrak.projects \gset
insert into pipetrak.welders (project_id, stencil, name) select :project, 'K-' || w, 'Welder ' || w from generate_series(1, 50) w;
with welds as (
    insert into pipetrak.components (project_id, drawing_id, component_type, tag, seq, test_package_id, milestone_values)
    select d.project_id, d.id, 'field_weld', w::text, 1, d.test_package_id, '{0,0,0,0,0}'
    from pipetrak.drawings d, generate_series(1, 10) w where d.project_id = :project
    returning id, project_id
)
insert into pipetrak.field_welds (component_id, project_id) select id, project_id from welds;
vacuum analyze;
SQL
project=$(psql -qXAt -d "$db" -c "select min(id) from pipetrak.projects")
range=$(psql -qXAt -d "$db" -c "select min(id) || ' ' || max(id) from pipetrak.components where project_id = $project and component_type = 'valve'")
read -r lo hi <<<"$range"
total=$(psql -qXAt -d "$db" -c "select count(*) from pipetrak.components")
welds=$(psql -qXAt -d "$db" -c "select count(*) from pipetrak.field_welds where project_id = $project")
echo "components: $total in the database, project $project: 200,000 valves and $welds welds"

{ echo "\\set cid random($lo, $hi)"; echo "\\set v random(0, 1) * 100"; as_user "$foreman"
  echo "select pipetrak_api.update_milestone(component_id => :cid, milestone => 'Receive', value => :v);"
  echo "commit;"; } >"$work/update.sql"

events() {
  psql -qX -d "$db" -c "alter table pipetrak.milestone_events $1 trigger milestone_events_announce"
}

echo "== update_milestone with and without change events (${seconds}s runs, alternating, 4 each)"
declare -a off1 on1 off4 on4
# Rounds alternate which side goes first (off-on, on-off, …): a machine that drifts slower or
# faster during the run then weighs on both sides alike.
measure() { # events-state clients
  events "$1"; read -r m _ <<<"$(pgbench_run update.sql "$2" "-T $seconds")"
  if [ "$1" = disable ]; then eval "off$2+=(\"$m\")"; else eval "on$2+=(\"$m\")"; fi
}
for round in 1 2 3 4; do
  for clients in 1 4; do
    if [ $((round % 2)) = 1 ]; then measure disable "$clients"; measure enable "$clients"
    else measure enable "$clients"; measure disable "$clients"; fi
  done
done
events enable
u_off1=$(median "${off1[@]}"); u_on1=$(median "${on1[@]}")
u_off4=$(median "${off4[@]}"); u_on4=$(median "${on4[@]}")

echo "== search"
search_row() {
  local label=$1 query=$2
  user_script "$foreman" search "select count(*) from pipetrak_api.search(project_id => $project, query => '$query');"
  user_script "$foreman" scan "select count(*) from (select id from pipetrak.components where project_id = $project and retired_at is null
                      and tag ilike '%' || '$query' || '%' limit 20) s;"
  local s b
  read -r s _ <<<"$(pgbench_run search.sql 1 "-t 200")"
  read -r b _ <<<"$(pgbench_run scan.sql 1 "-t 20")"
  echo "| search '$query' ($label): median | $s ms | $b ms | $(ratio "$s" "$b")x |"
}
rows=$(
  search_row "a commodity code, exact" VGATE-012345
  search_row "a code's prefix" VGATE-0123
  search_row "a misspelt code" VGTE-012345
  search_row "a code found nowhere" VBALU-999999
  search_row "a weld number" 7
  search_row "a drawing" DWG-1234
  search_row "a welder's name" "welder 12"
)

report=$(cat <<TXT
| measurement (project of 200,000 components and $welds welds in a database of $total) | pipetrak | baseline | ratio |
|---|---|---|---|
| update_milestone, 1 client: median latency (baseline: change events off) | $u_on1 ms | $u_off1 ms | $(ratio "$u_on1" "$u_off1")x |
| update_milestone, 4 clients: median latency (baseline: change events off) | $u_on4 ms | $u_off4 ms | $(ratio "$u_on4" "$u_off4")x |
$rows

Search baseline: the first 20 components of the project whose tag contains the text (ILIKE '%…%', no index).
Medians of 4 alternating ${seconds}-second runs per write measurement (the side that goes first alternates); 200 searches per query.
TXT
)
echo "$report" | tee "$here/team-results.md"
