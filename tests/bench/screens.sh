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
# Usage: bash tests/bench/screens.sh [rounds] [components]   (default 30 220000)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
rounds=${1:-30}
components=${2:-220000}
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
} >"$results"
cat "$results"
