#!/usr/bin/env bash
# Screens benchmark (not a timed test): the dashboard people open most, as a foreman through RLS,
# as history grows, in a database of 20 projects. The measured project holds 220,000 components
# (200,000 valves, 20,000 field welds) on 2,000 drawings in 200 test packages, with open review
# items; 19 more projects hold 2,000 valves each. The measured project's credit per day
# (progress_days, 2,000 parts a day) is synthesized for 1 and then 3 years of history. Each measurement alternates, round by round, the current view with the
# view as it was written before (every figure aggregated over every visible project first, this
# week's credit found by scanning all the project's days; every drawing rolled up before a page
# is cut; each open review item's package looked up through its component), created in the same
# database from
# tests/bench/screens-before.sql: one run, same data, medians and spreads.
# The measured project's size is the second argument (220,000 by default: 200,000 valves and
# 20,000 welds on 2,000 drawings in 200 packages; another size keeps those proportions, e.g.
# 1,000,000 components on 9,090 drawings, and writes screens-<size>-results.md).
# The same run also measures, against bare baselines: a weld_log_page of 50 by welder and by drawing
# against the bare join (prepared, 4 alternating rounds of 50 on a connection), and update_milestone against a bare row
# update + event insert at 1 and 4 clients with synchronous_commit on, at 1 client with it off, and
# with change events on against off at 4 clients (alternating rounds of $write_seconds s each).
# Usage: bash tests/bench/screens.sh [rounds] [components] [write seconds]   (default 30 220000 5)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
rounds=${1:-30}
components=${2:-220000}
write_seconds=${3:-5}
welds=$((components / 11))
valves=$((components - welds))
drawings=$((components / 110))
packages=$((components / 1100))
results="$here/screens-results.md"
[ "$components" = 220000 ] || results="$here/screens-$components-results.md"
bench_start quiet
cd "$PIPETRAK_ROOT"
db=pipetrak_bench_screens
database_create "$db"
owner=5c000000-0000-4000-8000-000000000001
foreman=5c000000-0000-4000-8000-000000000004
bench_work 777

echo "== generating a project of $components components beside 19 of 2,000"
q <<SQL
select set_config('request.jwt.claims', '{"sub": "$owner"}', false);
select pipetrak.create_organization('Screens') as org \gset
insert into pipetrak.memberships (organization_id, user_id, role, created_by) values (:org, '$foreman', 'foreman', '$owner');
select count(pipetrak.create_project(:org, 'Screens ' || n, 'S-' || n, 'America/Chicago', 'flag', true)) from generate_series(1, 20) n;
select min(id) as measured from pipetrak.projects \gset
create temp table sizes as
select p.id as project_id, case when p.id = :measured then $drawings else 100 end as drawings,
       case when p.id = :measured then $packages else 10 end as packages,
       case when p.id = :measured then $valves else 2000 end as valves,
       case when p.id = :measured then $welds else 0 end as welds
from pipetrak.projects p;
insert into pipetrak.areas (project_id, name) select p.id, 'Area ' || a from pipetrak.projects p, generate_series(1, 10) a;
insert into pipetrak.test_packages (project_id, name) select z.project_id, 'TP-' || t from sizes z, generate_series(1, z.packages) t;
insert into pipetrak.drawings (project_id, drawing_no, area_id, test_package_id)
select z.project_id, 'DWG-' || d, (select id from pipetrak.areas where project_id = z.project_id order by id offset d % 10 limit 1),
       (select id from pipetrak.test_packages where project_id = z.project_id order by id offset d % z.packages limit 1)
from sizes z, generate_series(0, z.drawings - 1) d;
insert into pipetrak.components (project_id, drawing_id, component_type, tag, seq, area_id, test_package_id, milestone_values,
                                 earned_total, earned_receive)
select d.project_id, d.id, 'valve', 'V-' || i, 1, d.area_id, d.test_package_id,
       case when i % 3 = 0 then '{100,0,0,0,0}'::numeric[] else '{0,0,0,0,0}' end,
       case when i % 3 = 0 then 100000 else 0 end, case when i % 3 = 0 then 100000 else 0 end
