#!/usr/bin/env bash
# Benchmark (not a test): one tenant's import validation alone, and again after another tenant has
# validated a file of rows repeating in pairs (its staged rows left in the shared table), in the
# same run. A tenant's plans must not depend on another's data: the ratio stays near 1.
# Three validations of each, medians. Usage: bash tests/bench/tenants.sh [ROWS] (default 200,000;
# the other tenant's file has 0.8 × ROWS rows, as 800,000 beside 1,000,000).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
rows=${1:-200000}
noisy_rows=$((rows * 4 / 5))
bench_start quiet
cd "$PIPETRAK_ROOT"
bench_work
cargo run -q --release --example generate_takeoff -- "$rows" "$work" >/dev/null
cargo run -q --release --example generate_takeoff -- $((noisy_rows / 2)) "$work" >/dev/null
# Every data row of the other tenant's file twice in a row.
awk 'NR == 1 { print; next } { print; print }' "$work/takeoff-$((noisy_rows / 2)).csv" >"$work/pairs.csv"

db=pipetrak_bench_tenants
database_create "$db" >/dev/null
victim=b1c00000-0000-4000-8000-000000000001
noisy=b2c00000-0000-4000-8000-000000000001
tenant_sql() { # user sql -> last value (the SQL run as the user, role and claims set for the session)
  psql -qXAt -d "$db" -v ON_ERROR_STOP=1 <<SQL | tail -1
set role authenticated;
select set_config('request.jwt.claims', '{"sub": "$1"}', false) \g /dev/null
$2
SQL
}
project_of() { # user -> a new organization's project
  local org
  org=$(tenant_sql "$1" "select pipetrak_api.create_organization(name => 'Tenant $1');")
  tenant_sql "$1" "select pipetrak_api.create_project(organization_id => $org, name => 'P', job_number => 'P-1');"
}
upload() { # user project file -> import id
  tenant_sql "$1" "select pipetrak_api.import_upload(project_id => $2, kind => 'takeoff', filename => 'f.csv', content => decode('$(base64 -w0 "$3")', 'base64'));"
}
validate_ms() { # user import -> milliseconds
  tenant_sql "$1" "select extract(epoch from clock_timestamp()) as t0 \gset
select pipetrak_api.import_validate(import_id => $2) is not null \g /dev/null
select round((extract(epoch from clock_timestamp()) - :t0) * 1000, 1);"
}

victim_import=$(upload "$victim" "$(project_of "$victim")" "$work/takeoff-$rows.csv")
alone=()
for run in 1 2 3; do alone+=("$(validate_ms "$victim" "$victim_import")"); done
noisy_import=$(upload "$noisy" "$(project_of "$noisy")" "$work/pairs.csv")
noisy_ms=$(validate_ms "$noisy" "$noisy_import")
beside=()
for run in 1 2 3; do beside+=("$(validate_ms "$victim" "$victim_import")"); done
a=$(median "${alone[@]}"); b=$(median "${beside[@]}")

report=$(cat <<TXT
| measurement (medians of 3) | time | ratio |
|---|---|---|
| tenant A validates $rows CSV rows, alone | $a ms | 1.00x |
| tenant B validates $noisy_rows rows repeating in pairs (its rows stay staged) | $noisy_ms ms | |
| tenant A validates the same file again, beside B's staged rows | $b ms | $(ratio "$b" "$a")x |
TXT
)
echo "$report" | tee "$here/tenants-results.md"
