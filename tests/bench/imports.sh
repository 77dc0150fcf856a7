#!/usr/bin/env bash
# Import benchmark (not a timed test): a generated takeoff of N rows (default 100,000) as CSV and
# .xlsx, uploaded and validated and committed through the API as a project manager, beside a
# baseline measured in the same run: COPY of the same final rows (drawings, areas, systems,
# components, progress parts) into copies of those tables with the same indexes and constraints,
# no RLS and no triggers. Peak backend memory is the highest private RSS (RssAnon) of the backend
# sampled while it works; validation is also measured at N/10, N/2 and 2N rows to show how memory follows the
# number of rows, once more into the project the commit filled (every component compared), and on
# a copy of the file where every tenth row repeats the one before (the rules across rows at work).
# Then the hostile set (tests/bench/hostile_files.sh): each hostile file's outcome and the backend's
# peak memory. Writes tests/bench/imports-results.md (and hostile-files-results.md).
# Each import is measured in fresh databases and reported as medians: 5 rounds at the full size (CSV
# and .xlsx alternating), 3 at the others.
# Usage: bash tests/bench/imports.sh [ROWS]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
rows=${1:-100000}
small=$((rows / 10))
half=$((rows / 2))
double=$((rows * 2))
bench_start quiet
cd "$PIPETRAK_ROOT"
bench_work 755
cargo run -q --release --example generate_takeoff -- "$rows" "$work" >/dev/null
for n in "$small" "$half" "$double"; do
  cargo run -q --release --example generate_takeoff -- "$n" "$work" >/dev/null
done
database_create pipetrak_bench_import >/dev/null
db=pipetrak_bench_import