from sizes z cross join generate_series(0, z.valves - 1) i
join pipetrak.drawings d on d.project_id = z.project_id and d.drawing_no = 'DWG-' || (i % z.drawings);
insert into pipetrak.components (project_id, drawing_id, component_type, tag, area_id, test_package_id, milestone_values)
select d.project_id, d.id, 'field_weld', 'W-' || i, d.area_id, d.test_package_id, '{0,0,0,0,0}'::numeric[]
from sizes z cross join generate_series(0, z.welds - 1) i
join pipetrak.drawings d on d.project_id = z.project_id and d.drawing_no = 'DWG-' || (i % z.drawings);
insert into pipetrak.review_items (project_id, component_id, kind)
select c.project_id, c.id, 'out_of_sequence' from pipetrak.components c where c.id % 50 = 0;
-- The welds' facts: 200 welders, each weld welded by one of them.
insert into pipetrak.welders (project_id, stencil, verified) select :measured, 'K-' || w, true from generate_series(1, 200) w;
insert into pipetrak.field_welds (component_id, project_id, weld_type, xray_percent, welder_id, date_welded, status)
select c.id, c.project_id, 'BW', 10, (select min(id) from pipetrak.welders) + c.id % 200, current_date - (c.id % 365)::integer, 'active'
from pipetrak.components c where c.component_type = 'field_weld';
vacuum analyze;
SQL
project=$(q -c "select min(id) from pipetrak.projects")

# Credit per day of the measured project for the last N days, 400 parts a day (its events' trace).
history() {
  q <<SQL
delete from pipetrak.progress_days where project_id = $project;
insert into pipetrak.progress_days (project_id, work_date, drawing_id, area_id, system_id, test_package_id, component_type,
                                    events, credit_receive, credit_install, credit_punch, credit_test, credit_restore,
                                    mh_receive, mh_install, mh_punch, mh_test, mh_restore, components)
select p.project_id, current_date - day, p.drawing_id, p.area_id, p.system_id, p.test_package_id, p.component_type,
       1, 1000, 0, 0, 0, 0, 0, 0, 0, 0, 0, '{}'
from generate_series(0, $1 - 1) day
cross join lateral (select * from pipetrak.progress_parts x where x.project_id = $project
                    order by x.drawing_id, x.component_type offset (day * 7) % 2 limit 400) p;
analyze pipetrak.progress_days;
SQL
}

# The view as it was before, beside the current one.
q -f "$here/screens-before.sql" >/dev/null

# Median and spread (min–max) in ms of SQL run $rounds times as the foreman, alternating two forms.
measure() {
  local a=$1 b=$2
  q <<SQL
create temp table times (form text, ms float8);
do \$\$
declare
    t timestamptz;
    va float8[] := '{}';
    vb float8[] := '{}';
begin
    perform set_config('request.jwt.claims', '{"sub": "$foreman", "role": "authenticated"}', true);
    execute 'set local role authenticated';
    for i in 1 .. $rounds loop
        t := clock_timestamp(); execute \$q\$$a\$q\$;
        va := va || extract(epoch from clock_timestamp() - t)::float8 * 1000;
        t := clock_timestamp(); execute \$q\$$b\$q\$;
        vb := vb || extract(epoch from clock_timestamp() - t)::float8 * 1000;
    end loop;
    execute 'reset role';
    insert into times select 'a', unnest(va);
    insert into times select 'b', unnest(vb);
end
\$\$;
select string_agg(x, ' ' order by form)
from (select form, format('%s %s %s', round(percentile_cont(0.5) within group (order by ms)::numeric, 3),
                          round(min(ms)::numeric, 3), round(max(ms)::numeric, 3)) as x
      from times group by form) s;
SQL
}

dashboard="select * from pipetrak_api.project_dashboard where project_id = $project"
before="select * from bench.project_dashboard_before where project_id = $project"
page="select * from pipetrak_api.drawing_progress where project_id = $project order by drawing_no limit 50"
page_before="select * from bench.drawing_progress_before where project_id = $project order by drawing_no limit 50"
readiness="select * from pipetrak_api.test_package_readiness where project_id = $project"
readiness_before="select * from bench.test_package_readiness_before where project_id = $project"
declare -A result
for years in 1 3; do
  echo "== $years year(s) of history"
  history $((years * 365))
  days=$(q -c "select count(*) from pipetrak.progress_days where project_id = $project")
  read -r nm nlo nhi bm blo bhi < <(measure "$dashboard" "$before" | tail -1)
  result["dash-$years"]="$nm $nlo $nhi $bm $blo $bhi $days"
  echo "dashboard: $nm ms (before: $bm ms), $days days rows"
done
read -r pm plo phi pbm pblo pbhi < <(measure "$page" "$page_before" | tail -1)
read -r rm rlo rhi rbm rblo rbhi < <(measure "$readiness" "$readiness_before" | tail -1)
items=$(q -c "select count(*) from pipetrak.review_items where project_id = $project and resolved_at is null")

echo "== the weld log against the bare join"
drawing=$(q -c "select min(id) from pipetrak.drawings where project_id = $project")
user_script "$foreman" page_welder "select * from pipetrak_api.weld_log_page(project_id => $project, welder => 'K-17');"
user_script "$foreman" page_drawing "select * from pipetrak_api.weld_log_page(project_id => $project, drawing_id => $drawing);"
# The bare join a page needs (weld, facts, drawing, welder), as the table owner: no RLS, no name
# lookups; in the same request shape (a transaction with the claims set).
bare="select c.id, c.tag, d.drawing_no, f.weld_type, f.weld_size, f.welder_id, w.stencil, w.name, f.date_welded, f.status, f.current_nde
from pipetrak.components c join pipetrak.field_welds f on f.component_id = c.id join pipetrak.drawings d on d.id = c.drawing_id
left join pipetrak.welders w on w.id = f.welder_id where c.project_id = $project"
bare_script() { printf 'begin;\nset local role none;\nselect set_config(%s, %s, true);\n%s\ncommit;\n' "'request.jwt.claims'" "'{\"sub\": \"$foreman\"}'" "$2" >"$work/$1.sql"; }
bare_script bare_welder "$bare and w.stencil = 'K-17' order by c.tag limit 50;"
bare_script bare_drawing "$bare and c.drawing_id = $drawing order by c.tag limit 50;"
declare -A reads
# A connection serves many pages (PostgREST keeps its pool): 4 rounds of 50 on one connection each.
for round in 1 2 3 4; do
  for r in page_welder bare_welder page_drawing bare_drawing; do
    pgbench_logged "$r.sql" 1 "-t 50 -M prepared"
    logged_latencies >>"$work/$r.latencies"
  done
done
for r in page_welder bare_welder page_drawing bare_drawing; do
  reads[$r]=$(median_ms <"$work/$r.latencies")
done

echo "== update_milestone against a bare write (${write_seconds}s runs, alternating)"
baseline_tables "project_id = $project"
range=$(q -c "select min(id) || ' ' || max(id) from pipetrak.components where project_id = $project and component_type = 'valve'")
read -r lo hi <<<"$range"
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
# The same bare write behind the request preamble every PostgREST call sends (the role and the
# claims), so the rows below also show what the API's own work costs beyond the transport.
{ sed -n 1,2p "$work/baseline.sql"; as_user "$foreman"; echo "set local role none;"; sed -n '4,$p' "$work/baseline.sql"; } >"$work/preamble.sql"
events() { q -c "alter table pipetrak.milestone_events $1 trigger milestone_events_announce"; }
declare -A runs
# One run of script $2 at $3 clients into runs[$1] (PGOPTIONS from the caller's environment).
write_run() { local m; read -r m _ <<<"$(pgbench_run "$2" "$3" "-T $write_seconds")"; runs[$1]="${runs[$1]:-} $m"; }
for round in 1 2 3 4; do
  # The side that goes first alternates, so a machine that drifts weighs on both alike.
  if [ $((round % 2)) = 1 ]; then first=baseline; second=update; else first=update; second=baseline; fi
  for clients in 1 4; do
    write_run "$first-$clients" "$first.sql" "$clients"; write_run "$second-$clients" "$second.sql" "$clients"
    write_run "preamble-$clients" preamble.sql "$clients"
  done
  PGOPTIONS="-c synchronous_commit=off" write_run "$first-off" "$first.sql" 1
  PGOPTIONS="-c synchronous_commit=off" write_run "$second-off" "$second.sql" 1
  if [ $((round % 2)) = 1 ]; then order="disable enable"; else order="enable disable"; fi
  for state in $order; do events "$state"; write_run "events-$state" update.sql 4; done