# Runs SQL in a fresh session; prints "<ms> <peak RssAnon kB>" (the SQL's time, the backend's peak).
sampled_sql() {
  local sql=$1 out pid peak=0 kb
  out=$(mktemp)
  psql -qXAt -d "$db" -v ON_ERROR_STOP=1 >"$out" <<SQL &
select pg_backend_pid();
$sql
select round((extract(epoch from clock_timestamp()) - :t0) * 1000, 1);
SQL
  local job=$!
  until [ -s "$out" ] || ! kill -0 "$job" 2>/dev/null; do sleep 0.01; done
  pid=$(head -1 "$out")
  while kill -0 "$job" 2>/dev/null; do
    kb=$(awk '/RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$peak" ] && peak=$kb
    sleep 0.02
  done
  wait "$job"
  echo "$(tail -1 "$out") $peak"
}

# Runs SQL as the project manager; prints "<ms> <peak RssAnon kB>".
pm_sql() {
  sampled_sql "set role authenticated;
select set_config('request.jwt.claims', '{\"sub\": \"be0c0000-0000-4000-8000-000000000001\"}', false) \\gset
select extract(epoch from clock_timestamp()) as t0 \\gset
$1"
}

# Every measured step starts on a quiet server: the pages the step before dirtied (a commit writes
# hundreds of megabytes) are written out first, not by a checkpoint in the middle of the next step.
quiet() { q -c "checkpoint" >/dev/null; }

# One project per measured import, so every commit starts from an empty project.
new_project() {
  q <<SQL | tail -1
set role authenticated;
select set_config('request.jwt.claims', '{"sub": "be0c0000-0000-4000-8000-000000000001"}', false);
select pipetrak_api.create_project(organization_id => (select id from pipetrak_api.organizations limit 1),
                                   name => 'bench $1', job_number => 'B-$1');
SQL
}
# Every measured run starts from the same state: a new database holding one organization, so no
# run pays for the rows of the one before (the COPY baseline writes into empty tables too).
fresh_database() {
  database_create "$db" >/dev/null
  q >/dev/null <<SQL
set role authenticated;
select set_config('request.jwt.claims', '{"sub": "be0c0000-0000-4000-8000-000000000001"}', false);
select pipetrak_api.create_organization(name => 'Bench');
SQL
}

# The final rows of a committed project, for the COPY baseline.
export_final_rows() {
  q <<SQL
\copy (select id, project_id, name, created_at, retired_at from pipetrak.areas where project_id = $1) to '$work/areas.copy'
\copy (select id, project_id, name, created_at, retired_at from pipetrak.systems where project_id = $1) to '$work/systems.copy'
\copy (select id, project_id, drawing_no, sheet, revision, title, area_id, system_id, test_package_id, retired_at, created_at, updated_at from pipetrak.drawings where project_id = $1) to '$work/drawings.copy'
\copy (select id, project_id, drawing_id, component_type, tag, size, seq, quantity, description, spec, attributes, area_id, system_id, test_package_id, area_pinned, system_pinned, test_package_pinned, milestone_values, earned_total, earned_receive, earned_install, earned_punch, earned_test, earned_restore, version, created_at, updated_at, retired_at from pipetrak.components where project_id = $1) to '$work/components.copy'
\copy (select * from pipetrak.progress_parts where project_id = $1) to '$work/parts.copy'
SQL
}

upload() { # project file -> import id (the file is read by psql, as a client would send it)
  local b64
  b64=$(base64 -w0 "$2")
  q <<SQL | tail -1
set role authenticated;
select set_config('request.jwt.claims', '{"sub": "be0c0000-0000-4000-8000-000000000001"}', false);
select pipetrak_api.import_upload(project_id => $1, kind => 'takeoff', filename => '$(basename "$2")', content => decode('$b64', 'base64'));
SQL
}

echo "== validate and commit (each run in a fresh database; medians reported)"
declare -A ms mem
runs=3
# Memory against the number of rows: CSV validation at four sizes, .xlsx at two. At the full size
# CSV and .xlsx alternate within each of five rounds, so a slow spell of the machine falls on both
# formats alike and their ratio stays a same-run comparison.
for n in "$small" "$half" "$rows" "$double"; do
  fmts=(csv)
  [ "$n" = "$small" ] || [ "$n" = "$rows" ] && fmts=(csv xlsx)
  rounds=$runs
  [ "$n" = "$rows" ] && rounds=5
  declare -A v_ms=() v_mem=() c_ms=() c_mem=()
  for run in $(seq "$rounds"); do
    for fmt in "${fmts[@]}"; do
      fresh_database
      project=$(new_project "$fmt-$n-$run")
      import=$(upload "$project" "$work/takeoff-$n.$fmt")
      quiet
      read -r t m < <(pm_sql "select pipetrak_api.import_validate(import_id => $import) is not null;")
      v_ms[$fmt]+=" $t"; v_mem[$fmt]+=" $m"
      if [ "$n" = "$rows" ]; then
        quiet
        read -r t m < <(pm_sql "select pipetrak_api.import_commit(import_id => $import) is not null;")
        c_ms[$fmt]+=" $t"; c_mem[$fmt]+=" $m"
        if [ "$fmt" = csv ] && [ "$run" = 1 ]; then
          components=$(q -c "select count(*) from pipetrak.components where project_id = $project")
          export_final_rows "$project"
          # The same file again into the project that now holds it: every component is compared.
          again=$(upload "$project" "$work/takeoff-$n.$fmt")
          read -r ms["revalidate"] mem["revalidate"] < <(pm_sql "select pipetrak_api.import_validate(import_id => $again) is not null;")
        fi
      fi
    done
  done
  for fmt in "${fmts[@]}"; do
    # shellcheck disable=SC2086 # the lists are space-separated numbers
    ms["validate-$fmt-$n"]=$(median ${v_ms[$fmt]}); mem["validate-$fmt-$n"]=$(median ${v_mem[$fmt]})
    if [ "$n" = "$rows" ]; then
      # shellcheck disable=SC2086
      ms["commit-$fmt"]=$(median ${c_ms[$fmt]}); mem["commit-$fmt"]=$(median ${c_mem[$fmt]})
    fi
    echo "$fmt $n rows: validate${v_ms[$fmt]} ms${c_ms[$fmt]:+; commit${c_ms[$fmt]} ms}"
  done
done
# A file where every tenth row repeats the row before it: 10% of the rows repeat cells and item,
# and the rules across rows run in SQL on the rows the reader flags.
awk 'NR > 1 && NR % 10 == 0 { print previous; next } { print; previous = $0 }' "$work/takeoff-$rows.csv" >"$work/repeats-$rows.csv"
r_ms=(); r_mem=()
for run in $(seq "$runs"); do
  fresh_database
  project=$(new_project "repeats-$run")
  import=$(upload "$project" "$work/repeats-$rows.csv")
  quiet
  read -r t m < <(pm_sql "select pipetrak_api.import_validate(import_id => $import) is not null;")
  r_ms+=("$t"); r_mem+=("$m")
done
ms["validate-repeats"]=$(median "${r_ms[@]}"); mem["validate-repeats"]=$(median "${r_mem[@]}")
echo "csv $rows rows, every tenth repeating: validate ${r_ms[*]} ms"
# The COPY's rows reference their project's milestone templates: the last run's database holds the
# same project id (each fresh database numbers from 1) with the same default templates.
[ "$(q -c "select count(*) from pipetrak.milestone_templates where project_id = (select min(project_id) from pipetrak.milestone_templates)")" -gt 0 ]

echo "== COPY baseline"
q <<SQL
drop schema if exists bench cascade;
create schema bench;
-- Same columns, defaults, checks, generated columns and indexes; keys and foreign keys as in the product.
create table bench.areas (like pipetrak.areas including all);
create table bench.systems (like pipetrak.systems including all);
create table bench.drawings (like pipetrak.drawings including all);
create table bench.components (like pipetrak.components including all);
create table bench.progress_parts (like pipetrak.progress_parts including all);
alter table bench.components add foreign key (project_id, drawing_id) references bench.drawings (project_id, id),
    add foreign key (project_id, area_id) references bench.areas (project_id, id),
    add foreign key (project_id, system_id) references bench.systems (project_id, id),
    add foreign key (project_id, component_type) references pipetrak.milestone_templates (project_id, component_type);
alter table bench.drawings add foreign key (project_id, area_id) references bench.areas (project_id, id);
SQL
copy_ms=(); copy_mem=()
for attempt in 1 2 3; do
  q -c "truncate bench.components, bench.drawings, bench.areas, bench.systems, bench.progress_parts" >/dev/null
  quiet
  read -r t m < <(sampled_sql "select extract(epoch from clock_timestamp()) as t0 \\gset
begin;
\\copy bench.areas (id, project_id, name, created_at, retired_at) from '$work/areas.copy'
\\copy bench.systems (id, project_id, name, created_at, retired_at) from '$work/systems.copy'
\\copy bench.drawings (id, project_id, drawing_no, sheet, revision, title, area_id, system_id, test_package_id, retired_at, created_at, updated_at) from '$work/drawings.copy'
\\copy bench.components (id, project_id, drawing_id, component_type, tag, size, seq, quantity, description, spec, attributes, area_id, system_id, test_package_id, area_pinned, system_pinned, test_package_pinned, milestone_values, earned_total, earned_receive, earned_install, earned_punch, earned_test, earned_restore, version, created_at, updated_at, retired_at) from '$work/components.copy'
\\copy bench.progress_parts from '$work/parts.copy'
commit;")
  copy_ms+=("$t"); copy_mem+=("$m")
done
copy=$(median "${copy_ms[@]}")
copy_peak=$(median "${copy_mem[@]}")
csv_bytes=$(stat -c %s "$work/takeoff-$rows.csv")

results="$here/imports-results.md"
{
  echo "| measurement ($rows-row takeoff → $components components) | pipetrak | baseline | ratio |"
  echo "|---|---|---|---|"
  echo "| validate CSV ($((csv_bytes / 1024)) kB): median time | ${ms["validate-csv-$rows"]} ms | target 1000 ms | $(ratio "${ms["validate-csv-$rows"]}" 1000 x) |"
  echo "| validate xlsx: median time | ${ms["validate-xlsx-$rows"]} ms | ${ms["validate-csv-$rows"]} ms (the same rows as CSV; target ≤ 1.30x) | $(ratio "${ms["validate-xlsx-$rows"]}" "${ms["validate-csv-$rows"]}" x) |"
  echo "| validate CSV again, into the project holding its $components components: time | ${ms["revalidate"]} ms | | |"
  echo "| validate CSV where every tenth row repeats the one before: median time | ${ms["validate-repeats"]} ms | | |"
  echo "| commit (one call, 5,000-row chunks): median time | ${ms["commit-csv"]} ms | ${copy} ms (COPY of the final rows, median of 3) | $(ratio "${ms["commit-csv"]}" "$copy" x) |"
  echo "| commit from xlsx: median time | ${ms["commit-xlsx"]} ms | ${copy} ms | $(ratio "${ms["commit-xlsx"]}" "$copy" x) |"
  echo "| peak backend memory (median), validate CSV: $small → $rows rows | ${mem["validate-csv-$small"]} → ${mem["validate-csv-$rows"]} kB | | $(ratio "${mem["validate-csv-$rows"]}" "${mem["validate-csv-$small"]}" x) |"
  echo "| peak backend memory (median), validate CSV: $small / $half / $rows / $double rows | ${mem["validate-csv-$small"]} / ${mem["validate-csv-$half"]} / ${mem["validate-csv-$rows"]} / ${mem["validate-csv-$double"]} kB | | $(ratio "${mem["validate-csv-$double"]}" "${mem["validate-csv-$rows"]}" x) ($rows → $double) |"
  echo "| peak backend memory (median), validate xlsx: $small → $rows rows | ${mem["validate-xlsx-$small"]} → ${mem["validate-xlsx-$rows"]} kB | | $(ratio "${mem["validate-xlsx-$rows"]}" "${mem["validate-xlsx-$small"]}" x) |"
  echo "| peak backend memory (median), validate CSV where every tenth row repeats | ${mem["validate-repeats"]} kB | | |"
  echo "| peak backend memory (median), commit CSV | ${mem["commit-csv"]} kB | ${copy_peak} kB (the COPY's backend) | $(ratio "${mem["commit-csv"]}" "$copy_peak" x) |"
} >"$results"
rm -rf "$work"
echo "== hostile set"
bash "$here/hostile_files.sh" >/dev/null
{
  echo
  echo "Hostile set, same run (\`tests/bench/hostile-files-results.md\`): every file under the 50 MB upload limit ends in a"
  echo "catalogued error or a report; the highest peak of the backend's private memory over all of them:"
  echo "$(grep -E '^\| [^-f]' "$here/hostile-files-results.md" | awk -F'|' '{ n = split($7, p, "/"); for (i = 1; i <= n; i++) { v = p[i] + 0; if (v > max) max = v } } END { printf "%d MB (limit 256 MB).", max }')"
} >>"$results"
cat "$results"