done
events enable
for k in "${!runs[@]}"; do
  # shellcheck disable=SC2086 # the runs' medians, one word each
  runs[$k]=$(median ${runs[$k]})
done
{
  echo "# Screens benchmark (latest run)"
  echo
  echo "\`bash tests/bench/screens.sh $rounds $components\`: a project of $components components ($drawings drawings, $packages packages) among 20 projects, as a foreman through RLS; each row $rounds"
  echo "alternating rounds of the current view and the view as it was before (\`tests/bench/screens-before.sql\`);"
  echo "median (min–max)."
  echo
  echo "| measurement | now | before | ratio | target |"
  echo "|---|---|---|---|---|"
  for years in 1 3; do
    read -r nm nlo nhi bm blo bhi days <<<"${result["dash-$years"]}"
    echo "| project_dashboard of one project, $years year(s) of history ($days day rows) | $nm ms ($nlo–$nhi) | $bm ms ($blo–$bhi) | $(ratio "$nm" "$bm")x | < 10 ms with a page of drawings |"
  done
  echo "| drawing_progress page of 50 (of $drawings) | $pm ms ($plo–$phi) | $pbm ms ($pblo–$pbhi) | $(ratio "$pm" "$pbm")x | < 3 ms |"
  read -r nm _ <<<"${result["dash-3"]}"
  echo "| project_dashboard (3 years) + a drawing page of 50, the medians added | $(awk -v a="$nm" -v b="$pm" 'BEGIN { printf "%.3f", a + b }') ms | $(awk -v a="$bm" -v b="$pbm" 'BEGIN { printf "%.3f", a + b }') ms | | < 10 ms |"
  echo "| test_package_readiness of all $packages packages ($items open review items) | $rm ms ($rlo–$rhi) | $rbm ms ($rblo–$rbhi) | $(ratio "$rm" "$rbm")x | < 5 ms |"
  echo
  echo "Against bare baselines, same run: the weld log as PostgREST prepares it (4 alternating rounds of 50 pages on one connection each),"
  echo "and writes in 4 alternating rounds of ${write_seconds}s per side (median of the rounds' median latencies)."
  echo
  echo "| measurement | pipetrak | baseline | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| weld_log_page, 50 rows of one welder | ${reads[page_welder]} ms | ${reads[bare_welder]} ms (the bare join) | $(ratio "${reads[page_welder]}" "${reads[bare_welder]}")x | ≤ 2x |"
  echo "| weld_log_page, 50 rows of one drawing | ${reads[page_drawing]} ms | ${reads[bare_drawing]} ms (the bare join) | $(ratio "${reads[page_drawing]}" "${reads[bare_drawing]}")x | ≤ 2x |"
  echo "| update_milestone, 1 client, synchronous_commit on | ${runs[update-1]} ms | ${runs[baseline-1]} ms (row update + event insert) | $(ratio "${runs[update-1]}" "${runs[baseline-1]}")x | ≤ 1.5x |"
  echo "| update_milestone, 4 clients, synchronous_commit on | ${runs[update-4]} ms | ${runs[baseline-4]} ms | $(ratio "${runs[update-4]}" "${runs[baseline-4]}")x | ≤ 2x |"
  echo "| update_milestone, 1 client, against the bare write behind the same request preamble (role, claims) | ${runs[update-1]} ms | ${runs[preamble-1]} ms | $(ratio "${runs[update-1]}" "${runs[preamble-1]}")x | (shown) |"
  echo "| update_milestone, 4 clients, against the bare write behind the same request preamble | ${runs[update-4]} ms | ${runs[preamble-4]} ms | $(ratio "${runs[update-4]}" "${runs[preamble-4]}")x | (shown) |"
  echo "| update_milestone, 1 client, synchronous_commit off | ${runs[update-off]} ms | ${runs[baseline-off]} ms | $(ratio "${runs[update-off]}" "${runs[baseline-off]}")x | ≤ 5x |"
  echo "| update_milestone, 4 clients, change events on against off | ${runs[events-enable]} ms | ${runs[events-disable]} ms (events off) | $(ratio "${runs[events-enable]}" "${runs[events-disable]}")x | ≤ 1.1x |"
} >"$results"
cat "$results"
rm -rf "$work"
